/**
 * What an action queue's fault tests need from the simulator, over real HTTP through the real
 * client: write tasks that fail or hang on demand, write requests refused before any task, a
 * node going offline mid-task, quorum lost with every node online, the task delay changed at
 * runtime, and a write log that counts each guest's actions exactly.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { ProxmoxApiError } from '../../src/proxmox/errors.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import type { SimGuest } from '../../src/sim/state.js';

type Entry = Record<string, unknown>;

const TASK_DELAY_MS = 20;

let sim: Simulator;
let client: ProxmoxClient;
const used = new Set<number>();

beforeAll(async () => {
  sim = await startSimulator({
    tls: false,
    seed: 11,
    nodes: 3,
    guests: 120,
    lxcRatio: 0.4,
    taskDelayMs: TASK_DELAY_MS,
  });
  client = createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: {},
    timeoutMs: 5_000,
    retries: 0,
  });
});

afterAll(async () => {
  await client?.close();
  await sim?.close();
});

beforeEach(async () => {
  await ok('DELETE', 'task-faults');
});

/** A guest no other test has taken: unlocked, not a template, not HA-managed. */
function take(type: 'qemu' | 'lxc', status: 'running' | 'stopped', node?: string): SimGuest {
  const g = [...sim.cluster.guests.values()].find(
    (x) =>
      x.type === type &&
      x.status === status &&
      !x.values.lock &&
      x.values.template !== '1' &&
      !x.ha &&
      (node === undefined || x.node === node) &&
      !used.has(x.vmid),
  );
  if (!g) throw new Error(`no free ${status} ${type} guest left`);
  used.add(g.vmid);
  return g;
}

const base = (g: SimGuest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

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

async function refused(p: Promise<unknown>): Promise<ProxmoxApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return err as ProxmoxApiError;
}

const taskStatus = async (node: string, upid: string): Promise<Entry> =>
  (await client.get(`/nodes/${node}/tasks/${upid}/status`)) as Entry;

async function finish(upid: string): Promise<{ exitstatus: string; log: string[] }> {
  const result = await client.waitForTask(upid, { intervalMs: 5, maxIntervalMs: 20, timeoutMs: 5_000 });
  const node = upid.split(':')[1]!;
  const log = (await client.get(`/nodes/${node}/tasks/${upid}/log`)) as Array<{ t: string }>;
  return { exitstatus: result.exitstatus, log: log.map((l) => l.t) };
}

const post = async (path: string, params = {}): Promise<string> => (await client.post(path, params)) as string;

describe('fail: the next N matching write tasks end with TASK ERROR', () => {
  it('fails only tasks of the given type, as many as asked, with the message as exit status', async () => {
    const [a, b, c] = [take('qemu', 'stopped'), take('qemu', 'stopped'), take('qemu', 'stopped')];
    const ct = take('lxc', 'stopped');
    const message = 'start failed: QEMU exited with code 1';
    await ok('POST', 'task-faults', { fail: { type: 'qmstart', count: 2, message } });

    const lxc = await finish(await post(`${base(ct)}/status/start`));
    expect(lxc.exitstatus).toBe('OK');
    expect(await ok('GET', 'task-faults')).toEqual({ fail: { type: 'qmstart', count: 2, message } });

    for (const g of [a, b]) {
      const res = await finish(await post(`${base(g)}/status/start`));
      expect(res).toEqual({ exitstatus: message, log: [`TASK ERROR: ${message}`] });
      expect(sim.cluster.guests.get(g.vmid)?.status).toBe('stopped');
    }
    expect(await ok('GET', 'task-faults')).toEqual({});
    expect((await finish(await post(`${base(c)}/status/start`))).exitstatus).toBe('OK');
    expect(sim.cluster.guests.get(c.vmid)?.status).toBe('running');
  });

  it('a vmid limits it to one guest; a failed snapshot task leaves no lock behind', async () => {
    const [target, other] = [take('qemu', 'running'), take('qemu', 'running')];
    sim.setTaskFaults({ fail: { vmid: target.vmid, message: 'snapshot feature is not available' } });
    expect((await finish(await post(`${base(other)}/snapshot`, { snapname: 'ok1' }))).exitstatus).toBe('OK');
    const failed = await finish(await post(`${base(target)}/snapshot`, { snapname: 'never' }));
    expect(failed.exitstatus).toBe('snapshot feature is not available');
    const now = sim.cluster.guests.get(target.vmid)!;
    expect(now.values.lock).toBeUndefined();
    expect(now.snapshots.map((s) => s.name)).not.toContain('never');
    expect(sim.taskFaults()).toEqual({});
  });

  it('bad fault bodies answer 400 naming the field', async () => {
    const missing = await control('POST', 'task-faults', { fail: { count: 1 } });
    expect([missing.status, missing.json.error]).toEqual([
      400,
      'task faults: fail.message is required (the task exit status); see docs/simulator.md',
    ]);
    expect((await control('POST', 'task-faults', { fail: { message: 'x', count: 0 } })).status).toBe(400);
    expect((await control('POST', 'task-faults', { reject: { status: 200 } })).status).toBe(400);
    const unknown = await control('POST', 'task-faults', { explode: {} });
    expect(unknown.json.error).toBe(
      'task faults: explode is not a fault; use fail, hang or reject; see docs/simulator.md',
    );
  });
});

describe('hang: tasks started while set stay running until cleared', () => {
  it('holds only matching tasks, then finishes them with their real outcome when cleared', async () => {
    const [held, free] = [take('qemu', 'stopped'), take('lxc', 'stopped')];
    await ok('POST', 'task-faults', { hang: { vmid: held.vmid } });
    const heldUpid = await post(`${base(held)}/status/start`);
    expect((await finish(await post(`${base(free)}/status/start`))).exitstatus).toBe('OK');

    await new Promise((r) => setTimeout(r, TASK_DELAY_MS * 10));
    expect(await taskStatus(held.node, heldUpid)).toMatchObject({ status: 'running' });
    expect(((await client.get('/cluster/tasks')) as Entry[]).find((t) => t.upid === heldUpid)?.status).toBeUndefined();
    expect(sim.cluster.guests.get(held.vmid)?.status).toBe('stopped');

    await ok('DELETE', 'task-faults');
    expect(await taskStatus(held.node, heldUpid)).toMatchObject({ status: 'stopped', exitstatus: 'OK' });
    expect(sim.cluster.guests.get(held.vmid)?.status).toBe('running');
  });

  it('hang and fail together: the task hangs, then fails when released', async () => {
    const g = take('qemu', 'running');
    sim.setTaskFaults({ hang: {}, fail: { message: 'VM quit/powerdown failed - got timeout' } });
    const upid = await post(`${base(g)}/status/shutdown`);
    expect(await taskStatus(g.node, upid)).toMatchObject({ status: 'running' });
    sim.setTaskFaults({});
    expect(await taskStatus(g.node, upid)).toMatchObject({
      status: 'stopped',
      exitstatus: 'VM quit/powerdown failed - got timeout',
    });
    expect(sim.cluster.guests.get(g.vmid)?.status).toBe('running');
  });
});

describe('reject: the next N write requests answer an HTTP error and start no task', () => {
  it('500 with Proxmox’s message, once; the retry then starts a task', async () => {
    const g = take('qemu', 'stopped');
    await ok('POST', 'task-faults', { reject: { status: 500, message: `VM ${g.vmid} is locked (backup)` } });
    const tasks = sim.cluster.tasks.length;
    const err = await refused(post(`${base(g)}/status/start`));
    expect([err.status, err.reason]).toEqual([500, `VM ${g.vmid} is locked (backup)`]);
    expect(sim.cluster.tasks.length).toBe(tasks);
    expect(await finish(await post(`${base(g)}/status/start`))).toMatchObject({ exitstatus: 'OK' });
  });

  it('595 "Connection refused", limited to one guest and one endpoint; reads are never rejected', async () => {
    const [g, other] = [take('qemu', 'running'), take('qemu', 'running')];
    sim.setTaskFaults({
      reject: {
        vmid: g.vmid,
        endpoint: 'POST /nodes/{node}/qemu/{vmid}/status/stop',
        count: 2,
        status: 595,
        message: 'Connection refused',
      },
    });
    await client.get(`${base(g)}/status/current`);
    expect(await finish(await post(`${base(g)}/status/reboot`))).toMatchObject({ exitstatus: 'OK' });
    expect(await finish(await post(`${base(other)}/status/stop`))).toMatchObject({ exitstatus: 'OK' });
    for (let i = 0; i < 2; i++) {
      const err = await refused(post(`${base(g)}/status/stop`));
      expect([err.status, err.reason, err.kind]).toEqual([595, 'Connection refused', 'node_unreachable']);
    }
    expect(await finish(await post(`${base(g)}/status/stop`))).toMatchObject({ exitstatus: 'OK' });
  });
});

describe('a node offline mid-task', () => {
  it('task status answers 595 while the node is offline, and the task’s end once it is back', async () => {
    const g = take('qemu', 'stopped', 'pve2');
    sim.setTaskFaults({ hang: { vmid: g.vmid } });
    const upid = await post(`${base(g)}/status/start`);
    sim.setNodeOnline('pve2', false);
    try {
      const err = await refused(taskStatus('pve2', upid));
      expect([err.status, err.reason]).toEqual([
        595,
        'Errors during connection establishment, proxy handshake: No route to host',
      ]);
      const other = take('qemu', 'stopped', 'pve2');
      const tasks = sim.cluster.tasks.length;
      const postErr = await refused(post(`${base(other)}/status/start`));
      expect(postErr.status).toBe(595);
      expect(sim.cluster.tasks.length).toBe(tasks);
      // The worker runs on the node whatever the API node can reach.
      sim.setTaskFaults({});
    } finally {
      sim.setNodeOnline('pve2', true);
    }
    expect(await taskStatus('pve2', upid)).toMatchObject({ status: 'stopped', exitstatus: 'OK' });
  });
});

describe('quorum loss with every node online', () => {
  it('refuses writes with "cluster not ready - no quorum?", reads work, /cluster/status says quorate 0', async () => {
    const g = take('lxc', 'stopped');
    await ok('POST', 'quorum/lost');
    try {
      const tasks = sim.cluster.tasks.length;
      const err = await refused(post(`${base(g)}/status/start`));
      expect([err.status, err.reason]).toEqual([500, 'cluster not ready - no quorum?']);
      const snapErr = await refused(post(`${base(g)}/snapshot`, { snapname: 'q1' }));
      expect(snapErr.status).toBe(500);
      expect(sim.cluster.tasks.length).toBe(tasks);
      const status = (await client.get('/cluster/status')) as Entry[];
      expect(status.find((e) => e.type === 'cluster')?.quorate).toBe(0);
      expect(status.filter((e) => e.type === 'node').every((e) => e.online === 1)).toBe(true);
      await client.get(`${base(g)}/config`);
      expect((await ok('GET', 'state')).quorate).toBe(false);
    } finally {
      await ok('POST', 'quorum/restored');
    }
    const status = (await client.get('/cluster/status')) as Entry[];
    expect(status.find((e) => e.type === 'cluster')?.quorate).toBe(1);
    expect(await finish(await post(`${base(g)}/status/start`))).toMatchObject({ exitstatus: 'OK' });
  });
});

describe('task delay at runtime', () => {
  it('POST /_sim/settings changes how long new tasks run', async () => {
    const [slow, fast] = [take('qemu', 'stopped'), take('qemu', 'stopped')];
    expect(await ok('GET', 'settings')).toEqual({ taskDelayMs: TASK_DELAY_MS, statusLagMs: 0 });
    await ok('POST', 'settings', { taskDelayMs: 600_000 });
    const slowUpid = await post(`${base(slow)}/status/start`);
    expect(await taskStatus(slow.node, slowUpid)).toMatchObject({ status: 'running' });
    await ok('POST', 'settings', { taskDelayMs: 0 });
    const fastUpid = await post(`${base(fast)}/status/start`);
    expect(await taskStatus(fast.node, fastUpid)).toMatchObject({ status: 'stopped', exitstatus: 'OK' });
    sim.setTiming({ taskDelayMs: TASK_DELAY_MS });
    expect(await ok('GET', 'settings')).toEqual({ taskDelayMs: TASK_DELAY_MS, statusLagMs: 0 });
    const bad = await control('POST', 'settings', { taskDelayMs: -1 });
    expect([bad.status, bad.json.error]).toEqual([
      400,
      'settings: taskDelayMs must be a number of milliseconds from 0 to 3600000',
    ]);
  });
});

describe('the write log', () => {
  it('records each write with its real path, params, token, status and UPID; reads are not in it', async () => {
    const [g, ct] = [take('qemu', 'stopped'), take('lxc', 'running')];
    await ok('POST', 'writes/reset');
    const before = Date.now();
    const upid = await post(`${base(g)}/status/start`, { timeout: 30 });
    await client.get('/cluster/resources');
    sim.setTaskFaults({ reject: { status: 500, message: `CT ${ct.vmid} is locked (backup)` } });
    await refused(post(`${base(ct)}/status/shutdown`, { forceStop: 1 }));
    await refused(post(`${base(ct)}/status/shutdown`, { bogus: 1 }));
    await client.put(`${base(g)}/config`, { cipassword: 'hunter2-canary', description: 'x' });
    await finish(upid);

    const log = await ok('GET', 'writes');
    const start = `POST ${base(g)}/status/start`;
    const shutdown = `POST ${base(ct)}/status/shutdown`;
    expect(log.byRequest).toEqual({ [start]: 1, [shutdown]: 2, [`PUT ${base(g)}/config`]: 1 });
    expect(log.total).toBe(4);
    const writes = log.writes as Entry[];
    expect(writes[0]).toEqual({
      time: expect.any(Number) as number,
      method: 'POST',
      path: `${base(g)}/status/start`,
      params: { timeout: '30' },
      user: 'root@pam!inventory',
      status: 200,
      upid,
    });
    expect(writes[0]!.time as number).toBeGreaterThanOrEqual(before);
    expect(writes[1]).toMatchObject({
      status: 500,
      error: `CT ${ct.vmid} is locked (backup)`,
      params: { forceStop: '1' },
    });
    expect(writes[1]!.upid).toBeUndefined();
    expect(writes[2]).toMatchObject({ status: 400, error: 'Parameter verification failed.' });
    expect(writes[3]).toMatchObject({ status: 200, params: { cipassword: '**********', description: 'x' } });
    const text = JSON.stringify(log);
    expect(text).not.toContain('hunter2-canary');
    expect(text).not.toContain(sim.tokens.full.secret);

    expect(sim.writeCounts()).toEqual(log.byRequest);
    await ok('POST', 'writes/reset');
    expect(await ok('GET', 'writes')).toEqual({ total: 0, byRequest: {}, writes: [] });
  });

  it('a request with a wrong token is logged without a user', async () => {
    const g = take('qemu', 'stopped');
    sim.resetWrites();
    const res = await fetch(`${sim.url}/api2/json${base(g)}/status/start`, {
      method: 'POST',
      headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=wrong` },
    });
    expect(res.status).toBe(401);
    expect(sim.writes()).toEqual([
      {
        time: expect.any(Number) as number,
        method: 'POST',
        path: `${base(g)}/status/start`,
        params: {},
        status: 401,
        error: 'Authentication failed!',
      },
    ]);
  });
});

describe('/cluster/tasks carries what a reconciler matches a lost UPID on', () => {
  it('type, id, user and tokenid split from the token, and starttime, while running and after', async () => {
    const g = take('qemu', 'stopped');
    sim.setTaskFaults({ hang: { vmid: g.vmid } });
    const upid = await post(`${base(g)}/status/start`);
    const starttime = Number.parseInt(upid.split(':')[4]!, 16);
    const expected = {
      upid,
      node: g.node,
      type: 'qmstart',
      id: String(g.vmid),
      user: 'root@pam',
      tokenid: 'inventory',
      starttime,
    };
    const running = ((await client.get('/cluster/tasks')) as Entry[]).find((t) => t.upid === upid);
    expect(running).toMatchObject({ ...expected, saved: '0' });
    expect(running?.status).toBeUndefined();
    sim.setTaskFaults({});
    const done = ((await client.get('/cluster/tasks')) as Entry[]).find((t) => t.upid === upid);
    expect(done).toMatchObject({ ...expected, status: 'OK', saved: '1', endtime: expect.any(Number) as number });
  });
});
