/**
 * Checks Proxmox makes before forking a worker (answered as HTTP 500 at once, no task), quorum
 * loss, and HA-managed power requests: what an action queue built on top must see the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxmoxApiError } from '../../src/proxmox/errors.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import type { SimGuest } from '../../src/sim/state.js';

let sim: Simulator;
let client: ProxmoxClient;

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 21, nodes: 3, guests: 80, taskDelayMs: 10 });
  client = createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens.full.id,
    tokenSecret: new Secret(sim.tokens.full.secret),
    tls: {},
    retries: 0,
  });
});
afterAll(async () => {
  await client.close();
  await sim.close();
});

const find = (pred: (g: SimGuest) => boolean): SimGuest => {
  const g = [...sim.cluster.guests.values()].find((x) => x.values.template !== '1' && pred(x));
  if (!g) throw new Error('no matching guest in the generated cluster');
  return g;
};
const base = (g: SimGuest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

async function refused(p: Promise<unknown>): Promise<[number, string]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return [(err as ProxmoxApiError).status, (err as ProxmoxApiError).reason];
}

describe('checks made before forking', () => {
  it('migrating or cloning a locked guest is refused at once with check_lock’s text', async () => {
    const g = find((x) => x.type === 'qemu' && x.status === 'stopped' && !x.values.lock && !x.ha);
    sim.updateGuest(g.vmid, { lock: 'backup', silent: true });
    const tasksBefore = sim.cluster.tasks.length;
    const other = sim.cluster.nodes.find((n) => n.name !== g.node)!.name;
    expect(await refused(client.post(`${base(g)}/migrate`, { target: other }))).toEqual([500, 'VM is locked (backup)']);
    expect(await refused(client.post(`${base(g)}/clone`, { newid: 9001 }))).toEqual([500, 'VM is locked (backup)']);
    expect(sim.cluster.tasks.length).toBe(tasksBefore);
    sim.updateGuest(g.vmid, { lock: null, silent: true });
  });

  it('a clone from a snapshot that does not exist, or to another node from local storage, is refused', async () => {
    const local = find((x) => x.type === 'qemu' && !x.values.lock && x.values.scsi0?.startsWith('local-lvm:') === true);
    expect(await refused(client.post(`${base(local)}/clone`, { newid: 9002, snapname: 'nope' }))).toEqual([
      500,
      "snapshot 'nope' does not exist",
    ]);
    const other = sim.cluster.nodes.find((n) => n.name !== local.node)!.name;
    expect(await refused(client.post(`${base(local)}/clone`, { newid: 9003, target: other }))).toEqual([
      500,
      `can't clone VM to node '${other}' (VM uses local storage)`,
    ]);
    const upid = (await client.post(`${base(local)}/clone`, {
      newid: 9004,
      target: other,
      storage: 'ceph-vm',
      full: 1,
    })) as string;
    await expect(client.waitForTask(upid, { intervalMs: 5 })).resolves.toMatchObject({ outcome: 'ok' });
    expect(sim.cluster.guests.get(9004)).toMatchObject({ node: other });
  });

  it('a paused VM cannot be shut down (qemu-server vm_shutdown)', async () => {
    const g = find((x) => x.type === 'qemu' && x.status === 'running' && !x.values.lock && !x.ha);
    sim.updateGuest(g.vmid, { status: 'paused', silent: true });
    expect(await refused(client.post(`${base(g)}/status/shutdown`))).toEqual([500, 'VM is paused - cannot shutdown']);
  });
});

describe('HA-managed guests', () => {
  it('a start request for a running HA guest only records the request: the hastart task ends OK', async () => {
    const g = find((x) => x.ha !== undefined && x.status === 'running' && !x.values.lock);
    const upid = (await client.post(`${base(g)}/status/start`)) as string;
    expect(upid).toContain(':hastart:');
    await expect(client.waitForTask(upid, { intervalMs: 5 })).resolves.toMatchObject({ outcome: 'ok' });
  });
});

describe('quorum loss', () => {
  it('refuses writes and says so in HA status; reads still work', async () => {
    const g = find((x) => x.node === 'pve1' && x.type === 'qemu' && x.status === 'stopped' && !x.values.lock && !x.ha);
    sim.setNodeOnline('pve2', false);
    sim.setNodeOnline('pve3', false);
    try {
      expect(await refused(client.post(`${base(g)}/status/start`))).toEqual([500, 'cluster not ready - no quorum?']);
      expect((await client.clusterStatus()).cluster?.quorate).toBe(false);
      const ha = (await client.get('/cluster/ha/status/current')) as Array<Record<string, unknown>>;
      expect(ha[0]).toMatchObject({ id: 'quorum', quorate: 0, status: "No quorum on node 'pve1'!" });
    } finally {
      sim.setNodeOnline('pve2', true);
      sim.setNodeOnline('pve3', true);
    }
  });
});

describe('release-dependent shapes', () => {
  it('compares releases as numbers: a 10.x cluster still reports memhost', async () => {
    const ten = await startSimulator({ tls: false, guests: 5, nodes: 1, pveVersion: '10.0.1' });
    try {
      const res = await fetch(`${ten.url}/api2/json/cluster/resources?type=vm`, {
        headers: { Authorization: `PVEAPIToken=${ten.tokens.full.id}=${ten.tokens.full.secret}` },
      });
      const qemu = ((await res.json()) as { data: Array<Record<string, unknown>> }).data.filter(
        (e) => e.type === 'qemu' && e.status === 'running',
      );
      expect(qemu.length).toBeGreaterThan(0);
      expect(qemu.every((e) => typeof e.memhost === 'number')).toBe(true);
    } finally {
      await ten.close();
    }
  });
});
