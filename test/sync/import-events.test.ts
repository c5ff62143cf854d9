/**
 * The first sync of a cluster is an import: one `cluster.imported` summary first, then its guest
 * and node events marked `data.initial: true`, so readers (changes_since, webhook subscribers) can
 * fold them. Later cycles' events are news and carry no mark; a reset cluster's next sync is an
 * import again. Real cycles against the simulator; counts from the simulator's own state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetCluster } from '../../src/store/sync-state.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from './helpers.js';

describe('the first sync as an import', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 120, nodes: 3, seed: 17 });
  });
  afterAll(() => h.close());

  it('writes one cluster.imported summary first, and marks every guest event of the import', async () => {
    h.sim.setNodeOnline('pve3', false); // an offline node's guests are imported too, stale
    const first = await h.sync.runCycle();
    expect(first.ok).toBe(true);
    const events = h.eventsSince(0);
    const guests = [...h.sim.cluster.guests.values()];
    // A template on the offline node is not known as one yet: /cluster/resources gives no values for its guests.
    const templates = guests.filter((g) => g.values.template === '1' && g.node !== 'pve3').length;
    expect(templates).toBeGreaterThan(0);
    expect(events[0]).toMatchObject({
      type: 'cluster.imported',
      subject: 'lab',
      data: {
        guests: guests.length,
        templates,
        nodes: 3,
        storage: new Set(h.sim.cluster.storages.map((s) => s.storage)).size,
        pools: h.sim.cluster.pools.size,
        initialEvents: guests.length,
      },
    });
    const rest = events.slice(1);
    expect(rest.map((e) => e.type)).toEqual(Array(guests.length).fill('guest.created'));
    expect(rest.every((e) => e.data.initial === true)).toBe(true);
    expect(first.changes).toEqual({ 'cluster.imported': 1, 'guest.created': guests.length });
  });

  it('later events are news: no mark, no summary', async () => {
    const seq = h.lastSeq();
    const vmid = [...h.sim.cluster.guests.values()].find((g) => g.node === 'pve1' && g.status === 'running')!.vmid;
    h.sim.updateGuest(vmid, { status: 'stopped' });
    h.sim.createGuest({ name: 'fresh' });
    expect((await h.sync.runCycle()).ok).toBe(true);
    const news = h.eventsSince(seq);
    expect(news.map((e) => e.type).sort()).toEqual(['guest.created', 'guest.status_changed']);
    expect(news.every((e) => !('initial' in e.data))).toBe(true);
  });

  it('a failed first read leaves no summary; the first read that succeeds is the import', async () => {
    const other = await startHarness({ guests: 20, nodes: 2, seed: 4 });
    try {
      other.sim.setFaults({ errorRate: 1, errorStatus: 503 });
      expect((await other.sync.runCycle()).ok).toBe(false);
      other.sim.setFaults({});
      expect((await other.sync.runCycle()).ok).toBe(true);
      const types = other.eventsSince(0).map((e) => e.type);
      expect(types.filter((t) => t === 'cluster.imported')).toHaveLength(1);
      expect(types.indexOf('cluster.imported')).toBeLessThan(types.indexOf('guest.created'));
      expect(
        other
          .eventsSince(0)
          .filter((e) => e.type === 'guest.created')
          .every((e) => e.data.initial === true),
      ).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('after a reset, the next sync is an import again', async () => {
    h.sim.setNodeOnline('pve3', true);
    expect((await h.sync.runCycle()).ok).toBe(true);
    const seq = h.lastSeq();
    resetCluster(h.store, 'lab', Date.now());
    const sync = createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
    });
    expect((await sync.runCycle()).ok).toBe(true);
    const after = h.eventsSince(seq);
    expect(after.map((e) => e.type).slice(0, 2)).toEqual(['cluster.reset', 'cluster.imported']);
    const guestEvents = after.filter((e) => e.type.startsWith('guest.'));
    expect(guestEvents.length).toBe(h.sim.cluster.guests.size);
    expect(guestEvents.every((e) => e.data.initial === true)).toBe(true);
  });
});
