/**
 * The generated cluster over HTTP: deterministic per seed, sane at 1 guest and at 10,000 guests
 * on 16 nodes, with the mix a real cluster has (qemu and lxc, templates, tags, pools, locks,
 * HA states, shared and local storage).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.js';
import { checkClusterResources, checkClusterStatus, checkGuestConfig } from '../contract/pve-shapes.js';
import { checkAgainstSchema, loadEndpointSchema } from '../contract/schema-check.js';

type Entry = Record<string, unknown>;

/** Fields that drift with time (pvestatd metrics); everything else must be byte-identical per seed. */
const METRICS = ['cpu', 'mem', 'memhost', 'uptime', 'netin', 'netout', 'diskread', 'diskwrite', 'disk'];

const sims: Simulator[] = [];

async function start(options: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator({ tls: false, taskDelayMs: 30, ...options });
  sims.push(sim);
  return sim;
}

async function get<T = Entry[]>(sim: Simulator, path: string): Promise<T> {
  const res = await fetch(`${sim.url}/api2/json${path}`, {
    headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` },
  });
  expect(res.status, path).toBe(200);
  return ((await res.json()) as { data: T }).data;
}

function withoutMetrics(list: Entry[]): string {
  return JSON.stringify(list.map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !METRICS.includes(k)))));
}

async function digests(sim: Simulator): Promise<Record<string, string>> {
  const guests = (await get(sim, '/cluster/resources?type=vm')).map(
    (g) => `/nodes/${g.node}/${g.type}/${g.vmid}/config`,
  );
  const configs = await Promise.all(guests.map((path) => get<Entry>(sim, path)));
  return Object.fromEntries(guests.map((path, i) => [path, configs[i]!.digest as string]));
}

afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
});

describe('determinism', () => {
  const options = { seed: 42, nodes: 3, guests: 150, lxcRatio: 0.3 };
  let a: Simulator;
  let b: Simulator;
  let c: Simulator;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([start(options), start(options), start({ ...options, seed: 43 })]);
  });

  it('the same seed gives byte-identical /cluster/resources apart from the metric fields', async () => {
    const [ra, rb] = await Promise.all([get(a, '/cluster/resources'), get(b, '/cluster/resources')]);
    expect(ra.length).toBe(4 + 150 + 3 + 12 + 3);
    expect(withoutMetrics(ra)).toBe(withoutMetrics(rb));
    // The stripped form still carries the identity of every guest.
    expect(withoutMetrics(ra)).toContain('"name":');
  });

  it('the same seed gives identical config digests for every guest, a different seed different ones', async () => {
    const [da, db, dc] = await Promise.all([digests(a), digests(b), digests(c)]);
    expect(Object.keys(da)).toHaveLength(150);
    expect(da).toEqual(db);
    const shared = Object.keys(da).filter((k) => dc[k] !== undefined);
    expect(shared.filter((k) => da[k] === dc[k])).toEqual([]);
  });

  it('a different seed gives a different cluster', async () => {
    const [ra, rc] = await Promise.all([get(a, '/cluster/resources?type=vm'), get(c, '/cluster/resources?type=vm')]);
    expect(rc).toHaveLength(150);
    expect(withoutMetrics(ra)).not.toBe(withoutMetrics(rc));
    const names = (list: Entry[]): string => list.map((g) => `${g.vmid}:${g.type}:${g.node}:${g.name}`).join(',');
    expect(names(ra)).not.toBe(names(rc));
  });

  it('other read endpoints are deterministic too (nodes, storage, pools, HA)', async () => {
    for (const path of ['/cluster/ha/resources', '/pools?poolid=prod', '/nodes/pve1/storage']) {
      const [x, y] = await Promise.all([get(a, path), get(b, path)]);
      expect(withoutMetrics(x), path).toBe(withoutMetrics(y));
    }
  });
});

describe('one guest on one node', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await start({ seed: 9, nodes: 1, guests: 1 });
  });

  it('lists exactly guest 100 and a standalone /cluster/status', async () => {
    const all = await get(sim, '/cluster/resources');
    expect(checkClusterResources(all)).toEqual([]);
    const guests = all.filter((e) => e.type === 'qemu' || e.type === 'lxc');
    expect(guests.map((g) => [g.vmid, g.node])).toEqual([[100, 'pve1']]);
    expect(all.filter((e) => e.type === 'node')).toHaveLength(1);
    const status = await get(sim, '/cluster/status');
    expect(checkClusterStatus(status)).toEqual([]);
    // Standalone: no cluster entry, the node has nodeid 0 and local 1.
    expect(status).toEqual([
      { type: 'node', id: 'node/pve1', name: 'pve1', nodeid: 0, local: 1, online: 1, ip: '192.0.2.11', level: '' },
    ]);
    expect(await get<string>(sim, '/cluster/nextid')).toBe('101');
  });

  it('its config is schema-clean', async () => {
    const [g] = (await get(sim, '/cluster/resources?type=vm')) as [Entry];
    const type = g.type as 'qemu' | 'lxc';
    const config = await get<Entry>(sim, `/nodes/pve1/${type}/100/config`);
    expect(checkGuestConfig(config, type)).toEqual([]);
    expect(
      checkAgainstSchema(config, loadEndpointSchema(`GET /nodes/{node}/${type}/{vmid}/config`).returns).problems,
    ).toEqual([]);
  });
});

describe('10,000 guests on 16 nodes', () => {
  let sim: Simulator;
  let all: Entry[];
  let guests: Entry[];
  let elapsedMs: number;

  beforeAll(async () => {
    sim = await start({ seed: 2024, nodes: 16, guests: 10_000, lxcRatio: 0.3 });
    const started = Date.now();
    all = await get(sim, '/cluster/resources');
    elapsedMs = Date.now() - started;
    guests = all.filter((e) => e.type === 'qemu' || e.type === 'lxc');
  });

  it('/cluster/resources answers within a few seconds with 10,000 guests and 16 nodes', () => {
    expect(elapsedMs).toBeLessThan(5_000);
    expect(guests).toHaveLength(10_000);
    expect(all.filter((e) => e.type === 'node').map((n) => n.node)).toEqual(
      Array.from({ length: 16 }, (_, i) => `pve${i + 1}`),
    );
    expect(new Set(guests.map((g) => g.node)).size).toBe(16);
  });

  it('guests come in string-sorted vmid order (10000 before 1001) and the whole list passes the shape and schema checks', () => {
    const vmids = guests.map((g) => String(g.vmid));
    expect(vmids).toEqual([...vmids].sort());
    expect(vmids.indexOf('10000')).toBe(vmids.indexOf('1000') + 1);
    expect(vmids.indexOf('10000')).toBeLessThan(vmids.indexOf('1001'));
    expect(checkClusterResources(all)).toEqual([]);
    const result = checkAgainstSchema(all, loadEndpointSchema('GET /cluster/resources').returns);
    expect(result).toEqual({ problems: [], undeclared: [] });
  });

  it('?type=vm answers the same 10,000 guests', async () => {
    const vms = await get(sim, '/cluster/resources?type=vm');
    expect(vms.map((g) => g.id)).toEqual(guests.map((g) => g.id));
  });

  it('the guest mix has qemu and lxc, templates, tags, every pool, locks and HA states', () => {
    const count = (pred: (g: Entry) => boolean): number => guests.filter(pred).length;
    const lxc = count((g) => g.type === 'lxc');
    expect(lxc).toBeGreaterThan(2_500);
    expect(lxc).toBeLessThan(3_500);
    expect(count((g) => g.template === 1)).toBeGreaterThan(100);
    expect(count((g) => typeof g.tags === 'string' && g.tags.includes(';'))).toBeGreaterThan(1_000);
    expect(new Set(guests.map((g) => g.pool).filter(Boolean))).toEqual(new Set(['prod', 'staging', 'dev', 'infra']));
    expect(count((g) => g.pool === undefined)).toBeGreaterThan(2_000);
    expect(new Set(guests.map((g) => g.lock).filter(Boolean))).toEqual(new Set(['backup', 'snapshot', 'suspended']));
    expect(new Set(guests.map((g) => g.hastate).filter(Boolean))).toEqual(new Set(['started', 'stopped']));
    expect(new Set(guests.map((g) => g.status))).toEqual(new Set(['running', 'stopped']));
    // Templates never run.
    expect(count((g) => g.template === 1 && g.status !== 'stopped')).toBe(0);
  });

  it('guest storage is sized to its guests: local-lvm at most 70 % full, the shared Ceph pool at 88 %', () => {
    const storage = all.filter((e) => e.type === 'storage');
    const fill = (s: Entry): number => (s.disk as number) / (s.maxdisk as number);
    const lvm = storage.filter((s) => s.storage === 'local-lvm');
    expect(Math.max(...lvm.map(fill))).toBeLessThanOrEqual(0.7);
    expect(Math.min(...lvm.map(fill))).toBeGreaterThan(0.2);
    for (const ceph of storage.filter((s) => s.storage === 'ceph-vm')) expect(fill(ceph)).toBeCloseTo(0.88, 2);
  });

  it('storage has shared entries (one per node) and local ones', () => {
    const storage = all.filter((e) => e.type === 'storage');
    expect(storage).toHaveLength(4 * 16);
    const shared = storage.filter((s) => s.shared === 1);
    const local = storage.filter((s) => s.shared === 0);
    expect(new Set(shared.map((s) => s.storage))).toEqual(new Set(['ceph-vm', 'nfs-backup']));
    expect(new Set(local.map((s) => s.storage))).toEqual(new Set(['local', 'local-lvm']));
    // A shared storage is one pool: every node reports the same usage and size for it.
    for (const id of ['ceph-vm', 'nfs-backup']) {
      expect(new Set(shared.filter((s) => s.storage === id).map((s) => `${s.disk}/${s.maxdisk}`)).size, id).toBe(1);
    }
    for (const s of storage) {
      expect(s.status).toBe('available');
      expect(s.disk as number).toBeLessThanOrEqual(s.maxdisk as number);
    }
  });
});
