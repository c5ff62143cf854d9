/**
 * Write actions against the simulator over HTTPS, through the real client (certificate pinned by
 * fingerprint): each answers a UPID at once, the task is visible while it runs and after it ends,
 * and it finishes with Proxmox's log tail and the effect on /cluster/resources and the config.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxmoxApiError } from '../../src/proxmox/errors.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import type { Params } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { checkClusterTasks, checkNodeTasks, checkTaskLog, checkTaskStatus, checkUpid } from '../contract/pve-shapes.js';

type Entry = Record<string, unknown>;
type GuestType = 'qemu' | 'lxc';

interface Guest {
  vmid: number;
  type: GuestType;
  node: string;
  status: string;
  name: string;
  hastate?: string;
}

const TASK_DELAY_MS = 30;

let sim: Simulator;
let client: ProxmoxClient;
let pool: Guest[];

/** A guest that no other test uses: unlocked, not a template, not HA-managed unless asked. */
function take(type: GuestType, status: 'running' | 'stopped', extra: (g: Guest) => boolean = () => true): Guest {
  const i = pool.findIndex((g) => g.type === type && g.status === status && g.hastate === undefined && extra(g));
  if (i < 0) throw new Error(`no free ${status} ${type} guest left`);
  return pool.splice(i, 1)[0]!;
}

const base = (g: Guest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

async function resource(vmid: number): Promise<Entry | undefined> {
  const list = (await client.get('/cluster/resources', { type: 'vm' })) as Entry[];
  return list.find((e) => e.vmid === vmid);
}

async function config(g: Guest): Promise<Entry> {
  return (await client.get(`${base(g)}/config`)) as Entry;
}

interface Finished {
  upid: string;
  exitstatus: string;
  log: string[];
  /** What /cluster/resources said about `watch` while the task ran. */
  whileRunning?: Entry;
}

/**
 * Sends `request` with the simulator's task timers held: a task it starts keeps running, however
 * slow the machine, until release() runs the work its timer would have run. (The simulator ends a
 * task from a setTimeout that startTask sets; the hold takes that callback while startTask runs.)
 */
async function withTasksHeld<T>(request: () => Promise<T>): Promise<{ result: T; held: number; release: () => void }> {
  const cluster = sim.cluster;
  const startTask = cluster.startTask.bind(cluster);
  const held: Array<() => void> = [];
  cluster.startTask = (...args) => {
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((callback: () => void) => {
      held.push(callback);
      return realSetTimeout(() => {}, 0);
    }) as typeof setTimeout;
    try {
      return startTask(...args);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
  };
  try {
    const result = await request();
    return { result, held: held.length, release: () => held.splice(0).forEach((finish) => finish()) };
  } finally {
    cluster.startTask = startTask;
  }
}

/**
 * POSTs (or DELETEs) a write action and follows its task: the UPID comes back while the task
 * still runs (it is held until the running state has been read) and passes checkUpid; while the
 * task runs, /cluster/tasks lists it without status and /nodes/{node}/tasks?source=all with status
 * RUNNING; once it ends both carry the exit status.
 */
async function runTask(
  method: 'POST' | 'DELETE',
  path: string,
  params: Params = {},
  expected: { type: string; id: number },
  watch?: number,
): Promise<Finished> {
  const {
    result: upid,
    held,
    release,
  } = await withTasksHeld(
    async () => (method === 'POST' ? await client.post(path, params) : await client.delete(path, params)) as string,
  );
  let watched: Entry | undefined;
  let node: string;
  try {
    expect(held, 'the action started a task that ends on a timer').toBeGreaterThan(0);
    expect(checkUpid(upid)).toEqual([]);
    const [, upidNode, , , , type, id, user] = upid.split(':');
    node = upidNode!;
    expect({ type, id, user }).toEqual({ type: expected.type, id: String(expected.id), user: 'root@pam!inventory' });

    const [clusterTasks, nodeTasks, status, resourceWhileRunning] = await Promise.all([
      client.get('/cluster/tasks') as Promise<Entry[]>,
      client.get(`/nodes/${node}/tasks`, { source: 'all' }) as Promise<Entry[]>,
      client.get(`/nodes/${node}/tasks/${upid}/status`) as Promise<Entry>,
      watch === undefined ? Promise.resolve(undefined) : resource(watch),
    ]);
    watched = resourceWhileRunning;
    const runningEntry = clusterTasks.find((t) => t.upid === upid);
    expect(runningEntry, 'listed in /cluster/tasks while running').toBeDefined();
    expect(runningEntry?.status).toBeUndefined();
    expect(runningEntry?.endtime).toBeUndefined();
    expect(nodeTasks.find((t) => t.upid === upid)?.status).toBe('RUNNING');
    expect(status.status).toBe('running');
    expect(checkTaskStatus(status)).toEqual([]);
    expect(checkClusterTasks(clusterTasks)).toEqual([]);
  } finally {
    release();
  }

  const result = await client.waitForTask(upid, { intervalMs: 10, maxIntervalMs: 50, timeoutMs: 5_000 });
  const [after, archive, log] = await Promise.all([
    client.get('/cluster/tasks') as Promise<Entry[]>,
    client.get(`/nodes/${node}/tasks`) as Promise<Entry[]>,
    client.get(`/nodes/${node}/tasks/${upid}/log`) as Promise<Array<{ n: number; t: string }>>,
  ]);
  const done = after.find((t) => t.upid === upid);
  expect(done).toMatchObject({ status: result.exitstatus, endtime: expect.any(Number) as number, saved: '1' });
  expect(archive.find((t) => t.upid === upid)?.status).toBe(result.exitstatus);
  expect(checkNodeTasks(archive)).toEqual([]);
  expect(checkTaskLog(log)).toEqual([]);
  return { upid, exitstatus: result.exitstatus, log: log.map((l) => l.t), whileRunning: watched };
}

async function httpError(promise: Promise<unknown>): Promise<ProxmoxApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ProxmoxApiError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  sim = await startSimulator({ seed: 3, nodes: 3, guests: 120, lxcRatio: 0.4, taskDelayMs: TASK_DELAY_MS }); // HTTPS
  expect(sim.url).toMatch(/^https:/);
  client = createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: { fingerprint: sim.fingerprint },
    timeoutMs: 5_000,
    retries: 0,
  });
  const list = (await client.get('/cluster/resources', { type: 'vm' })) as Entry[];
  pool = list
    .filter((e) => e.lock === undefined && e.template === 0)
    .map((e) => ({
      vmid: e.vmid as number,
      type: e.type as GuestType,
      node: e.node as string,
      status: e.status as string,
      name: e.name as string,
      hastate: e.hastate as string | undefined,
    }));
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

describe.each([
  { type: 'qemu' as const, prefix: 'qm', label: 'VM', pause: 'qmpause' },
  { type: 'lxc' as const, prefix: 'vz', label: 'CT', pause: 'vzsuspend' },
])('$type power actions', ({ type, prefix, label, pause }) => {
  let g: Guest;
  beforeAll(() => {
    g = take(type, 'stopped');
  });

  it('start → running; starting again fails inside the task with "already running"', async () => {
    const ok = await runTask('POST', `${base(g)}/status/start`, {}, { type: `${prefix}start`, id: g.vmid });
    expect(ok.exitstatus).toBe('OK');
    expect(ok.log).toEqual([`starting ${label} ${g.vmid}`, 'TASK OK']);
    expect((await resource(g.vmid))?.status).toBe('running');

    const again = await runTask('POST', `${base(g)}/status/start`, {}, { type: `${prefix}start`, id: g.vmid });
    expect(again.exitstatus).toBe(`${label} ${g.vmid} already running`);
    expect(again.log.at(-1)).toBe(`TASK ERROR: ${label} ${g.vmid} already running`);
  });

  it(`suspend → ${type === 'qemu' ? '"paused" in /cluster/resources' : 'frozen, still "running"'}; resume → running`, async () => {
    const suspended = await runTask('POST', `${base(g)}/status/suspend`, {}, { type: pause, id: g.vmid });
    expect(suspended.log).toEqual(['TASK OK']);
    expect((await resource(g.vmid))?.status).toBe(type === 'qemu' ? 'paused' : 'running');
    if (type === 'qemu') {
      const current = (await client.get(`${base(g)}/status/current`)) as Entry;
      expect([current.status, current.qmpstatus]).toEqual(['running', 'paused']);
    }
    const resumed = await runTask('POST', `${base(g)}/status/resume`, {}, { type: `${prefix}resume`, id: g.vmid });
    expect(resumed.exitstatus).toBe('OK');
    expect((await resource(g.vmid))?.status).toBe('running');
  });

  it('reboot keeps it running with a fresh uptime', async () => {
    const rebooted = await runTask('POST', `${base(g)}/status/reboot`, {}, { type: `${prefix}reboot`, id: g.vmid });
    expect(rebooted.exitstatus).toBe('OK');
    const r = await resource(g.vmid);
    expect(r?.status).toBe('running');
    expect(r?.uptime).toBeLessThan(5);
  });

  it('shutdown → stopped; shutdown again fails with "not running"', async () => {
    const down = await runTask('POST', `${base(g)}/status/shutdown`, {}, { type: `${prefix}shutdown`, id: g.vmid });
    expect(down.log).toEqual(['TASK OK']);
    expect((await resource(g.vmid))?.status).toBe('stopped');
    const again = await runTask('POST', `${base(g)}/status/shutdown`, {}, { type: `${prefix}shutdown`, id: g.vmid });
    expect(again.exitstatus).toBe(`${label} ${g.vmid} not running`);
    expect(again.log).toEqual([`TASK ERROR: ${label} ${g.vmid} not running`]);
  });

  it('stop (hard) → stopped', async () => {
    const running = take(type, 'running');
    const stopped = await runTask(
      'POST',
      `${base(running)}/status/stop`,
      {},
      { type: `${prefix}stop`, id: running.vmid },
    );
    expect(stopped.exitstatus).toBe('OK');
    const r = await resource(running.vmid);
    expect([r?.status, r?.uptime, r?.cpu]).toEqual(['stopped', 0, 0]);
  });
});

describe('HA-managed guests', () => {
  it('stop and start run as "hastop" / "hastart" tasks and move the HA state', async () => {
    const i = pool.findIndex((g) => g.type === 'qemu' && g.hastate === 'started');
    expect(i).toBeGreaterThanOrEqual(0);
    const g = pool.splice(i, 1)[0]!;
    const stopped = await runTask('POST', `${base(g)}/status/stop`, {}, { type: 'hastop', id: g.vmid });
    expect(stopped.exitstatus).toBe('OK');
    expect(await resource(g.vmid)).toMatchObject({ status: 'stopped', hastate: 'stopped' });
    const started = await runTask('POST', `${base(g)}/status/start`, {}, { type: 'hastart', id: g.vmid });
    expect(started.exitstatus).toBe('OK');
    expect(await resource(g.vmid)).toMatchObject({ status: 'running', hastate: 'started' });
  });
});

describe.each([
  { type: 'qemu' as const, prefix: 'qm' },
  { type: 'lxc' as const, prefix: 'vz' },
])('$type snapshots', ({ type, prefix }) => {
  let g: Guest;
  let digestBefore: string;
  let parentBefore: unknown;
  const nameKey = type === 'qemu' ? 'name' : 'hostname';

  beforeAll(async () => {
    g = take(type, 'running');
    const list = (await client.get(`${base(g)}/snapshot`)) as Entry[];
    parentBefore = list.find((s) => s.name === 'current')?.parent;
    digestBefore = (await config(g)).digest as string;
  });

  it('create: lock "snapshot" while running; then listed, "current" points at it, digest changed', async () => {
    const res = await runTask(
      'POST',
      `${base(g)}/snapshot`,
      { snapname: 'pre_change', description: 'before the change' },
      { type: `${prefix}snapshot`, id: g.vmid },
      g.vmid,
    );
    expect(res.whileRunning?.lock).toBe('snapshot');
    expect(res.log).toEqual(["snapshot 'pre_change' created", 'TASK OK']);
    expect((await resource(g.vmid))?.lock).toBeUndefined();
    const list = (await client.get(`${base(g)}/snapshot`)) as Entry[];
    const snap = list.find((s) => s.name === 'pre_change');
    expect(snap).toMatchObject({ description: 'before the change', snaptime: expect.any(Number) as number });
    if (parentBefore !== undefined) expect(snap?.parent).toBe(parentBefore);
    const current = list.find((s) => s.name === 'current');
    expect(current?.parent).toBe('pre_change');
    const cfg = await config(g);
    expect(cfg.digest).not.toBe(digestBefore);
    expect(current?.digest).toBe(cfg.digest);
    expect(cfg.parent).toBe('pre_change');
  });

  it('a duplicate snapshot name fails inside the task', async () => {
    const res = await runTask(
      'POST',
      `${base(g)}/snapshot`,
      { snapname: 'pre_change' },
      { type: `${prefix}snapshot`, id: g.vmid },
    );
    expect(res.exitstatus).toBe("snapshot name 'pre_change' already used");
    expect(res.log.at(-1)).toBe("TASK ERROR: snapshot name 'pre_change' already used");
  });

  it('rollback restores the snapshot config', async () => {
    const original = (await config(g))[nameKey];
    await client.put(`${base(g)}/config`, { [nameKey]: 'changed-after-snapshot' });
    expect((await config(g))[nameKey]).toBe('changed-after-snapshot');
    const res = await runTask(
      'POST',
      `${base(g)}/snapshot/pre_change/rollback`,
      {},
      { type: `${prefix}rollback`, id: g.vmid },
      g.vmid,
    );
    expect(res.whileRunning?.lock).toBe('rollback');
    expect(res.exitstatus).toBe('OK');
    const cfg = await config(g);
    expect(cfg[nameKey]).toBe(original);
    expect(cfg.lock).toBeUndefined();
  });

  it('delete removes it and "current" goes back to the previous parent', async () => {
    const res = await runTask(
      'DELETE',
      `${base(g)}/snapshot/pre_change`,
      {},
      { type: `${prefix}delsnapshot`, id: g.vmid },
      g.vmid,
    );
    expect(res.whileRunning?.lock).toBe('snapshot-delete');
    expect(res.exitstatus).toBe('OK');
    const list = (await client.get(`${base(g)}/snapshot`)) as Entry[];
    expect(list.map((s) => s.name)).not.toContain('pre_change');
    expect(list.find((s) => s.name === 'current')?.parent).toBe(parentBefore);
    const again = await runTask(
      'DELETE',
      `${base(g)}/snapshot/pre_change`,
      {},
      { type: `${prefix}delsnapshot`, id: g.vmid },
    );
    expect(again.exitstatus).toBe("snapshot 'pre_change' does not exist");
  });

  it('a reserved snapshot name is refused before any task (HTTP 500)', async () => {
    const err = await httpError(client.post(`${base(g)}/snapshot`, { snapname: 'current' }));
    expect([err.status, err.reason]).toEqual([500, "unable to use snapshot name 'current' (reserved name)"]);
  });
});

describe.each([
  { type: 'qemu' as const, prefix: 'qm', nameKey: 'name' },
  { type: 'lxc' as const, prefix: 'vz', nameKey: 'hostname' },
])('$type clone', ({ type, prefix, nameKey }) => {
  it('the copy appears at once with lock "clone", loses it when the task ends, and has new MACs and disks', async () => {
    const source = take(type, 'stopped');
    const newid = Number(await client.get('/cluster/nextid'));
    const res = await runTask(
      'POST',
      `${base(source)}/clone`,
      { newid, [nameKey]: `clone-of-${source.vmid}` },
      { type: `${prefix}clone`, id: source.vmid },
      newid,
    );
    expect(res.whileRunning).toMatchObject({ vmid: newid, node: source.node, lock: 'clone' });
    expect(res.exitstatus).toBe('OK');
    const copy = await resource(newid);
    expect(copy).toMatchObject({ type, node: source.node, status: 'stopped', name: `clone-of-${source.vmid}` });
    expect(copy?.lock).toBeUndefined();
    const [src, dst] = await Promise.all([config(source), config({ ...source, vmid: newid })]);
    const mac = (net: unknown): string | undefined => /([0-9A-F]{2}:){5}[0-9A-F]{2}/.exec(String(net))?.[0];
    expect(mac(dst.net0)).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    expect(mac(dst.net0)).not.toBe(mac(src.net0));
    const disk = type === 'qemu' ? 'scsi0' : 'rootfs';
    expect(String(dst[disk])).toContain(`vm-${newid}-disk-0`);
    expect(dst.digest).not.toBe(src.digest);
    // The next free id moved on.
    expect(Number(await client.get('/cluster/nextid'))).toBeGreaterThan(newid);
  });

  it('an existing newid is refused before any task (HTTP 500)', async () => {
    const source = pool.find((g) => g.type === type)!;
    const err = await httpError(client.post(`${base(source)}/clone`, { newid: source.vmid }));
    expect(err.status).toBe(500);
    expect(err.reason).toBe(
      `unable to create ${type === 'qemu' ? 'VM' : 'CT'} ${source.vmid}: config file already exists`,
    );
  });
});

describe('migrate', () => {
  it('a stopped qemu guest moves to the target node, holding lock "migrate" while the task runs', async () => {
    const g = take('qemu', 'stopped');
    const target = g.node === 'pve1' ? 'pve2' : 'pve1';
    const res = await runTask('POST', `${base(g)}/migrate`, { target }, { type: 'qmigrate', id: g.vmid }, g.vmid);
    expect(res.whileRunning).toMatchObject({ node: g.node, lock: 'migrate' });
    expect(res.log).toEqual([
      `starting migration of VM ${g.vmid} to node '${target}'`,
      `migration finished (${g.node} -> ${target})`,
      'TASK OK',
    ]);
    const r = await resource(g.vmid);
    expect(r?.node).toBe(target);
    expect(r?.lock).toBeUndefined();
    expect((await config({ ...g, node: target })).digest).toMatch(/^[0-9a-f]{40}$/);
    const gone = await httpError(config(g));
    expect([gone.status, gone.kind]).toEqual([500, 'not_found']);
  });

  it('a running qemu guest without online=1 → HTTP 500; with online=1 it migrates and keeps running', async () => {
    const g = take('qemu', 'running');
    const target = g.node === 'pve3' ? 'pve2' : 'pve3';
    const err = await httpError(client.post(`${base(g)}/migrate`, { target }));
    expect([err.status, err.reason]).toEqual([500, "can't migrate running VM without --online"]);
    const res = await runTask('POST', `${base(g)}/migrate`, { target, online: true }, { type: 'qmigrate', id: g.vmid });
    expect(res.exitstatus).toBe('OK');
    expect(await resource(g.vmid)).toMatchObject({ node: target, status: 'running' });
  });

  it('target = the node the guest is on → 400 errors.target', async () => {
    const g = pool.find((x) => x.type === 'qemu')!;
    const err = await httpError(client.post(`${base(g)}/migrate`, { target: g.node }));
    expect([err.status, err.kind]).toEqual([400, 'parameter']);
    expect(err.errors).toEqual({ target: 'target is local node.' });
  });

  it('lxc: stopped moves with vzmigrate; running without restart=1 → HTTP 500', async () => {
    const g = take('lxc', 'stopped');
    const target = g.node === 'pve1' ? 'pve3' : 'pve1';
    const res = await runTask('POST', `${base(g)}/migrate`, { target }, { type: 'vzmigrate', id: g.vmid });
    expect(res.exitstatus).toBe('OK');
    expect((await resource(g.vmid))?.node).toBe(target);
    const running = take('lxc', 'running');
    const err = await httpError(
      client.post(`${base(running)}/migrate`, { target: running.node === 'pve1' ? 'pve2' : 'pve1' }),
    );
    expect([err.status, err.reason]).toEqual([
      500,
      `CT ${running.vmid} is running - use restart migration (restart=1)`,
    ]);
  });
});

describe('config changes', () => {
  async function clusterLog(): Promise<string[]> {
    return ((await client.clusterLog(200)) as Array<{ msg: string }>).map((e) => e.msg);
  }

  it('qemu PUT is synchronous: data null, digest changes, an "update VM" cluster-log line', async () => {
    const g = take('qemu', 'stopped');
    const before = await config(g);
    const answer = await client.put(`${base(g)}/config`, {
      name: 'renamed-by-put',
      cores: 3,
      digest: before.digest as string,
    });
    expect(answer).toBeNull();
    const after = await config(g);
    expect([after.name, after.cores]).toEqual(['renamed-by-put', 3]);
    expect(after.digest).not.toBe(before.digest);
    expect(await clusterLog()).toContain(`update VM ${g.vmid}: -name renamed-by-put -cores 3`);
    expect((await resource(g.vmid))?.name).toBe('renamed-by-put');

    // The old digest is stale now.
    const err = await httpError(
      client.put(`${base(g)}/config`, { name: 'lost-update', digest: before.digest as string }),
    );
    expect([err.status, err.reason]).toEqual([
      500,
      'detected modified configuration - file changed by other user? Try again.',
    ]);
    expect((await config(g)).name).toBe('renamed-by-put');

    await client.put(`${base(g)}/config`, { delete: 'cores' });
    expect((await config(g)).cores).toBeUndefined();
    expect(await clusterLog()).toContain(`update VM ${g.vmid}: -delete cores`);
  });

  it('lxc PUT changes config and digest but writes no cluster-log line', async () => {
    const g = take('lxc', 'stopped');
    const before = await config(g);
    expect(
      await client.put(`${base(g)}/config`, { hostname: 'ct-renamed', digest: before.digest as string }),
    ).toBeNull();
    const after = await config(g);
    expect(after.hostname).toBe('ct-renamed');
    expect(after.digest).not.toBe(before.digest);
    expect((await clusterLog()).filter((m) => m.includes(`VM ${g.vmid}:`))).toEqual([]);
    const err = await httpError(client.put(`${base(g)}/config`, { hostname: 'x', digest: before.digest as string }));
    expect([err.status, err.reason]).toEqual([
      500,
      'detected modified configuration - file changed by other user? Try again.',
    ]);
  });

  it('qemu POST config is asynchronous: a qmconfig task that applies the change', async () => {
    const g = take('qemu', 'stopped');
    const before = await config(g);
    const res = await runTask(
      'POST',
      `${base(g)}/config`,
      { description: 'set by POST', digest: before.digest as string },
      { type: 'qmconfig', id: g.vmid },
    );
    expect(res.log).toEqual(['TASK OK']);
    const after = await config(g);
    expect(after.description).toBe('set by POST');
    expect(after.digest).not.toBe(before.digest);
    expect(await clusterLog()).toContain(`update VM ${g.vmid}: -description set by POST`);

    // qemu-server checks the digest before forking: a stale one is an HTTP 500, no task starts.
    const tasksBefore = (await client.clusterTasks()).length;
    const err = await httpError(
      client.post(`${base(g)}/config`, { description: 'lost', digest: before.digest as string }),
    );
    expect([err.status, err.reason]).toEqual([
      500,
      'detected modified configuration - file changed by other user? Try again.',
    ]);
    expect((await client.clusterTasks()).length).toBe(tasksBefore);
    expect((await config(g)).description).toBe('set by POST');
  });
});

describe('guest agent exec', () => {
  const withAgent = async (status: 'running' | 'stopped'): Promise<Guest> => {
    for (const candidate of pool.filter((g) => g.type === 'qemu' && g.status === status && g.hastate === undefined)) {
      if ((await config(candidate)).agent === '1') return take('qemu', status, (g) => g.vmid === candidate.vmid);
    }
    throw new Error(`no ${status} qemu guest with agent=1`);
  };

  it('on a running VM with agent=1: {pid}, then exec-status reports exited:1, exitcode:0 and the output', async () => {
    const g = await withAgent('running');
    const started = (await client.post(`${base(g)}/agent/exec`, { command: ['hostname'] })) as Entry;
    expect(Object.keys(started)).toEqual(['pid']);
    expect(started.pid).toEqual(expect.any(Number));
    let status: Entry = {};
    for (let i = 0; i < 100 && status.exited !== 1; i++) {
      status = (await client.get(`${base(g)}/agent/exec-status`, { pid: started.pid as number })) as Entry;
      if (status.exited !== 1) {
        expect(status).toEqual({ exited: 0 });
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    expect(status).toEqual({ exited: 1, exitcode: 0, 'out-data': `${g.name}\n` });
  });

  it('on a stopped VM → HTTP 500 "VM <id> is not running"', async () => {
    const g = await withAgent('stopped');
    const err = await httpError(client.post(`${base(g)}/agent/exec`, { command: ['hostname'] }));
    expect([err.status, err.reason]).toEqual([500, `VM ${g.vmid} is not running`]);
  });

  it('on a running VM without agent → HTTP 500', async () => {
    let g: Guest | undefined;
    for (const candidate of pool.filter(
      (x) => x.type === 'qemu' && x.status === 'running' && x.hastate === undefined,
    )) {
      if ((await config(candidate)).agent === undefined) {
        g = candidate;
        break;
      }
    }
    expect(g).toBeDefined();
    const err = await httpError(client.post(`${base(g!)}/agent/exec`, { command: ['hostname'] }));
    expect([err.status, err.reason]).toEqual([500, 'No QEMU guest agent configured']);
  });
});
