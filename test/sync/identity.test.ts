/**
 * A vmid is not a guest: Proxmox hands a freed vmid to the next new guest. A guest destroyed and
 * another created on its vmid is recorded as one deleted and one created, with its own first-seen
 * time and history, never as one guest that migrated or was renamed. A guest that only moved,
 * was renamed, or came back with the same config is still one guest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { getGuest, type GuestDetail } from '../../src/store/queries.js';
import { diffSnapshots, readSnapshot, takeSnapshot } from '../../src/store/snapshots.js';
import { startHarness, type SyncHarness } from './helpers.js';

let h: SyncHarness;
afterEach(async () => {
  await h?.close();
});

const detail = (vmid: number): GuestDetail => {
  const found = getGuest(h.store, { cluster: 'lab', vmid });
  if (found.kind !== 'found') throw new Error(`guest ${vmid}: ${found.kind}`);
  return found.guest;
};
const kinds = (seq: number, vmid: number): string[] =>
  h
    .eventsSince(seq)
    .filter((e) => e.subject === `lab/${vmid}`)
    .map((e) => e.type);

async function setUp(): Promise<{ vmid: number; node: string; seq: number; firstSeen: string }> {
  h = await startHarness({ guests: 20, nodes: 3, seed: 91 });
  await h.sync.runCycle();
  await h.sync.runCycle();
  const g = [...h.sim.cluster.guests.values()].find(
    (x) => x.type === 'qemu' && !x.values.lock && x.values.template !== '1',
  )!;
  return { vmid: g.vmid, node: g.node, seq: h.lastSeq(), firstSeen: detail(g.vmid).firstSeenAt };
}

describe('a vmid deleted and created again', () => {
  for (const silent of [false, true]) {
    it(`within one cycle, ${silent ? 'without' : 'with'} the destroy task visible: deleted + created, a new first-seen time, separate history`, async () => {
      const { vmid, node, seq, firstSeen } = await setUp();
      const other = h.sim.cluster.nodes.map((n) => n.name).find((n) => n !== node)!;
      h.sim.deleteGuest(vmid, silent);
      h.sim.createGuest({ vmid, type: 'qemu', node: other, name: 'pg-01', silent });
      await h.sync.runCycle();
      await h.sync.runCycle(); // a config read the first cycle deferred would land here
      expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
      const created = h.eventsSince(seq).find((e) => e.type === 'guest.created')!;
      expect(created.data).toMatchObject({ vmid, name: 'pg-01', node: other, incarnation: 2 });
      const g = detail(vmid);
      expect(g).toMatchObject({ name: 'pg-01', node: other, incarnation: 2 });
      expect(g.firstSeenAt > firstSeen).toBe(true);
      expect(g.recentEvents.map((e) => e.type)).toEqual(['guest.created']);
      expect(g.recentTasks.filter((t) => t.type === 'qmdestroy')).toEqual([]); // the old guest's end is not this one's history
    });
  }

  it('within two cycles (missed once, then a new guest on the vmid): deleted + created', async () => {
    const { vmid, seq, firstSeen } = await setUp();
    h.sim.deleteGuest(vmid, true);
    await h.sync.runCycle(); // missed once: stale, not yet deleted
    expect(kinds(seq, vmid)).toEqual([]);
    h.sim.createGuest({ vmid, type: 'qemu', node: 'pve2', name: 'next-tenant', silent: true });
    await h.sync.runCycle();
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(detail(vmid)).toMatchObject({ name: 'next-tenant', incarnation: 2, stale: false });
    expect(detail(vmid).firstSeenAt > firstSeen).toBe(true);
  });

  it('across a tombstone: the new guest is not a revival of the old one', async () => {
    const { vmid, seq, firstSeen } = await setUp();
    h.sim.deleteGuest(vmid, true);
    await h.sync.runCycle();
    await h.sync.runCycle(); // second miss: tombstoned
    expect(kinds(seq, vmid)).toEqual(['guest.deleted']);
    h.sim.createGuest({ vmid, type: 'qemu', node: 'pve1', silent: true });
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(h.eventsSince(seq).find((e) => e.type === 'guest.created')!.data.revived).toBeUndefined();
    expect(detail(vmid)).toMatchObject({ incarnation: 2 });
    expect(detail(vmid).firstSeenAt > firstSeen).toBe(true);
  });

  it('across types: a container replaced by a VM is two guests', async () => {
    h = await startHarness({ guests: 20, nodes: 3, seed: 93 });
    await h.sync.runCycle();
    const ct = [...h.sim.cluster.guests.values()].find((x) => x.type === 'lxc' && !x.values.lock)!;
    const seq = h.lastSeq();
    h.sim.deleteGuest(ct.vmid, true);
    h.sim.createGuest({ vmid: ct.vmid, type: 'qemu', node: ct.node, silent: true });
    await h.sync.runCycle();
    expect(kinds(seq, ct.vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(h.eventsSince(seq).find((e) => e.type === 'guest.deleted')!.data).toMatchObject({
      type: 'lxc',
      incarnation: 1,
      reason: 'the type changed from lxc to qemu',
    });
    expect(detail(ct.vmid)).toMatchObject({ type: 'qemu', incarnation: 2 });
  });

  it('a destroy task alone is enough to record the deletion at once', async () => {
    const { vmid, seq } = await setUp();
    h.sim.deleteGuest(vmid);
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted']);
  });

  it('diff_snapshots shows the old guest removed and the new one added', async () => {
    const { vmid } = await setUp();
    const before = takeSnapshot(h.store);
    h.sim.deleteGuest(vmid);
    h.sim.createGuest({ vmid, type: 'qemu', node: 'pve2', name: 'new-one' });
    await h.sync.runCycle();
    await h.sync.runCycle();
    const after = takeSnapshot(h.store);
    const diff = diffSnapshots(readSnapshot(h.store, before.id)!, readSnapshot(h.store, after.id)!);
    expect(diff.removed.map((g) => g.vmid)).toContain(vmid);
    expect(diff.added.map((g) => [g.vmid, g.name])).toContainEqual([vmid, 'new-one']);
    expect(diff.changed.map((c) => c.vmid)).not.toContain(vmid);
  });
});

describe('one guest all along', () => {
  it('a rename and a migration are updates of the same guest', async () => {
    const { vmid, node, seq, firstSeen } = await setUp();
    const other = h.sim.cluster.nodes.map((n) => n.name).find((n) => n !== node)!;
    h.sim.updateGuest(vmid, { name: 'renamed-01' });
    h.sim.cluster.moveGuest(h.sim.cluster.guests.get(vmid)!, other);
    await h.sync.runCycle();
    expect(kinds(seq, vmid).sort()).toEqual(['guest.migrated', 'guest.updated']);
    expect(detail(vmid)).toMatchObject({ name: 'renamed-01', node: other, incarnation: 1, firstSeenAt: firstSeen });
  });

  it('a guest that comes back with the same config after a tombstone is revived, keeping its history', async () => {
    const { vmid, seq, firstSeen } = await setUp();
    const g = h.sim.cluster.guests.get(vmid)!;
    h.sim.cluster.removeGuest(vmid); // gone from the listing without a destroy task (a node cut off, a pmxcfs hiccup)
    await h.sync.runCycle();
    await h.sync.runCycle();
    h.sim.cluster.addGuest(g);
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(h.eventsSince(seq).find((e) => e.type === 'guest.created')!.data).toMatchObject({
      revived: true,
      incarnation: 1,
    });
    expect(detail(vmid)).toMatchObject({ incarnation: 1, firstSeenAt: firstSeen });
  });

  it('a uuid changed on the same VM (qm set --smbios1) is an update, not a new guest: the creation time decides', async () => {
    const { vmid, seq, firstSeen } = await setUp();
    h.sim.updateGuest(vmid, { config: { smbios1: 'uuid=0f0e0d0c-0b0a-4909-a807-060504030201' } });
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.updated']);
    expect(detail(vmid)).toMatchObject({ incarnation: 1, firstSeenAt: firstSeen });
  });

  it('a tombstone whose config cannot be read yet stays a tombstone, and is revived once the config proves it', async () => {
    const { vmid, seq, firstSeen } = await setUp();
    const g = h.sim.cluster.guests.get(vmid)!;
    h.sim.cluster.removeGuest(vmid);
    await h.sync.runCycle();
    await h.sync.runCycle();
    h.sim.cluster.addGuest(g);
    h.sim.setFaults({ endpoint: 'GET /nodes/{node}/qemu/{vmid}/config', errorRate: 1 });
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted']); // undecided: nothing said yet
    h.sim.setFaults({});
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(h.eventsSince(seq).find((e) => e.type === 'guest.created')!.data).toMatchObject({
      revived: true,
      incarnation: 1,
    });
    expect(detail(vmid)).toMatchObject({ incarnation: 1, firstSeenAt: firstSeen });
  });

  it('a destroy task seen a cycle after the new guest was recorded does not replace it again', async () => {
    const { vmid, seq } = await setUp();
    h.sim.setFaults({ endpoint: 'GET /cluster/tasks', errorRate: 1 });
    h.sim.deleteGuest(vmid);
    h.sim.createGuest({ vmid, type: 'qemu', node: 'pve1', name: 'successor' });
    await h.sync.runCycle(); // no task list: the new creation time tells
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    h.sim.setFaults({});
    await h.sync.runCycle(); // now the destroy task shows, older than the guest recorded since
    await h.sync.runCycle();
    expect(kinds(seq, vmid)).toEqual(['guest.deleted', 'guest.created']);
    expect(detail(vmid)).toMatchObject({ name: 'successor', incarnation: 2 });
  });
});
