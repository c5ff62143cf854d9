/**
 * Every read endpoint of the simulator, over real HTTP, checked against the official PVE 9.1
 * schema (src/sim/pve-schema.json) and the wire rules of test/contract/pve-shapes.ts.
 *
 * The simulator must emit only fields the schema declares. Where the schema itself lacks a field
 * that real Proxmox sends, the field is listed in UNDECLARED_BUT_REAL below with its source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import {
  checkAccessPermissions,
  checkClusterResources,
  checkClusterStatus,
  checkClusterTasks,
  checkErrorResponse,
  checkGuestConfig,
  checkGuestStatusCurrent,
  checkNextId,
  checkNodes,
  checkNodeTasks,
  checkSnapshotList,
  checkStorageConfig,
  checkStorageStatus,
  checkTaskLog,
  checkTaskStatus,
  checkUpid,
} from '../contract/pve-shapes.js';
import { checkAgainstSchema, loadEndpointSchema, type PveSchema } from '../contract/schema-check.js';

type Entry = Record<string, unknown>;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Entry;
}

let sim: Simulator;

async function call(method: string, path: string, params?: Record<string, string>): Promise<Answer> {
  const headers: Record<string, string> = {
    Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}`,
  };
  let body: string | undefined;
  if (params) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  const res = await fetch(`${sim.url}/api2/json${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? (JSON.parse(text) as Entry) : {} };
}

/** GET that must succeed; answers `data`. */
async function data(path: string): Promise<unknown> {
  const res = await call('GET', path);
  expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBe(200);
  return res.body.data;
}

async function waitTask(upid: string): Promise<Entry> {
  const node = upid.split(':')[1]!;
  for (let i = 0; i < 200; i++) {
    const status = (await data(`/nodes/${node}/tasks/${upid}/status`)) as Entry;
    if (status.status === 'stopped') return status;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`task ${upid} did not finish`);
}

/**
 * Fields the 9.1 schema does not declare although real Proxmox sends them, per endpoint, as
 * normalised paths (`[]` for any list index). Each list must match what the simulator emits
 * exactly, so a stale entry fails as well as a new undeclared field.
 */
const UNDECLARED_BUT_REAL: Record<string, string[]> = {
  // API-NOTES §2.3: the tasklist entry is upid + node, pid (running only), starttime, type, id,
  // user, tokenid?, saved, endtime and status (finished); the schema declares only upid.
  'GET /cluster/tasks': [
    '$[].endtime',
    '$[].id',
    '$[].node',
    '$[].pid',
    '$[].saved',
    '$[].starttime',
    '$[].status',
    '$[].tokenid',
    '$[].type',
    '$[].user',
  ],
  // API-NOTES §2.17: `[{uid, time, pri, tag, pid, node, user, msg, id}]`; the schema declares no property.
  'GET /cluster/log': [
    '$[].id',
    '$[].msg',
    '$[].node',
    '$[].pid',
    '$[].pri',
    '$[].tag',
    '$[].time',
    '$[].uid',
    '$[].user',
  ],
  // API-NOTES §2.12: `{sid, type, state, group?, max_restart, max_relocate, failback?, comment?, digest, errors?}`.
  'GET /cluster/ha/resources': ['$[].digest', '$[].max_relocate', '$[].max_restart', '$[].state', '$[].type'],
  // API-NOTES §2.7 and the recorded storage-config fixture: Config.pm `index` returns each whole
  // storage.cfg section (type, content, plugin keys, shared, digest); the schema declares only `storage`.
  'GET /storage': [
    '$[].content',
    '$[].digest',
    '$[].export',
    '$[].krbd',
    '$[].options',
    '$[].path',
    '$[].pool',
    '$[].server',
    '$[].shared',
    '$[].thinpool',
    '$[].type',
    '$[].vgname',
    '$[]["prune-backups"]',
  ],
  // API-NOTES §2.4: /nodes carries the extract_node_stats fields (id, type, disk, maxdisk among them,
  // see recorded nodes.4node.go-proxmox.json) but the schema lists only a subset.
  'GET /nodes': ['$[].disk', '$[].id', '$[].maxdisk', '$[].type'],
  // Not covered by API-NOTES: Nodes.pm `status` returns ProcFSTools::read_cpuinfo() as cpuinfo, which
  // has user_hz, mhz, flags and hvm besides the declared model/cpus/sockets/cores. (The top level
  // declares additionalProperties, so uptime, swap, ksm… are declared.)
  'GET /nodes/{node}/status': ['$.cpuinfo.flags', '$.cpuinfo.hvm', '$.cpuinfo.mhz', '$.cpuinfo.user_hz'],
  // API-NOTES §3 (GET /nodes/{node}/tasks): items carry `tokenid?` for API-token tasks.
  'GET /nodes/{node}/tasks': ['$[].tokenid'],
  // API-NOTES §3 (read_task_status): `tokenid?` for API-token tasks.
  'GET /nodes/{node}/tasks/{upid}/status': ['$.tokenid'],
  // API-NOTES §2.5: qemu vmstatus() sets `disk:0`.
  'GET /nodes/{node}/qemu': ['$[].disk'],
  'GET /nodes/{node}/qemu/{vmid}/status/current': ['$.disk'],
  // API-NOTES §2.6: pve-container vmstatus() has `type:"lxc"`, `swap` and `pid` (running).
  'GET /nodes/{node}/lxc': ['$[].pid', '$[].swap', '$[].type'],
  'GET /nodes/{node}/lxc/{vmid}/status/current': ['$.pid', '$.swap', '$.type'],
  // API-NOTES §2.10: the final "current" entry is `{name, digest, running, description, parent?}`.
  'GET /nodes/{node}/qemu/{vmid}/snapshot': ['$[].digest', '$[].running'],
  'GET /nodes/{node}/lxc/{vmid}/snapshot': ['$[].digest', '$[].running'],
  // API-NOTES §2.9 ("same pattern" as §2.8): the config keeps its `parent:` line (AbstractConfig
  // load_current_config deletes only snapshots and pending). The qemu schema declares `parent`, the
  // lxc one does not.
  // A `?snapshot=` read returns the snapshot section, which carries `snaptime:` (pve-container
  // Config.pm `__snapshot_save_vmstate`/snapshot_prepare write it); the lxc schema omits it.
  'GET /nodes/{node}/lxc/{vmid}/config': ['$.parent', '$.snaptime'],
};

/** The schema node of the object that holds the property at `path` (a schema-check path). */
function parentSchema(schema: PveSchema, path: string): PveSchema | undefined {
  const tokens = [...path.matchAll(/\[(\d+)\]|\.([A-Za-z_$][\w$]*)|\[("(?:[^"\\]|\\.)*")\]/g)];
  let node: PveSchema | undefined = schema;
  for (const token of tokens.slice(0, -1)) {
    if (node === undefined) return undefined;
    if (token[1] !== undefined) {
      node = node.items;
    } else {
      const key = token[2] ?? (JSON.parse(token[3]!) as string);
      node = node.properties?.[key] ?? node.properties?.[key.replace(/\d+$/, '[n]')];
    }
  }
  return node;
}

/** Undeclared fields, normalised, minus those under an object declaring `additionalProperties`. */
function undeclaredFields(schema: PveSchema, paths: string[]): string[] {
  const out = paths
    .filter((p) => parentSchema(schema, p)?.additionalProperties !== 1)
    .map((p) => p.replace(/\[\d+\]/g, '[]'));
  return [...new Set(out)].sort();
}

/** Schema problems and undeclared fields of one payload. */
function schemaReport(endpoint: string, payload: unknown): { problems: string[]; undeclared: string[] } {
  const schema = loadEndpointSchema(endpoint).returns;
  const result = checkAgainstSchema(payload, schema);
  return { problems: result.problems, undeclared: undeclaredFields(schema, result.undeclared) };
}

function expectPveHeaders(res: Answer): void {
  expect(res.headers.get('server')).toBe('pve-api-daemon/3.0');
  expect(res.headers.get('content-type')).toBe('application/json;charset=UTF-8');
  expect(res.headers.get('cache-control')).toBe('max-age=0');
  expect(res.headers.get('pragma')).toBe('no-cache');
  expect(res.headers.get('expires')).toMatch(/GMT$/);
}

const SEED = { seed: 7, nodes: 4, guests: 200, lxcRatio: 0.3 };

let resources: Entry[];
let qemu: Entry; // a running, unlocked qemu guest with a snapshot taken in beforeAll
let lxc: Entry; // the same for lxc
let finishedUpid: string;
let failedUpid: string;
let runningUpid: string;

const guestOf = (type: string, pred: (g: Entry) => boolean): Entry => {
  const g = resources.find(
    (e) => e.type === type && e.lock === undefined && e.hastate === undefined && e.template === 0 && pred(e),
  );
  if (!g) throw new Error(`no ${type} guest matches`);
  return g;
};

beforeAll(async () => {
  sim = await startSimulator({ tls: false, ...SEED, taskDelayMs: 30 });
  resources = (await data('/cluster/resources')) as Entry[];
  qemu = guestOf('qemu', (g) => g.status === 'running');
  lxc = guestOf('lxc', (g) => g.status === 'running');
  const stopped = guestOf('qemu', (g) => g.status === 'stopped');
  const post = async (path: string, params: Record<string, string> = {}): Promise<string> => {
    const res = await call('POST', path, params);
    expect(res.status, res.text).toBe(200);
    return res.body.data as string;
  };
  const upids = await Promise.all([
    post(`/nodes/${qemu.node}/qemu/${qemu.vmid}/snapshot`, {
      snapname: 'shapes',
      description: 'taken by shapes.test',
      vmstate: '1',
    }),
    post(`/nodes/${lxc.node}/lxc/${lxc.vmid}/snapshot`, { snapname: 'shapes' }),
    post(`/nodes/${stopped.node}/qemu/${stopped.vmid}/status/start`),
    post(`/nodes/${lxc.node}/lxc/${lxc.vmid}/status/start`), // already running: fails inside the task
  ]);
  await Promise.all(upids.map(waitTask));
  finishedUpid = upids[0]!;
  failedUpid = upids[3]!;
  // One task that stays running while the lists are read (close() clears its timer).
  sim.cluster.options.taskDelayMs = 600_000;
  runningUpid = await post(`/nodes/${qemu.node}/qemu/${qemu.vmid}/status/reboot`);
  sim.cluster.options.taskDelayMs = 30;
  resources = (await data('/cluster/resources')) as Entry[];
});

afterAll(async () => {
  await sim?.close();
});

describe('read endpoints of a generated cluster (seed 7, 4 nodes, 200 guests, 30 % lxc)', () => {
  /** [endpoint, path, pve-shapes check] — paths resolved lazily, after beforeAll picked guests. */
  const cases = (): Array<[string, string, ((d: unknown) => string[]) | undefined]> => {
    const node = String(qemu.node);
    const upidNode = finishedUpid.split(':')[1]!;
    return [
      ['GET /version', '/version', undefined],
      ['GET /access/permissions', '/access/permissions', (d) => checkAccessPermissions(d)],
      ['GET /access/permissions', '/access/permissions?path=/', (d) => checkAccessPermissions(d, '/')],
      ['GET /cluster/resources', '/cluster/resources', checkClusterResources],
      ['GET /cluster/resources', '/cluster/resources?type=vm', checkClusterResources],
      ['GET /cluster/resources', '/cluster/resources?type=node', checkClusterResources],
      ['GET /cluster/resources', '/cluster/resources?type=storage', checkClusterResources],
      ['GET /cluster/resources', '/cluster/resources?type=sdn', checkClusterResources],
      ['GET /cluster/status', '/cluster/status', checkClusterStatus],
      ['GET /cluster/tasks', '/cluster/tasks', checkClusterTasks],
      ['GET /cluster/log', '/cluster/log', undefined],
      ['GET /cluster/log', '/cluster/log?max=5', undefined],
      ['GET /cluster/ha/status/current', '/cluster/ha/status/current', undefined],
      ['GET /cluster/ha/resources', '/cluster/ha/resources', undefined],
      ['GET /pools', '/pools', undefined],
      ['GET /pools', '/pools?poolid=prod', undefined],
      ['GET /storage', '/storage', checkStorageConfig],
      ['GET /storage', '/storage?type=lvmthin', checkStorageConfig],
      ['GET /nodes', '/nodes', checkNodes],
      ['GET /nodes/{node}/status', `/nodes/${node}/status`, undefined],
      ['GET /nodes/{node}/storage', `/nodes/${node}/storage`, undefined],
      ['GET /nodes/{node}/storage/{storage}/status', `/nodes/${node}/storage/local-lvm/status`, checkStorageStatus],
      ['GET /nodes/{node}/storage/{storage}/status', `/nodes/${node}/storage/ceph-vm/status`, checkStorageStatus],
      ['GET /nodes/{node}/tasks', `/nodes/${upidNode}/tasks`, checkNodeTasks],
      ['GET /nodes/{node}/tasks', `/nodes/${upidNode}/tasks?source=all`, checkNodeTasks],
      ['GET /nodes/{node}/tasks/{upid}/status', `/nodes/${upidNode}/tasks/${finishedUpid}/status`, checkTaskStatus],
      ['GET /nodes/{node}/tasks/{upid}/status', `/nodes/${qemu.node}/tasks/${runningUpid}/status`, checkTaskStatus],
      ['GET /nodes/{node}/tasks/{upid}/log', `/nodes/${upidNode}/tasks/${finishedUpid}/log`, checkTaskLog],
      ['GET /nodes/{node}/qemu', `/nodes/${node}/qemu`, undefined],
      ['GET /nodes/{node}/qemu', `/nodes/${node}/qemu?full=1`, undefined],
      ['GET /nodes/{node}/lxc', `/nodes/${lxc.node}/lxc`, undefined],
      [
        'GET /nodes/{node}/qemu/{vmid}/config',
        `/nodes/${node}/qemu/${qemu.vmid}/config`,
        (d) => checkGuestConfig(d, 'qemu'),
      ],
      [
        'GET /nodes/{node}/qemu/{vmid}/config',
        `/nodes/${node}/qemu/${qemu.vmid}/config?snapshot=shapes`,
        (d) => checkGuestConfig(d, 'qemu'),
      ],
      [
        'GET /nodes/{node}/lxc/{vmid}/config',
        `/nodes/${lxc.node}/lxc/${lxc.vmid}/config`,
        (d) => checkGuestConfig(d, 'lxc'),
      ],
      [
        'GET /nodes/{node}/lxc/{vmid}/config',
        `/nodes/${lxc.node}/lxc/${lxc.vmid}/config?snapshot=shapes`,
        (d) => checkGuestConfig(d, 'lxc'),
      ],
      [
        'GET /nodes/{node}/qemu/{vmid}/status/current',
        `/nodes/${node}/qemu/${qemu.vmid}/status/current`,
        (d) => checkGuestStatusCurrent(d, 'qemu'),
      ],
      [
        'GET /nodes/{node}/lxc/{vmid}/status/current',
        `/nodes/${lxc.node}/lxc/${lxc.vmid}/status/current`,
        (d) => checkGuestStatusCurrent(d, 'lxc'),
      ],
      [
        'GET /nodes/{node}/qemu/{vmid}/snapshot',
        `/nodes/${node}/qemu/${qemu.vmid}/snapshot`,
        (d) => checkSnapshotList(d, 'qemu'),
      ],
      [
        'GET /nodes/{node}/lxc/{vmid}/snapshot',
        `/nodes/${lxc.node}/lxc/${lxc.vmid}/snapshot`,
        (d) => checkSnapshotList(d, 'lxc'),
      ],
    ];
  };

  it('answers every read endpoint with Proxmox headers, a {data} envelope, schema-clean payloads and the pve-shapes rules', async () => {
    const seenUndeclared: Record<string, Set<string>> = {};
    for (const [endpoint, path, shape] of cases()) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(200);
      expectPveHeaders(res);
      const paged = endpoint === 'GET /nodes/{node}/tasks' || endpoint === 'GET /nodes/{node}/tasks/{upid}/log';
      expect(Object.keys(res.body).sort(), path).toEqual(paged ? ['data', 'total'] : ['data']);
      const report = schemaReport(endpoint, res.body.data);
      expect(report.problems, path).toEqual([]);
      for (const field of report.undeclared) (seenUndeclared[endpoint] ??= new Set()).add(field);
      if (shape) expect(shape(res.body.data), path).toEqual([]);
    }
    const seen = Object.fromEntries(Object.entries(seenUndeclared).map(([k, v]) => [k, [...v].sort()]));
    expect(seen).toEqual(UNDECLARED_BUT_REAL);
  });

  it('config, status/current and snapshot list of all 200 guests pass the schema and pve-shapes checks', async () => {
    const guests = resources.filter((e) => e.type === 'qemu' || e.type === 'lxc');
    expect(guests).toHaveLength(200);
    const problems: string[] = [];
    for (const g of guests) {
      const type = g.type as 'qemu' | 'lxc';
      const base = `/nodes/${g.node}/${type}/${g.vmid}`;
      const [config, current, snapshots] = await Promise.all([
        data(`${base}/config`),
        data(`${base}/status/current`),
        data(`${base}/snapshot`),
      ]);
      const checks: Array<[string, unknown, string[]]> = [
        [`GET /nodes/{node}/${type}/{vmid}/config`, config, checkGuestConfig(config, type)],
        [`GET /nodes/{node}/${type}/{vmid}/status/current`, current, checkGuestStatusCurrent(current, type)],
        [`GET /nodes/{node}/${type}/{vmid}/snapshot`, snapshots, checkSnapshotList(snapshots, type)],
      ];
      for (const [endpoint, payload, shapeProblems] of checks) {
        const report = schemaReport(endpoint, payload);
        const allowed = UNDECLARED_BUT_REAL[endpoint] ?? [];
        const extra = report.undeclared.filter((f) => !allowed.includes(f));
        for (const p of [...report.problems, ...shapeProblems, ...extra.map((f) => `undeclared ${f}`)])
          problems.push(`${base} ${endpoint.split('/').pop()}: ${p}`);
      }
      // The snapshot list's "current" digest is the config digest.
      const currentEntry = (snapshots as Entry[]).find((s) => s.name === 'current');
      expect(currentEntry?.digest).toBe((config as Entry).digest);
    }
    expect(problems).toEqual([]);
  });

  it('/cluster/resources: pools first, 200 guests in string-sorted vmid order, then 4 nodes, 16 storages, 4 sdn', async () => {
    const all = (await data('/cluster/resources')) as Entry[];
    const types = all.map((e) => e.type);
    const count = (t: string): number => types.filter((x) => x === t).length;
    expect(count('pool')).toBe(4);
    expect(count('qemu') + count('lxc')).toBe(200);
    expect(count('qemu')).toBeGreaterThan(100);
    expect(count('lxc')).toBeGreaterThan(30);
    expect(count('node')).toBe(4);
    expect(count('storage')).toBe(16);
    expect(count('sdn')).toBe(4);
    expect(all[0]).toEqual({ id: '/pool/dev', type: 'pool', pool: 'dev' });
    const vmids = all.filter((e) => e.type === 'qemu' || e.type === 'lxc').map((e) => String(e.vmid));
    expect(vmids).toEqual([...vmids].sort());
    expect(vmids.slice(0, 3)).toEqual(['100', '101', '102']);
  });

  it.each([
    ['vm', ['lxc', 'qemu'], 200],
    ['node', ['node'], 4],
    ['storage', ['storage'], 16],
    ['sdn', ['sdn'], 4],
  ])('/cluster/resources?type=%s returns only %j entries (%i)', async (type, expected, n) => {
    const list = (await data(`/cluster/resources?type=${type}`)) as Entry[];
    expect([...new Set(list.map((e) => e.type))].sort()).toEqual(expected);
    expect(list).toHaveLength(n);
  });

  it('/cluster/status: a cluster entry, then every node online with exactly one local', async () => {
    const list = (await data('/cluster/status')) as Entry[];
    expect(list[0]).toEqual({
      type: 'cluster',
      id: 'cluster',
      name: 'sim',
      nodes: 4,
      version: expect.any(Number) as number,
      quorate: 1,
    });
    const nodes = list.slice(1);
    expect(nodes.map((n) => n.name).sort()).toEqual(['pve1', 'pve2', 'pve3', 'pve4']);
    expect(nodes.every((n) => n.online === 1)).toBe(true);
    expect(nodes.filter((n) => n.local === 1)).toHaveLength(1);
  });

  it('/cluster/tasks lists the running task without status and the finished ones with endtime and status', async () => {
    const tasks = (await data('/cluster/tasks')) as Entry[];
    expect(checkClusterTasks(tasks)).toEqual([]);
    const running = tasks.find((t) => t.upid === runningUpid);
    expect(running).toMatchObject({
      type: 'qmreboot',
      id: String(qemu.vmid),
      user: 'root@pam',
      tokenid: 'inventory',
      saved: '0',
    });
    expect(running?.status).toBeUndefined();
    expect(running?.endtime).toBeUndefined();
    expect(running?.pid).toEqual(expect.any(Number));
    const finished = tasks.find((t) => t.upid === finishedUpid);
    expect(finished).toMatchObject({
      type: 'qmsnapshot',
      status: 'OK',
      saved: '1',
      endtime: expect.any(Number) as number,
    });
    expect(tasks.find((t) => t.upid === failedUpid)?.status).toBe(`CT ${lxc.vmid} already running`);
  });

  it('/nodes/{node}/tasks has `total` beside data, pages with start/limit and lists running tasks only with source=active|all', async () => {
    const node = String(qemu.node);
    const archive = await call('GET', `/nodes/${node}/tasks`);
    expect(archive.body.total).toBe((archive.body.data as Entry[]).length);
    expect((archive.body.data as Entry[]).some((t) => t.upid === runningUpid)).toBe(false);
    const all = await call('GET', `/nodes/${node}/tasks?source=all`);
    expect(all.body.total).toBe((archive.body.total as number) + 1);
    expect((all.body.data as Entry[]).find((t) => t.upid === runningUpid)?.status).toBe('RUNNING');
    const page = await call('GET', `/nodes/${node}/tasks?source=all&limit=1`);
    expect(page.body.data).toHaveLength(1);
    expect(page.body.total).toBe(all.body.total);
    expect(checkNodeTasks(page.body.data)).toEqual([]);
  });

  it('task status: running has no exitstatus, stopped has one; neither has endtime', async () => {
    const running = (await data(`/nodes/${qemu.node}/tasks/${runningUpid}/status`)) as Entry;
    expect(running).toMatchObject({ status: 'running', upid: runningUpid, type: 'qmreboot' });
    expect(running.exitstatus).toBeUndefined();
    const failed = (await data(`/nodes/${lxc.node}/tasks/${failedUpid}/status`)) as Entry;
    expect(failed).toMatchObject({
      status: 'stopped',
      exitstatus: `CT ${lxc.vmid} already running`,
      user: 'root@pam',
      tokenid: 'inventory',
    });
    expect(checkUpid(failedUpid)).toEqual([]);
    for (const s of [running, failed]) expect(Object.hasOwn(s, 'endtime')).toBe(false);
  });

  it('task log: `total` is the line count, lines are 1-based and page with start/limit', async () => {
    const node = failedUpid.split(':')[1]!;
    const full = await call('GET', `/nodes/${node}/tasks/${failedUpid}/log`);
    const lines = full.body.data as Array<{ n: number; t: string }>;
    expect(full.body.total).toBe(lines.length);
    expect(lines.at(-1)).toEqual({ n: lines.length, t: `TASK ERROR: CT ${lxc.vmid} already running` });
    const page = await call('GET', `/nodes/${qemu.node}/tasks/${finishedUpid}/log?start=1&limit=1`);
    expect(page.body.data).toEqual([{ n: 2, t: 'TASK OK' }]);
    expect(page.body.total).toBe(2);
    const empty = await call('GET', `/nodes/${qemu.node}/tasks/${runningUpid}/log`);
    expect(empty.body).toEqual({ data: [{ n: 1, t: 'no content' }], total: 1 });
  });

  it('snapshot list and config after a snapshot: parent chain, "current" entry, ?snapshot= config', async () => {
    const list = (await data(`/nodes/${qemu.node}/qemu/${qemu.vmid}/snapshot`)) as Entry[];
    const snap = list.find((s) => s.name === 'shapes');
    expect(snap).toMatchObject({
      description: 'taken by shapes.test',
      vmstate: 1,
      snaptime: expect.any(Number) as number,
    });
    expect(list.at(-1)).toMatchObject({ name: 'current', parent: 'shapes', running: 1, description: 'You are here!' });
    const config = (await data(`/nodes/${qemu.node}/qemu/${qemu.vmid}/config`)) as Entry;
    expect(config.parent).toBe('shapes');
    const atSnapshot = (await data(`/nodes/${qemu.node}/qemu/${qemu.vmid}/config?snapshot=shapes`)) as Entry;
    expect(atSnapshot.digest).toBe(config.digest);
    expect(atSnapshot.name).toBe(config.name);
    // The snapshot section's own lines: when it was taken, its description, the RAM state volume.
    expect(atSnapshot).toMatchObject({
      snaptime: snap!.snaptime,
      description: 'taken by shapes.test',
      vmstate: expect.stringMatching(new RegExp(`^[a-z-]+:vm-${qemu.vmid}-state-shapes$`)) as string,
    });
    const missing = await call('GET', `/nodes/${qemu.node}/qemu/${qemu.vmid}/config?snapshot=nope`);
    expect(missing.status).toBe(500);
    const lxcList = (await data(`/nodes/${lxc.node}/lxc/${lxc.vmid}/snapshot`)) as Entry[];
    expect(lxcList.every((s) => s.vmstate === undefined)).toBe(true);
  });

  it('/cluster/nextid answers a string (as real PVE does, although the schema says integer)', async () => {
    const res = await call('GET', '/cluster/nextid');
    expectPveHeaders(res);
    expect(res.body).toEqual({ data: '300' });
    expect(checkNextId(res.body.data)).toEqual([]);
    // The one deliberate schema deviation (API-NOTES §2.16: `{"data":"100"}`, a string).
    expect(schemaReport('GET /cluster/nextid', res.body.data).problems).toEqual([
      '$: expected integer, got string "300"',
    ]);
    expect((await call('GET', '/cluster/nextid?vmid=4242')).body).toEqual({ data: '4242' });
  });

  it('/cluster/nextid?vmid=<used> → 400 with errors.vmid', async () => {
    const res = await call('GET', `/cluster/nextid?vmid=${qemu.vmid}`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual({ vmid: `VM ${qemu.vmid} already exists` });
    expect(res.body.data).toBeNull();
    expect(checkErrorResponse(res.status, 'Parameter verification failed.', res.text)).toEqual([]);
  });

  it('/version, /pools?poolid= and HA views carry concrete values', async () => {
    expect(await data('/version')).toEqual({
      version: '9.1.1',
      release: '9.1',
      repoid: expect.stringMatching(/^[0-9a-f]{8,64}$/) as string,
    });
    const pools = (await data('/pools')) as Entry[];
    expect(pools).toEqual([
      { poolid: 'dev' },
      { poolid: 'infra', comment: 'shared services' },
      { poolid: 'prod' },
      { poolid: 'staging' },
    ]);
    const prod = (await data('/pools?poolid=prod')) as Array<{ poolid: string; members: Entry[] }>;
    expect(prod).toHaveLength(1);
    const expectedMembers = resources
      .filter((e) => e.type !== 'pool' && e.pool === 'prod')
      .map((e) => e.id)
      .sort();
    expect(expectedMembers.length).toBeGreaterThan(10);
    expect(prod[0]!.members.map((m) => m.id).sort()).toEqual(expectedMembers);
    const haResources = (await data('/cluster/ha/resources')) as Entry[];
    const haGuests = resources.filter((e) => e.hastate !== undefined);
    expect(haResources.map((h) => h.sid).sort()).toEqual(
      haGuests.map((g) => `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`).sort(),
    );
    const haStatus = (await data('/cluster/ha/status/current')) as Entry[];
    expect(haStatus.filter((e) => e.type === 'lrm')).toHaveLength(4);
    expect(haStatus.filter((e) => e.type === 'service')).toHaveLength(haGuests.length);
  });

  it('/nodes/{node}/storage and /nodes/{node}/qemu|lxc list what /cluster/resources says is on that node', async () => {
    const node = String(qemu.node);
    const storage = (await data(`/nodes/${node}/storage`)) as Entry[];
    expect(storage.map((s) => s.storage).sort()).toEqual(['ceph-vm', 'local', 'local-lvm', 'nfs-backup']);
    for (const s of storage) expect((s.used as number) + (s.avail as number)).toBe(s.total);
    for (const type of ['qemu', 'lxc']) {
      const list = (await data(`/nodes/${node}/${type}`)) as Entry[];
      const expected = resources.filter((e) => e.type === type && e.node === node).map((e) => e.vmid);
      expect(list.map((e) => e.vmid).sort()).toEqual([...expected].sort());
    }
  });
});

describe('an offline node (pve2)', () => {
  beforeAll(() => {
    sim.setNodeOnline('pve2', false);
  });
  afterAll(() => {
    sim.setNodeOnline('pve2', true);
  });

  it('/cluster/resources still passes the checks; pve2 guests are status "unknown", its storages have no disk/maxdisk', async () => {
    const all = (await data('/cluster/resources')) as Entry[];
    expect(checkClusterResources(all)).toEqual([]);
    const report = schemaReport('GET /cluster/resources', all);
    expect(report).toEqual({ problems: [], undeclared: [] });
    const guests = all.filter((e) => (e.type === 'qemu' || e.type === 'lxc') && e.node === 'pve2');
    expect(guests.length).toBeGreaterThan(20);
    for (const g of guests) {
      expect(g.status).toBe('unknown');
      expect(
        Object.keys(g).filter(
          (k) => !['id', 'type', 'vmid', 'node', 'status', 'tags', 'lock', 'pool', 'hastate'].includes(k),
        ),
      ).toEqual([]);
    }
    expect(
      all
        .filter((e) => (e.type === 'qemu' || e.type === 'lxc') && e.node !== 'pve2')
        .every((g) => g.status !== 'unknown'),
    ).toBe(true);
    const storages = all.filter((e) => e.type === 'storage' && e.node === 'pve2');
    expect(storages).toHaveLength(4);
    for (const s of storages) {
      expect(s.status).toBe('unknown');
      expect(s.disk).toBeUndefined();
      expect(s.maxdisk).toBeUndefined();
    }
    expect(all.find((e) => e.id === 'node/pve2')).toEqual({
      id: 'node/pve2',
      type: 'node',
      node: 'pve2',
      status: 'offline',
    });
  });

  it('/nodes passes checkNodes and lists pve2 offline without stats or fingerprint', async () => {
    const nodes = (await data('/nodes')) as Entry[];
    expect(checkNodes(nodes)).toEqual([]);
    expect(nodes.find((n) => n.node === 'pve2')).toEqual({
      id: 'node/pve2',
      type: 'node',
      node: 'pve2',
      status: 'offline',
    });
  });

  it('/cluster/status shows pve2 online 0 and the cluster still quorate', async () => {
    const list = (await data('/cluster/status')) as Entry[];
    expect(checkClusterStatus(list)).toEqual([]);
    expect(list.find((e) => e.name === 'pve2')).toMatchObject({ type: 'node', online: 0 });
    expect(list.filter((e) => e.type === 'node' && e.online === 1)).toHaveLength(3);
    expect(list[0]).toMatchObject({ type: 'cluster', quorate: 1 });
  });

  it.each(['/nodes/pve2/status', '/nodes/pve2/qemu', '/nodes/pve2/storage', '/nodes/pve2/tasks'])(
    '%s answers HTTP 595',
    async (path) => {
      const res = await fetch(`${sim.url}/api2/json${path}`, {
        headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` },
      });
      const body = await res.text();
      expect(res.status).toBe(595);
      expect(res.statusText).toBe('Errors during connection establishment, proxy handshake: No route to host');
      expect(checkErrorResponse(res.status, res.statusText, body)).toEqual([]);
    },
  );
});
