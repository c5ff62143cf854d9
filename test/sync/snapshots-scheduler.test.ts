/**
 * Inventory snapshots (take, list, read, diff, prune, their event) and the scheduler that runs
 * sync cycles and snapshots, against the simulator with a real SQLite file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentInventory,
  diffSnapshots,
  listSnapshots,
  pruneSnapshots,
  readSnapshot,
  takeSnapshot,
} from '../../src/store/snapshots.js';
import { startScheduler } from '../../src/sync/scheduler.js';
import { startHarness, type SyncHarness } from './helpers.js';

describe('inventory snapshots', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 40, nodes: 3, seed: 17 });
    await h.sync.runCycle();
  });
  afterAll(() => h.close());

  it('a snapshot holds the whole inventory and announces itself with snapshot.created', () => {
    const before = h.lastSeq();
    const info = takeSnapshot(h.store, { label: 'baseline', at: 1_800_000_000_000 });
    expect(info).toMatchObject({ label: 'baseline', guests: 40, nodes: 3 });
    const body = readSnapshot(h.store, info.id)!;
    expect(body.guests.map((g) => g.vmid)).toEqual([...h.sim.cluster.guests.keys()].sort((a, b) => a - b));
    expect(body.guests[0]).toMatchObject({
      cluster: 'lab',
      tags: expect.any(Array),
      digest: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    expect(h.eventsSince(before)).toEqual([
      expect.objectContaining({
        type: 'snapshot.created',
        subject: String(info.id),
        data: expect.objectContaining({ guests: 40, label: 'baseline' }),
      }),
    ]);
    expect(readSnapshot(h.store, 999)).toBeUndefined();
  });

  it('the diff against now names what was added, removed and changed, field by field', async () => {
    const [base] = listSnapshots(h.store);
    const [a, b] = [...h.sim.cluster.guests.keys()];
    h.sim.updateGuest(a!, { name: 'after-snapshot', tags: ['x'] });
    h.sim.deleteGuest(b!);
    h.sim.createGuest({ vmid: 7777, type: 'lxc', node: 'pve1', name: 'brand-new' });
    for (let i = 0; i < 2; i++) await h.sync.runCycle(); // a deletion needs two reads
    const diff = diffSnapshots(readSnapshot(h.store, base!.id)!, currentInventory(h.store));
    expect(diff.added.map((g) => g.vmid)).toEqual([7777]);
    expect(diff.removed.map((g) => g.vmid)).toEqual([b]);
    const changed = diff.changed.find((c) => c.vmid === a)!;
    expect(Object.keys(changed.changes).sort()).toEqual(['digest', 'name', 'tags']);
    expect(changed.changes.name).toEqual({ from: expect.any(String), to: 'after-snapshot' });
    expect(diff.changed).toHaveLength(1);
    expect(diff.nodes).toEqual({ added: [], removed: [], changed: [] });
  });

  it('retention keeps the newest N and drops those older than the age limit', () => {
    for (let i = 0; i < 5; i++) takeSnapshot(h.store, { at: 1_800_000_000_000 + i * 3_600_000 });
    expect(listSnapshots(h.store)).toHaveLength(6);
    expect(pruneSnapshots(h.store, { keep: 4, maxAgeMs: 0 })).toBe(2);
    const kept = listSnapshots(h.store);
    expect(kept.map((s) => s.takenAt)).toEqual([4, 3, 2, 1].map((i) => 1_800_000_000_000 + i * 3_600_000));
    expect(
      pruneSnapshots(h.store, { keep: 0, maxAgeMs: 1.5 * 3_600_000, now: 1_800_000_000_000 + 4 * 3_600_000 }),
    ).toBe(2);
    expect(listSnapshots(h.store).map((s) => s.takenAt)).toEqual([4, 3].map((i) => 1_800_000_000_000 + i * 3_600_000));
  });
});

/** Polls until `done` holds; a generous deadline, since a loaded machine runs the schedule late. */
async function waitFor(what: string, done: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the scheduler', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await startHarness({ guests: 30, nodes: 2, seed: 19 });
  });
  afterAll(() => h.close());

  it('syncs at once and then every interval, takes snapshots on its cron pattern, and stops cleanly', async () => {
    const cycles: Array<{ ok: boolean; aborted?: boolean; error?: string }> = [];
    const scheduler = startScheduler({
      syncs: [h.sync],
      store: h.store,
      intervalSeconds: 1,
      snapshots: { schedule: '* * * * * *', keep: 2, maxAgeDays: 0 },
      log: h.log,
      onCycle: (s) => cycles.push(s),
    });
    const started = Date.now();
    const snapshotsTaken = (): number =>
      (
        h.store.sqlite.prepare("SELECT count(*) AS n FROM events WHERE type = 'snapshot.created'").get() as {
          n: number;
        }
      ).n;
    await waitFor(
      'three cycles and three snapshots',
      () => cycles.filter((c) => !c.aborted).length >= 3 && snapshotsTaken() >= 3,
    );
    await scheduler.stop();
    const elapsedMs = Date.now() - started;
    const runs = (h.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get() as { n: number }).n;
    // On a loaded machine stop() can land inside a cycle: that one is abandoned and writes nothing.
    const finished = cycles.filter((c) => !c.aborted);
    expect(cycles.length - finished.length).toBeLessThanOrEqual(1);
    expect(finished.length).toBeGreaterThanOrEqual(3);
    // One at once, then one a second at most (a slow machine runs fewer, never more).
    expect(cycles.length).toBeLessThanOrEqual(2 + Math.ceil(elapsedMs / 1000));
    expect(finished.filter((c) => !c.ok)).toEqual([]);
    expect(runs).toBe(finished.length);
    expect(listSnapshots(h.store).length).toBe(2); // several taken, retention kept 2
    // Nothing runs after stop(): watched for longer than the interval.
    await new Promise((r) => setTimeout(r, 1_200));
    expect((h.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get() as { n: number }).n).toBe(runs);
  }, 30_000);

  it('a cycle aborted by stop() before its write leaves the store as it was', async () => {
    h.sim.setFaults({ latencyMs: 400 });
    h.sim.createGuest({ vmid: 8888, type: 'qemu', node: 'pve1' });
    const runsBefore = (h.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get() as { n: number }).n;
    h.sim.resetCounters();
    const scheduler = startScheduler({
      syncs: [h.sync],
      store: h.store,
      intervalSeconds: 60,
      snapshots: { schedule: 'off', keep: 0, maxAgeDays: 0 },
      log: h.log,
    });
    await waitFor('the first cycle waiting on the slow API', () => h.sim.counters().total > 0);
    await scheduler.stop();
    h.sim.setFaults({});
    expect((h.store.sqlite.prepare('SELECT count(*) AS n FROM sync_runs').get() as { n: number }).n).toBe(runsBefore);
    expect(h.store.sqlite.prepare('SELECT count(*) AS n FROM guests WHERE vmid = 8888').get()).toEqual({ n: 0 });
  });
});
