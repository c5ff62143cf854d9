/**
 * The sync against the simulator over HTTP with a real SQLite file: API calls per cycle, events
 * for out-of-band changes, and staleness instead of deletion when reads fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type SyncHarness } from './helpers.js';

const STEADY = {
  'GET /cluster/log': 1,
  'GET /cluster/resources': 1,
  'GET /cluster/status': 1,
  'GET /cluster/tasks': 1,
};

describe.each([
  { guests: 10, nodes: 3 },
  { guests: 1_000, nodes: 8 },
  { guests: 10_000, nodes: 16 },
])('API calls with $guests guests on $nodes nodes', ({ guests, nodes }) => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests, nodes, seed: 5 });
  }, 60_000);
  afterAll(() => h.close());

  it('the first sync reads every config once; steady cycles make the same four bulk calls', async () => {
    const first = await h.sync.runCycle();
    expect(first.ok).toBe(true);
    expect(first.guests).toBe(guests);
    expect(first.configsFetched).toBe(guests);
    const counted = h.sim.counters().byEndpoint;
    expect(
      (counted['GET /nodes/{node}/qemu/{vmid}/config'] ?? 0) + (counted['GET /nodes/{node}/lxc/{vmid}/config'] ?? 0),
    ).toBe(guests);
    expect(counted['GET /version']).toBe(1);
    expect(counted['GET /access/permissions']).toBe(1); // is the cluster log signal visible (Sys.Syslog)?
    expect(counted['GET /nodes/{node}/status']).toBe(nodes); // then every 5 minutes, not every cycle

    for (let i = 0; i < 3; i++) {
      h.sim.resetCounters();
      const cycle = await h.sync.runCycle();
      expect(cycle.ok).toBe(true);
      expect(h.sim.counters().byEndpoint).toEqual(STEADY); // counted by the simulator, not by us
      expect(cycle.calls).toEqual(STEADY);
      expect(cycle.changes).toEqual({});
    }
    const runs = h.store.sqlite.prepare('SELECT calls_total AS calls, guests FROM sync_runs ORDER BY id').all();
    expect(runs).toEqual([
      { calls: guests + 6 + nodes, guests },
      { calls: 4, guests },
      { calls: 4, guests },
      { calls: 4, guests },
    ]);
  }, 60_000);
});

describe('out-of-band changes', () => {
  let h: SyncHarness;
  const guest = (vmid: number): Record<string, unknown> =>
    h.store.sqlite.prepare('SELECT * FROM guests WHERE cluster = ? AND vmid = ?').get('lab', vmid) as Record<
      string,
      unknown
    >;
  const pick = (
    pred: (g: {
      vmid: number;
      type: string;
      status: string;
      node: string;
      values: Record<string, string>;
      ha?: unknown;
    }) => boolean,
  ): number =>
    [...h.sim.cluster.guests.values()].find((g) => g.values.template !== '1' && !g.values.lock && !g.ha && pred(g))!
      .vmid;

  beforeAll(async () => {
    h = await startHarness({ guests: 60, nodes: 3, seed: 8 });
    await h.sync.runCycle();
    await h.sync.runCycle();
  });
  afterAll(() => h.close());

  /** Runs one cycle and answers the events it wrote. */
  async function cycle(): Promise<Array<[string, string]>> {
    const before = h.lastSeq();
    const result = await h.sync.runCycle();
    expect(result.ok).toBe(true);
    return h.eventsSince(before).map((e) => [e.type, e.subject]);
  }

  it('a new guest: guest.created with its parsed config', async () => {
    const vmid = h.sim.createGuest({
      type: 'qemu',
      node: 'pve2',
      vmid: 4321,
      name: 'fresh',
      cores: 4,
      memoryMiB: 4096,
      tags: ['new'],
    });
    expect(await cycle()).toEqual([['guest.created', 'lab/4321']]);
    expect(guest(vmid)).toMatchObject({
      name: 'fresh',
      node: 'pve2',
      cores: 4,
      memory_mib: 4096,
      tags: '["new"]',
      stale: 0,
      deleted_at: null,
    });
    expect(JSON.parse(guest(vmid).nics as string)[0]).toMatchObject({
      key: 'net0',
      model: 'virtio',
      bridge: 'vmbr0',
      mac: expect.stringMatching(/^BC:24:11:/),
    });
    expect(await cycle()).toEqual([]);
  });

  const sorted = (list: Array<[string, string]>): Array<[string, string]> =>
    [...list].sort((x, y) => (x.join() < y.join() ? -1 : 1));
  const changedFields = (e: { data: Record<string, unknown> }): string[] =>
    Object.keys(e.data.changes as object).sort();

  it('a rename and a retag: one guest.updated each, naming the fields', async () => {
    const a = pick((g) => g.type === 'qemu');
    const b = pick((g) => g.type === 'lxc');
    h.sim.updateGuest(a, { name: 'renamed-vm' });
    h.sim.updateGuest(b, { tags: ['blue', 'green'] });
    const before = h.lastSeq();
    expect(sorted(await cycle())).toEqual(
      sorted([
        ['guest.updated', `lab/${a}`],
        ['guest.updated', `lab/${b}`],
      ]),
    );
    const events = h.eventsSince(before);
    const rename = events.find((e) => e.subject === `lab/${a}`)!;
    expect(changedFields(rename)).toEqual(['config', 'digest', 'name']);
    expect((rename.data.changes as Record<string, Record<string, unknown>>).config).toEqual({
      name: { from: expect.any(String), to: 'renamed-vm' },
    });
    expect((rename.data.changes as Record<string, unknown>).name).toEqual({
      from: expect.any(String),
      to: 'renamed-vm',
    });
    const retag = events.find((e) => e.subject === `lab/${b}`)!;
    expect(changedFields(retag)).toEqual(['config', 'digest', 'tags']);
    expect((retag.data.changes as Record<string, unknown>).tags).toEqual({
      from: expect.any(Array),
      to: ['blue', 'green'],
    });
    expect(guest(a).name).toBe('renamed-vm');
    expect(guest(b).tags).toBe('["blue","green"]');
    expect(await cycle()).toEqual([]);
  });

  it('a migration: guest.migrated, and the row moves', async () => {
    const vmid = pick((g) => g.type === 'qemu' && g.status === 'stopped' && g.node !== 'pve3');
    const from = guest(vmid).node;
    h.sim.updateGuest(vmid, { node: 'pve3' });
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.migrated', `lab/${vmid}`]]);
    expect(h.eventsSince(before)[0]!.data).toMatchObject({ from, to: 'pve3' });
    expect(guest(vmid).node).toBe('pve3');
  });

  it('a qemu config edit seen only through the cluster log (`update VM`): guest.updated', async () => {
    const vmid = pick((g) => g.type === 'qemu');
    h.sim.updateGuest(vmid, { config: { description: 'edited in the UI' } });
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.updated', `lab/${vmid}`]]);
    expect(changedFields(h.eventsSince(before)[0]!)).toEqual(['config', 'description', 'digest']);
    expect(guest(vmid).description).toBe('edited in the UI');
  });

  it('an lxc memory change (no log line) seen through /cluster/resources: guest.updated with both sizes', async () => {
    const vmid = pick((g) => g.type === 'lxc' && g.values.memory !== '3333');
    h.sim.updateGuest(vmid, { config: { memory: '3333' } });
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.updated', `lab/${vmid}`]]);
    const event = h.eventsSince(before)[0]!;
    expect(changedFields(event)).toEqual(['config', 'digest', 'maxmem', 'memoryMib']);
    expect((event.data.changes as Record<string, unknown>).config).toEqual({
      memory: { from: expect.any(String), to: '3333' },
    });
    expect(guest(vmid)).toMatchObject({ memory_mib: 3333, maxmem: 3333 * 2 ** 20 });
  });

  it('a power change: guest.status_changed only, and no config read', async () => {
    const vmid = pick((g) => g.status === 'running');
    h.sim.updateGuest(vmid, { status: 'stopped' });
    h.sim.resetCounters();
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.status_changed', `lab/${vmid}`]]);
    expect(h.eventsSince(before)[0]!.data).toMatchObject({ from: 'running', to: 'stopped' });
    expect(h.sim.counters().total).toBe(4);
  });

  it('a deletion seen only by absence: nothing after one read, guest.deleted once after the second, then a tombstone', async () => {
    const vmid = pick((g) => g.status === 'stopped');
    await cycle();
    const lastSeen = (
      h.store.sqlite.prepare("SELECT last_success_at AS t FROM clusters WHERE name = 'lab'").get() as { t: number }
    ).t;
    h.sim.deleteGuest(vmid, true); // no destroy task in sight (identity.test.ts: with one, the first read records it)
    expect(await cycle()).toEqual([]);
    expect(guest(vmid)).toMatchObject({ missing_count: 1, deleted_at: null, last_seen_at: lastSeen });
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.deleted', `lab/${vmid}`]]);
    expect(guest(vmid)).toMatchObject({ deleted_at: expect.any(Number), last_seen_at: lastSeen });
    expect(h.eventsSince(before)[0]!.data.lastSeenAt).toBe(new Date(lastSeen).toISOString());
    expect(h.eventsSince(before)[0]!.data.tags).toEqual(JSON.parse(guest(vmid).tags as string));
    expect(await cycle()).toEqual([]);
  });

  it('a new guest on a deleted vmid is a new guest in the same row, not a duplicate and not a revival', async () => {
    const gone = h.store.sqlite
      .prepare('SELECT vmid, type, node FROM guests WHERE deleted_at IS NOT NULL LIMIT 1')
      .get() as { vmid: number; type: 'qemu' | 'lxc'; node: string };
    h.sim.createGuest({ vmid: gone.vmid, type: gone.type, node: gone.node, name: 'back-again' });
    const before = h.lastSeq();
    expect(await cycle()).toEqual([['guest.created', `lab/${gone.vmid}`]]);
    expect(h.eventsSince(before)[0]!.data).toMatchObject({
      incarnation: 2,
      name: 'back-again',
      replaced: 'the vmid was deleted and is in use again',
    });
    expect(h.store.sqlite.prepare('SELECT count(*) AS n FROM guests WHERE vmid = ?').get(gone.vmid)).toEqual({ n: 1 });
    expect(guest(gone.vmid)).toMatchObject({ deleted_at: null, missing_count: 0, name: 'back-again' });
  });
});

describe('staleness, not deletion', () => {
  let h: SyncHarness;
  const count = (sql: string): number => (h.store.sqlite.prepare(sql).get() as { n: number }).n;
  const snapshotRows = (): unknown[] =>
    h.store.sqlite
      .prepare('SELECT vmid, node, name, status, maxmem, digest, deleted_at FROM guests ORDER BY vmid')
      .all();

  beforeAll(async () => {
    h = await startHarness({ guests: 90, nodes: 3, seed: 13, timeoutMs: 300 });
    await h.sync.runCycle();
    await h.sync.runCycle();
  });
  afterAll(() => h.close());

  it('a node going offline: node.status_changed, its guests stale with last-known values, no deletes', async () => {
    const onNode = count("SELECT count(*) AS n FROM guests WHERE node = 'pve2'");
    const before = h.lastSeq();
    const rows = snapshotRows();
    h.sim.setNodeOnline('pve2', false);
    for (let i = 0; i < 3; i++) expect((await h.sync.runCycle()).ok).toBe(true);
    expect(h.eventsSince(before).map((e) => e.type)).toEqual(['node.status_changed']);
    expect(snapshotRows()).toEqual(rows);
    expect(count("SELECT count(*) AS n FROM guests WHERE node = 'pve2' AND stale = 1")).toBe(onNode);
    expect(count("SELECT count(*) AS n FROM guests WHERE node != 'pve2' AND stale = 1")).toBe(0);
    expect(count("SELECT count(*) AS n FROM nodes WHERE node = 'pve2' AND stale = 1 AND online = 0")).toBe(1);
    expect(
      count("SELECT count(*) AS n FROM storage WHERE node = 'pve2' AND stale = 1 AND maxdisk IS NOT NULL"),
    ).toBeGreaterThan(0);
    h.sim.setNodeOnline('pve2', true);
    await h.sync.runCycle();
    expect(h.eventsSince(before).map((e) => e.type)).toEqual(['node.status_changed', 'node.status_changed']);
    expect(count('SELECT count(*) AS n FROM guests WHERE stale = 1')).toBe(0);
  });

  it.each([
    ['the whole cluster timing out', { hang: true }],
    ['a burst of 503s', { errorRate: 1, errorStatus: 503 }],
    ['a burst of 500s on /cluster/status only', { errorRate: 1, errorStatus: 500, endpoint: 'GET /cluster/status' }],
  ])('%s: rows intact and stale, one sync_failed, zero deletes; recovery clears it', async (_name, faults) => {
    const before = h.lastSeq();
    const rows = snapshotRows();
    h.sim.setFaults(faults);
    for (let i = 0; i < 3; i++) {
      const cycle = await h.sync.runCycle();
      expect(cycle.ok).toBe(false);
      expect(cycle.error).toBeTruthy();
    }
    expect(h.eventsSince(before).map((e) => e.type)).toEqual(['cluster.sync_failed']);
    expect(snapshotRows()).toEqual(rows);
    expect(count('SELECT count(*) AS n FROM guests WHERE stale = 0')).toBe(0);
    expect(
      h.store.sqlite.prepare("SELECT stale, consecutive_failures AS failures FROM clusters WHERE name = 'lab'").get(),
    ).toEqual({ stale: 1, failures: 3 });
    h.sim.setFaults({});
    const recovered = await h.sync.runCycle();
    expect(recovered.ok).toBe(true);
    expect(h.eventsSince(before).map((e) => e.type)).toEqual(['cluster.sync_failed', 'cluster.sync_recovered']);
    expect(count('SELECT count(*) AS n FROM guests WHERE stale = 1')).toBe(0);
    expect(count("SELECT count(*) AS n FROM events WHERE type = 'guest.deleted'")).toBe(0);
    expect(snapshotRows()).toEqual(rows);
  });
});
