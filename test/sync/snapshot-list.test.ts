/**
 * The sync learns each guest's snapshot list without a call per guest per cycle: a snapshot taken,
 * rolled back or deleted by someone else (a task, a changed `parent`) makes that guest's next
 * config read take its list too; a cycle with no such change reads none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type SyncHarness } from './helpers.js';

let h: SyncHarness;
const names = (vmid: number): string[] =>
  (
    h.store.sqlite
      .prepare('SELECT name FROM guest_snapshots WHERE cluster = ? AND vmid = ? ORDER BY name')
      .all('lab', vmid) as Array<{ name: string }>
  ).map((r) => r.name);
const snapshotCalls = (): number =>
  Object.entries(h.sim.counters().byEndpoint)
    .filter(([k]) => /snapshot$/.test(k) && k.startsWith('GET'))
    .reduce((n, [, v]) => n + v, 0);

async function task(upid: unknown): Promise<void> {
  await h.client.waitForTask(String(upid), { intervalMs: 10 });
}

beforeAll(async () => {
  h = await startHarness({ guests: 30, nodes: 2, seed: 7 });
  expect((await h.sync.runCycle()).ok).toBe(true);
}, 60_000);
afterAll(async () => h?.close());

describe('guest snapshot lists', () => {
  const target = (): { node: string; vmid: number } => {
    const g = [...h.sim.cluster.guests.values()].find((x) => x.type === 'qemu' && !x.values.template)!;
    return { node: g.node, vmid: g.vmid };
  };

  it('a snapshot taken out of band is read with the guest config the task signals', async () => {
    const { node, vmid } = target();
    await task(await h.client.post(`/nodes/${node}/qemu/${vmid}/snapshot`, { snapname: 'before-upgrade' }));
    h.sim.resetCounters();
    expect((await h.sync.runCycle()).ok).toBe(true);
    expect(names(vmid)).toEqual(['before-upgrade']);
    expect(snapshotCalls()).toBe(1);
  });

  it('a cycle without such a change reads no snapshot list', async () => {
    h.sim.resetCounters();
    expect((await h.sync.runCycle()).ok).toBe(true);
    expect(snapshotCalls()).toBe(0);
  });

  it('a second snapshot, then both deleted: the list follows, and is empty once parent is gone', async () => {
    const { node, vmid } = target();
    await task(await h.client.post(`/nodes/${node}/qemu/${vmid}/snapshot`, { snapname: 'second' }));
    expect((await h.sync.runCycle()).ok).toBe(true);
    expect(names(vmid)).toEqual(['before-upgrade', 'second']);
    await task(await h.client.delete(`/nodes/${node}/qemu/${vmid}/snapshot/second`));
    await task(await h.client.delete(`/nodes/${node}/qemu/${vmid}/snapshot/before-upgrade`));
    h.sim.resetCounters();
    expect((await h.sync.runCycle()).ok).toBe(true);
    expect(names(vmid)).toEqual([]);
    expect(snapshotCalls()).toBe(0); // no parent in the config: none, without asking
  });
});
