/**
 * The simulator's /_sim/ control API over HTTP: request counters, injected faults and
 * out-of-band changes (as if made in the Proxmox UI), each visible through /api2/json and
 * leaving the trace the UI would leave, unless `silent`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { ProxmoxApiError } from '../../src/proxmox/errors.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { checkClusterResources, checkClusterTasks, checkErrorResponse } from '../contract/pve-shapes.js';

type Entry = Record<string, unknown>;

let sim: Simulator;

async function api(path: string): Promise<{ status: number; reason: string; text: string; data: unknown }> {
  const res = await fetch(`${sim.url}/api2/json${path}`, {
    headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` },
  });
  const text = await res.text();
  return {
    status: res.status,
    reason: res.statusText,
    text,
    data: res.ok ? (JSON.parse(text) as { data: unknown }).data : undefined,
  };
}

async function read<T = Entry[]>(path: string): Promise<T> {
  const res = await api(path);
  expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBe(200);
  return res.data as T;
}

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; json: Entry }> {
  const res = await fetch(`${sim.url}/_sim/${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Entry };
}

async function ok(method: string, path: string, body?: unknown): Promise<Entry> {
  const res = await control(method, path, body);
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json;
}

const resourceOf = async (vmid: number): Promise<Entry | undefined> =>
  (await read('/cluster/resources')).find((e) => e.vmid === vmid);

/** Every task in every node's history plus the newest cluster-log uid: what the UI trace is made of. */
async function traceMark(): Promise<{ upids: Set<string>; logUid: number }> {
  const upids = new Set<string>();
  for (const node of ['pve1', 'pve2', 'pve3']) {
    for (const t of await read(`/nodes/${node}/tasks?source=all&limit=100000`)) upids.add(t.upid as string);
  }
  const log = await read('/cluster/log?max=1');
  return { upids, logUid: (log[0]?.uid as number | undefined) ?? 0 };
}

/** Tasks and cluster-log lines added since `mark`. */
async function tracesSince(mark: { upids: Set<string>; logUid: number }): Promise<{ tasks: Entry[]; log: string[] }> {
  const tasks: Entry[] = [];
  for (const node of ['pve1', 'pve2', 'pve3']) {
    for (const t of await read(`/nodes/${node}/tasks?source=all&limit=100000`))
      if (!mark.upids.has(t.upid as string)) tasks.push(t);
  }
  const log = (await read('/cluster/log?max=1000'))
    .filter((e) => (e.uid as number) > mark.logUid)
    .map((e) => e.msg as string);
  return { tasks, log: log.filter((m) => !/^(starting|end) task /.test(m)).reverse() };
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 5, nodes: 3, guests: 40, taskDelayMs: 30 });
});

afterAll(async () => {
  await sim?.close();
});

describe('request counters', () => {
  it('count /api2 requests per route pattern (not per URL) and reset', async () => {
    await ok('POST', 'counters/reset');
    expect(await ok('GET', 'counters')).toEqual({ total: 0, byEndpoint: {} });
    const guests = (await read('/cluster/resources?type=vm')).slice(0, 3);
    for (const g of guests) await read(`/nodes/${g.node}/${g.type}/${g.vmid}/config`);
    await read('/cluster/resources');
    await api('/does/not/exist');
    const counters = await ok('GET', 'counters');
    const perType = (t: string): number => guests.filter((g) => g.type === t).length;
    const expected: Record<string, number> = { 'GET /cluster/resources': 2, unmatched: 1 };
    if (perType('qemu')) expected['GET /nodes/{node}/qemu/{vmid}/config'] = perType('qemu');
    if (perType('lxc')) expected['GET /nodes/{node}/lxc/{vmid}/config'] = perType('lxc');
    expect(counters).toEqual({ total: 6, byEndpoint: expected });
    expect(await ok('POST', 'counters/reset')).toEqual({ ok: true });
    expect(await ok('GET', 'counters')).toEqual({ total: 0, byEndpoint: {} });
  });

  it('the in-process API sees the same counts', async () => {
    sim.resetCounters();
    await read('/version');
    expect(sim.counters()).toEqual({ total: 1, byEndpoint: { 'GET /version': 1 } });
  });
});

describe('faults', () => {
  beforeEach(async () => {
    await ok('DELETE', 'faults');
  });
  afterAll(async () => {
    await ok('DELETE', 'faults');
  });

  it('latencyMs delays every answer', async () => {
    // A latency far above what a loaded machine adds to a local request, so "fast again" can be
    // told from "still delayed" by a wide margin.
    const latencyMs = 1_000;
    await ok('POST', 'faults', { latencyMs });
    expect(await ok('GET', 'faults')).toEqual({ latencyMs });
    const started = Date.now();
    await read('/version');
    expect(Date.now() - started).toBeGreaterThanOrEqual(latencyMs - 10);
    await ok('DELETE', 'faults');
    const fast = Date.now();
    await read('/version');
    expect(Date.now() - fast).toBeLessThan(latencyMs);
  });

  it('errorRate 1 with errorStatus 503 fails every request; DELETE /_sim/faults clears it', async () => {
    await ok('POST', 'faults', { errorRate: 1, errorStatus: 503 });
    for (const path of ['/version', '/cluster/resources', '/nodes/pve1/status', '/nope']) {
      const res = await api(path);
      expect([res.status, res.reason], path).toEqual([503, 'simulated fault (injected through /_sim/faults)']);
      expect(JSON.parse(res.text)).toEqual({
        message: 'simulated fault (injected through /_sim/faults)\n',
        data: null,
      });
    }
    expect(await ok('DELETE', 'faults')).toEqual({ ok: true });
    expect(await ok('GET', 'faults')).toEqual({});
    expect((await api('/version')).status).toBe(200);
  });

  it('errorRate defaults to HTTP 500', async () => {
    await ok('POST', 'faults', { errorRate: 1 });
    const res = await api('/cluster/status');
    expect(res.status).toBe(500);
    expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
  });

  it('`endpoint` limits a fault to one route pattern', async () => {
    await ok('POST', 'faults', { errorRate: 1, errorStatus: 503, endpoint: 'GET /nodes/{node}/status' });
    expect((await api('/nodes/pve1/status')).status).toBe(503);
    expect((await api('/nodes/pve3/status')).status).toBe(503);
    expect((await api('/nodes/pve1/storage')).status).toBe(200);
    expect((await api('/cluster/resources')).status).toBe(200);
  });

  it('hang: the client with a short timeout gets kind "timeout"; other routes still answer', async () => {
    await ok('POST', 'faults', { hang: true, endpoint: 'GET /cluster/resources' });
    const client = createHttpProxmoxClient({
      cluster: 'sim',
      url: sim.url,
      tokenId: sim.tokens.full.id,
      tokenSecret: new Secret(sim.tokens.full.secret),
      tls: {},
      timeoutMs: 300,
      retries: 0,
    });
    try {
      const started = Date.now();
      const err = await client.clusterResources().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ProxmoxApiError);
      expect((err as ProxmoxApiError).kind).toBe('timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect((await client.version()).version).toBe('9.1.1');
      await ok('DELETE', 'faults');
      expect((await client.clusterResources()).guests).toHaveLength(40);
    } finally {
      await client.close();
    }
  });
});

describe('out-of-band changes', () => {
  it('create (qemu and lxc): in the next /cluster/resources, with a finished qmcreate / vzcreate task', async () => {
    const mark = await traceMark();
    const { vmid } = (await ok('POST', 'guests', {
      type: 'qemu',
      node: 'pve2',
      name: 'oob-vm',
      tags: ['oob', 'prod'],
      cores: 3,
      memoryMiB: 1024,
      status: 'running',
    })) as { vmid: number };
    expect(vmid).toBe(140);
    const { vmid: ct } = (await ok('POST', 'guests', { type: 'lxc', node: 'pve3', vmid: 5000, name: 'oob-ct' })) as {
      vmid: number;
    };
    expect(ct).toBe(5000);
    const all = await read('/cluster/resources');
    expect(checkClusterResources(all)).toEqual([]);
    expect(all.find((e) => e.vmid === vmid)).toMatchObject({
      id: `qemu/${vmid}`,
      node: 'pve2',
      name: 'oob-vm',
      tags: 'oob;prod',
      maxcpu: 3,
      maxmem: 1024 * 2 ** 20,
      status: 'running',
    });
    expect(all.find((e) => e.vmid === ct)).toMatchObject({
      id: 'lxc/5000',
      node: 'pve3',
      name: 'oob-ct',
      status: 'stopped',
    });
    const { tasks, log } = await tracesSince(mark);
    expect(tasks.map((t) => [t.node, t.type, t.id, t.user, t.status]).sort()).toEqual([
      ['pve2', 'qmcreate', String(vmid), 'root@pam', 'OK'],
      ['pve3', 'vzcreate', '5000', 'root@pam', 'OK'],
    ]);
    expect(log).toEqual([]);
    const clusterTasks = await read('/cluster/tasks');
    expect(checkClusterTasks(clusterTasks)).toEqual([]);
    expect(clusterTasks.find((t) => t.type === 'qmcreate' && t.id === String(vmid))).toMatchObject({
      status: 'OK',
      saved: '1',
    });
    expect(await read<Entry>(`/nodes/pve2/qemu/${vmid}/config`)).toMatchObject({
      name: 'oob-vm',
      cores: 3,
      memory: '1024',
    });
  });

  it('rename, retag and config change of a qemu guest: visible at once, one "update VM" line each', async () => {
    const g = (await read('/cluster/resources?type=vm')).find((e) => e.type === 'qemu' && e.lock === undefined)!;
    const vmid = g.vmid as number;
    const digest = (await read<Entry>(`/nodes/${g.node}/qemu/${vmid}/config`)).digest;
    const mark = await traceMark();
    await ok('PATCH', `guests/${vmid}`, { name: 'renamed-oob' });
    expect((await resourceOf(vmid))?.name).toBe('renamed-oob');
    await ok('PATCH', `guests/${vmid}`, { tags: ['blue', 'red'] });
    expect((await resourceOf(vmid))?.tags).toBe('blue;red');
    await ok('PATCH', `guests/${vmid}`, { config: { memory: '3072', description: null } });
    expect((await resourceOf(vmid))?.maxmem).toBe(3072 * 2 ** 20);
    const config = await read<Entry>(`/nodes/${g.node}/qemu/${vmid}/config`);
    expect([config.memory, config.description, config.digest === digest]).toEqual(['3072', undefined, false]);
    const { tasks, log } = await tracesSince(mark);
    expect(tasks).toEqual([]);
    expect(log).toEqual([
      `update VM ${vmid}: -name renamed-oob`,
      `update VM ${vmid}: -tags blue;red`,
      `update VM ${vmid}: -memory 3072 -delete description`,
    ]);
    expect(await ok('GET', `guests/${vmid}`)).toMatchObject({
      vmid,
      type: 'qemu',
      node: g.node,
      digest: config.digest,
    });
  });

  it('an lxc config change leaves no cluster-log line (as in Proxmox)', async () => {
    const g = (await read('/cluster/resources?type=vm')).find((e) => e.type === 'lxc' && e.lock === undefined)!;
    const mark = await traceMark();
    await ok('PATCH', `guests/${g.vmid}`, { tags: ['ct-tag'], name: 'ct-renamed' });
    expect(await resourceOf(g.vmid as number)).toMatchObject({ tags: 'ct-tag', name: 'ct-renamed' });
    expect(await tracesSince(mark)).toEqual({ tasks: [], log: [] });
  });

  it('migrate: the guest is on the new node at once, with a finished qmigrate task on the old one', async () => {
    const g = (await read('/cluster/resources?type=vm')).find(
      (e) => e.type === 'qemu' && e.hastate === undefined && e.node === 'pve1',
    )!;
    const mark = await traceMark();
    await ok('PATCH', `guests/${g.vmid}`, { node: 'pve3' });
    expect((await resourceOf(g.vmid as number))?.node).toBe('pve3');
    expect((await api(`/nodes/pve3/qemu/${g.vmid}/config`)).status).toBe(200);
    expect((await api(`/nodes/pve1/qemu/${g.vmid}/config`)).status).toBe(500);
    const { tasks } = await tracesSince(mark);
    expect(tasks.map((t) => [t.node, t.type, t.id, t.status])).toEqual([['pve1', 'qmigrate', String(g.vmid), 'OK']]);
  });

  it('status changes: start, pause, stop each visible at once with a finished qmstart / qmpause / qmstop task', async () => {
    const g = (await read('/cluster/resources?type=vm')).find(
      (e) => e.type === 'qemu' && e.status === 'stopped' && e.template === 0,
    )!;
    const mark = await traceMark();
    for (const status of ['running', 'paused', 'stopped']) {
      await ok('PATCH', `guests/${g.vmid}`, { status });
      expect((await resourceOf(g.vmid as number))?.status).toBe(status);
    }
    const { tasks } = await tracesSince(mark);
    expect(tasks.map((t) => t.type).sort()).toEqual(['qmpause', 'qmstart', 'qmstop']);
    expect(tasks.every((t) => t.node === g.node && t.id === String(g.vmid) && t.status === 'OK')).toBe(true);
  });

  it('delete: gone from the next /cluster/resources, with a finished qmdestroy task', async () => {
    const g = (await read('/cluster/resources?type=vm')).find((e) => e.type === 'qemu')!;
    const mark = await traceMark();
    await ok('DELETE', `guests/${g.vmid}`);
    expect(await resourceOf(g.vmid as number)).toBeUndefined();
    const { tasks } = await tracesSince(mark);
    expect(tasks.map((t) => [t.node, t.type, t.id, t.status])).toEqual([[g.node, 'qmdestroy', String(g.vmid), 'OK']]);
    expect((await control('GET', `guests/${g.vmid}`)).status).toBe(404);
  });

  it('`silent` changes are visible but leave no task and no cluster-log line', async () => {
    const mark = await traceMark();
    const { vmid } = (await ok('POST', 'guests', { type: 'qemu', node: 'pve1', name: 'ghost', silent: true })) as {
      vmid: number;
    };
    expect((await resourceOf(vmid))?.name).toBe('ghost');
    await ok('PATCH', `guests/${vmid}`, { name: 'ghost-2', tags: ['x'], config: { cores: '6' }, silent: true });
    await ok('PATCH', `guests/${vmid}`, { node: 'pve2', status: 'running', silent: true });
    expect(await resourceOf(vmid)).toMatchObject({
      name: 'ghost-2',
      tags: 'x',
      maxcpu: 6,
      node: 'pve2',
      status: 'running',
    });
    await ok('DELETE', `guests/${vmid}?silent=1`);
    expect(await resourceOf(vmid)).toBeUndefined();
    expect(await tracesSince(mark)).toEqual({ tasks: [], log: [] });
  });

  it('node offline/online through /_sim/nodes, reflected in /cluster/status and /_sim/state', async () => {
    await ok('POST', 'nodes/pve2/offline');
    expect((await read('/cluster/status')).find((e) => e.name === 'pve2')?.online).toBe(0);
    expect((await api('/nodes/pve2/status')).status).toBe(595);
    expect((await ok('GET', 'state')).nodes).toEqual([
      { name: 'pve1', online: true },
      { name: 'pve2', online: false },
      { name: 'pve3', online: true },
    ]);
    await ok('POST', 'nodes/pve2/online');
    expect((await read('/cluster/status')).find((e) => e.name === 'pve2')?.online).toBe(1);
  });

  it('bad control requests answer 4xx with an error text', async () => {
    expect((await control('PATCH', 'guests/999999', { name: 'x' })).status).toBe(404);
    expect((await control('POST', 'guests', { vmid: 5000 })).status).toBe(409);
    expect((await control('POST', 'guests', { node: 'pve9' })).status).toBe(400);
    const unknown = await control('GET', 'nothing');
    expect(unknown.status).toBe(404);
    expect(String(unknown.json.error)).toContain('no control route GET /_sim/nothing');
  });
});
