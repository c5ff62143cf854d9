/**
 * When an absent guest counts as deleted: the rule between "the read was partial" (quorum lost,
 * an unreadable entry, nodes offline) and "the guest really is gone" (a whole, quorate cluster,
 * read after read). Each case against a hand-made peer, so the answers are exactly the case.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clusterEntry, guest, memberEntry, node, startHandmade, type Handmade } from './handmade.js';

let h: Handmade;
afterEach(async () => {
  await h?.close();
});

const twoNodes = (): unknown[] => [clusterEntry(1), memberEntry('pve1', 1), memberEntry('pve2', 2)];
const liveGuests = (): unknown => h.count('SELECT count(*) AS n FROM guests WHERE deleted_at IS NULL');
const stats = (): unknown => h.count('SELECT coalesce(sum(guests), 0) AS n FROM guest_stats');

describe('quorum', () => {
  it('a cluster without quorum deletes nobody, however many reads miss a guest; its absent guests go stale', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), guest(101), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    h.status = [clusterEntry(0), memberEntry('pve1', 1), memberEntry('pve2', 2)];
    h.resources = [guest(100), node('pve1'), node('pve2')];
    for (let i = 0; i < 4; i++) expect((await h.sync.runCycle()).ok).toBe(true);
    expect(h.events('guest.deleted')).toEqual([]);
    expect(h.count('SELECT missing_count, stale, deleted_at FROM guests WHERE vmid = 101')).toEqual({
      missing_count: 0,
      stale: 1,
      deleted_at: null,
    });
    expect(h.events('cluster.quorum_changed').map((e) => e.data)).toEqual([{ from: true, to: false }]);
    // Quorum back: now the absence counts, and two reads later the guest is gone.
    h.status = twoNodes();
    await h.sync.runCycle();
    await h.sync.runCycle();
    expect(h.events('guest.deleted').map((e) => e.subject)).toEqual(['hand/101']);
  });

  it('a standalone node (no cluster entry) is quorate by itself: a deleted guest is tombstoned after two reads', async () => {
    h = await startHandmade();
    h.status = [{ type: 'node', id: 'node/solo', name: 'solo', nodeid: 0, online: 1, local: 1, ip: '192.0.2.9' }];
    h.resources = [guest(100, { node: 'solo' }), guest(101, { node: 'solo' }), node('solo')];
    await h.sync.runCycle();
    expect(h.count("SELECT quorate FROM clusters WHERE name = 'hand'")).toEqual({ quorate: 1 });
    h.resources = [guest(100, { node: 'solo' }), node('solo')];
    await h.sync.runCycle();
    expect(h.events('guest.deleted')).toEqual([]);
    await h.sync.runCycle();
    expect(h.events('guest.deleted').map((e) => e.subject)).toEqual(['hand/101']);
  });

  it('an unreadable cluster entry is unknown quorum, not lost quorum: no event, and deletions still count', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), guest(101), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    h.status = [
      { type: 'cluster', id: 'cluster', name: ['not', 'a', 'name'], quorate: 1 },
      memberEntry('pve1', 1),
      memberEntry('pve2', 2),
    ];
    h.resources = [guest(100), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    await h.sync.runCycle();
    expect(h.events('cluster.quorum_changed')).toEqual([]);
    expect(h.events('guest.deleted').map((e) => e.subject)).toEqual(['hand/101']);
    expect(h.count("SELECT quorate, cluster_name FROM clusters WHERE name = 'hand'")).toEqual({
      quorate: 1,
      cluster_name: 'hand',
    });
  });

  it('a cluster entry without its quorate flag is unknown too', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    h.status = [clusterEntry(undefined), memberEntry('pve1', 1), memberEntry('pve2', 2)];
    await h.sync.runCycle();
    h.status = twoNodes();
    await h.sync.runCycle();
    expect(h.events('cluster.quorum_changed')).toEqual([]);
  });
});

describe('a node that disappears from /cluster/resources', () => {
  it('is marked missing once, and its guests, no longer listed, go stale and are tombstoned after two reads', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), guest(200, { node: 'pve2' }), guest(201, { node: 'pve2' }), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    expect(stats()).toEqual({ n: 3 });
    // pve2 removed from the cluster (pvecm delnode) with its guests' configs.
    h.status = [clusterEntry(1, 1), memberEntry('pve1', 1)];
    h.resources = [guest(100), node('pve1')];
    await h.sync.runCycle();
    expect(
      h.count('SELECT count(*) AS n FROM guests WHERE node = ? AND stale = 1 AND missing_count = 1', 'pve2'),
    ).toEqual({ n: 2 });
    await h.sync.runCycle();
    await h.sync.runCycle();
    expect(h.count("SELECT status, stale FROM nodes WHERE node = 'pve2'")).toEqual({ status: 'missing', stale: 1 });
    expect(h.events('node.status_changed').map((e) => e.data)).toEqual([
      { node: 'pve2', from: 'online', to: 'missing' },
    ]);
    expect(h.events('guest.deleted').map((e) => e.subject)).toEqual(['hand/200', 'hand/201']);
    expect(liveGuests()).toEqual({ n: 1 });
    expect(stats()).toEqual({ n: 1 });
  });
});

describe('the last guests of a cluster', () => {
  it('deleted from a whole, quorate cluster: an empty list is believed after two reads', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), guest(101, { node: 'pve2' }), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    h.resources = [node('pve1'), node('pve2')];
    await h.sync.runCycle();
    expect(h.events('guest.deleted')).toEqual([]); // one empty read could be a hiccup
    expect(h.count('SELECT count(*) AS n FROM guests WHERE stale = 1')).toEqual({ n: 2 });
    await h.sync.runCycle();
    expect(h.events('guest.deleted').map((e) => e.subject)).toEqual(['hand/100', 'hand/101']);
    expect(liveGuests()).toEqual({ n: 0 });
    expect(stats()).toEqual({ n: 0 });
  });

  it('an empty list while a node is offline or unlisted nodes deletes nothing', async () => {
    h = await startHandmade();
    h.status = twoNodes();
    h.resources = [guest(100), node('pve1'), node('pve2')];
    await h.sync.runCycle();
    h.resources = [node('pve1'), node('pve2', 'offline')];
    for (let i = 0; i < 3; i++) await h.sync.runCycle();
    h.resources = [];
    for (let i = 0; i < 3; i++) await h.sync.runCycle();
    expect(h.events('guest.deleted')).toEqual([]);
    expect(liveGuests()).toEqual({ n: 1 });
  });
});
