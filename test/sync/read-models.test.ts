/**
 * The read models the sync writes beside the guest rows (guest_stats, guest_tags) match those
 * rows after every cycle, through churn: creates, deletes, migrations, power changes, retags
 * (with case variants and duplicates), template conversion, an offline node, a failed read, a
 * deleted vmid created again, and a restart that reloads the state from the store. The expected
 * values are computed here with SQL of the test's own, not with the code under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregate, listGuests } from '../../src/store/queries.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from './helpers.js';

type StatsRow = Record<string, number | string>;

/**
 * Stale guests (an offline node's) are counted apart, under `stale:<last known status>`. A failed
 * read marks every guest stale and leaves guest_stats as the last cycle wrote it; the cluster's
 * own staleness says that all of them are.
 */
function expectedStats(h: SyncHarness): StatsRow[] {
  return h.store.sqlite
    .prepare(
      `SELECT g.cluster, g.node, g.type, CASE WHEN g.stale = 1 AND c.stale = 0 THEN 'stale:' || g.status ELSE g.status END AS status,
      count(*) AS guests, sum(g.template) AS templates,
      total(CASE WHEN g.template = 0 THEN g.maxcpu END) AS allocatedVcpus, total(CASE WHEN g.template = 0 THEN g.maxmem END) AS allocatedMemoryBytes,
      total(m.mem) AS usedMemoryBytes
    FROM guests g JOIN clusters c ON c.name = g.cluster LEFT JOIN guest_metrics m ON m.cluster = g.cluster AND m.vmid = g.vmid
    WHERE g.deleted_at IS NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    )
    .all() as StatsRow[];
}

function storedStats(h: SyncHarness): StatsRow[] {
  return h.store.sqlite
    .prepare(
      `SELECT cluster, node, type, status, guests, templates, allocated_vcpus AS allocatedVcpus,
      allocated_memory_bytes AS allocatedMemoryBytes, used_memory_bytes AS usedMemoryBytes
    FROM guest_stats ORDER BY 1, 2, 3, 4`,
    )
    .all() as StatsRow[];
}

const expectedTags = (h: SyncHarness): unknown[] =>
  h.store.sqlite
    .prepare(
      `SELECT DISTINCT lower(j.value) AS tagKey, g.cluster, g.vmid
  FROM guests g, json_each(g.tags) j ORDER BY 1, 2, 3`,
    )
    .all();
const storedTags = (h: SyncHarness): unknown[] =>
  h.store.sqlite.prepare('SELECT tag_key AS tagKey, cluster, vmid FROM guest_tags ORDER BY 1, 2, 3').all();

describe('read models written by the sync', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 300, nodes: 4, seed: 41 });
    expect((await h.sync.runCycle()).ok).toBe(true);
  });
  afterAll(() => h.close());

  it('match the guest rows after every cycle of churn', async () => {
    let rng = 7;
    const next = (n: number): number => (rng = (rng * 1103515245 + 12345) % 2 ** 31) % n;
    const ids = (): number[] => [...h.sim.cluster.guests.keys()];
    let sync: ClusterSync = h.sync;
    let gone: number[] = [];
    const checks: Array<() => void> = [
      () => {
        for (let i = 0; i < 10; i++)
          h.sim.createGuest({
            type: i % 2 ? 'qemu' : 'lxc',
            node: `pve${(i % 4) + 1}`,
            tags: ['Prod', 'prod', `t${i}`],
            status: i % 3 ? 'running' : 'stopped',
          });
      },
      () => {
        for (let i = 0; i < 8; i++) h.sim.deleteGuest(ids()[next(ids().length)]!);
      },
      () => {
        for (let i = 0; i < 8; i++) h.sim.updateGuest(ids()[next(ids().length)]!, { node: `pve${next(4) + 1}` });
      },
      () => {
        for (let i = 0; i < 12; i++)
          h.sim.updateGuest(ids()[next(ids().length)]!, { status: next(2) ? 'running' : 'stopped' });
      },
      () => {
        for (let i = 0; i < 12; i++)
          h.sim.updateGuest(ids()[next(ids().length)]!, { tags: next(2) ? ['Blue', 'blue', 'green'] : [] });
      },
      () => {
        for (let i = 0; i < 4; i++)
          h.sim.updateGuest(ids()[next(ids().length)]!, { status: 'stopped', config: { template: '1' } });
      },
      () => h.sim.setNodeOnline('pve2', false),
      () => h.sim.setNodeOnline('pve2', true),
      () => {
        gone = ids().slice(0, 3);
        for (const vmid of gone) h.sim.deleteGuest(vmid);
      },
      () => undefined, // the second complete read without them tombstones them
      () => {
        for (const vmid of gone) h.sim.createGuest({ vmid, tags: ['back'], status: 'running' });
      },
      () => {
        sync = createClusterSync({
          store: h.store,
          client: h.client,
          cluster: 'lab',
          settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
          log: h.log,
        });
      },
    ];
    const templatesBefore = Number(
      h.store.sqlite.prepare('SELECT total(templates) AS n FROM guest_stats').pluck().get(),
    );
    for (const change of [...checks, ...checks]) {
      change();
      expect((await sync.runCycle()).ok).toBe(true);
      expect(storedStats(h)).toEqual(expectedStats(h));
      expect(storedTags(h)).toEqual(expectedTags(h));
    }
    // A failed read changes no row, and no read model.
    const before = [storedStats(h), storedTags(h)];
    h.sim.setFaults({ errorRate: 1, errorStatus: 503 });
    expect((await sync.runCycle()).ok).toBe(false);
    h.sim.setFaults({});
    expect([storedStats(h), storedTags(h)]).toEqual(before);
    expect(storedStats(h)).toEqual(expectedStats(h));
    expect(
      Number(h.store.sqlite.prepare('SELECT total(templates) AS n FROM guest_stats').pluck().get()),
    ).toBeGreaterThan(templatesBefore);
    // The churn did what it says: the last deleted vmids were tombstoned, then came back live.
    for (const vmid of gone) {
      expect(
        h.store.sqlite
          .prepare("SELECT count(*) FROM events WHERE type = 'guest.deleted' AND subject_id = ?")
          .pluck()
          .get(`lab/${vmid}`),
      ).toBeGreaterThan(0);
      expect(
        h.store.sqlite.prepare('SELECT deleted_at FROM guests WHERE cluster = ? AND vmid = ?').pluck().get('lab', vmid),
      ).toBeNull();
    }
    expect(storedTags(h).length).toBeGreaterThan(0);
  }, 30_000);

  it('answer counts and aggregates as a scan of the rows would', () => {
    // A template filter is not in guest_stats, so these go through the rows; the rest through the summary.
    const byStatus = aggregate(h.store, 'status', { cluster: 'lab' });
    for (const group of byStatus.groups) {
      const viaRows = aggregate(h.store, 'cluster', { status: group.key!, template: false }).totals;
      const templates = aggregate(h.store, 'cluster', { status: group.key!, template: true }).totals;
      expect(group.guests).toBe(viaRows.guests + templates.guests);
      expect(group.allocatedMemoryBytes).toBe(viaRows.allocatedMemoryBytes);
      expect(group.usedMemoryBytes).toBe(viaRows.usedMemoryBytes + templates.usedMemoryBytes);
      // A stale guest's status now is unknown.
      expect(listGuests(h.store, { status: group.key! }, { limit: 1 }).total).toBe(
        h.store.sqlite
          .prepare(
            "SELECT count(*) FROM guests WHERE deleted_at IS NULL AND CASE WHEN stale = 1 THEN 'unknown' ELSE status END = ?",
          )
          .pluck()
          .get(group.key),
      );
    }
    const prod = listGuests(h.store, { tag: 'PROD' }, { limit: 500 });
    expect(prod.total).toBe(prod.items.length);
    expect(prod.items.every((g) => g.tags.some((t) => t.toLowerCase() === 'prod'))).toBe(true);
    expect(prod.total).toBe(
      (
        h.store.sqlite
          .prepare(
            `SELECT count(*) AS n FROM guests WHERE deleted_at IS NULL AND EXISTS (SELECT 1 FROM json_each(tags) WHERE lower(value) = 'prod')`,
          )
          .get() as { n: number }
      ).n,
    );
  });
});
