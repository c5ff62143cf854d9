/**
 * Snapshot create, rollback and delete as qemu-server, pve-container and AbstractConfig.pm do
 * them, over real HTTP through the real client: RAM state only of a running VM, what a rollback
 * leaves running, the reserved names of each guest type, the schema's name rules, templates, and
 * the cluster-log line each worker writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { ProxmoxApiError } from '../../src/proxmox/errors.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import type { SimGuest } from '../../src/sim/state.js';

type Entry = Record<string, unknown>;

let sim: Simulator;
let client: ProxmoxClient;
const used = new Set<number>();

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 17, nodes: 3, guests: 120, lxcRatio: 0.4, taskDelayMs: 5 });
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

function take(type: 'qemu' | 'lxc', status: 'running' | 'stopped'): SimGuest {
  const g = [...sim.cluster.guests.values()].find(
    (x) =>
      x.type === type &&
      x.status === status &&
      !x.values.lock &&
      x.values.template !== '1' &&
      !x.ha &&
      !used.has(x.vmid),
  );
  if (!g) throw new Error(`no free ${status} ${type} guest left`);
  used.add(g.vmid);
  return g;
}

const base = (g: SimGuest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

/** Runs a snapshot action to its end: the exit status. */
async function run(method: 'POST' | 'DELETE', path: string, params = {}): Promise<string> {
  const upid = (await (method === 'POST' ? client.post(path, params) : client.delete(path, params))) as string;
  return (await client.waitForTask(upid, { intervalMs: 5, maxIntervalMs: 20, timeoutMs: 5_000 })).exitstatus;
}

async function refused(p: Promise<unknown>): Promise<ProxmoxApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return err as ProxmoxApiError;
}

const list = async (g: SimGuest): Promise<Entry[]> => (await client.get(`${base(g)}/snapshot`)) as Entry[];
const statusOf = async (g: SimGuest): Promise<unknown> =>
  ((await client.get(`${base(g)}/status/current`)) as Entry).status;

describe('qemu: vmstate and what a rollback leaves running', () => {
  it('RAM state is saved only with vmstate=1 of a running VM, and listed as vmstate 1', async () => {
    const g = take('qemu', 'running');
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'with_ram', vmstate: 1, description: 'ram' })).toBe(
      'OK',
    );
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'disk-only' })).toBe('OK');
    const snaps = await list(g);
    expect(snaps.find((s) => s.name === 'with_ram')).toMatchObject({ vmstate: 1, description: 'ram' });
    expect(snaps.find((s) => s.name === 'disk-only')).toMatchObject({
      vmstate: 0,
      parent: 'with_ram',
      description: '',
    });
    expect(snaps.at(-1)).toMatchObject({
      name: 'current',
      parent: 'disk-only',
      running: 1,
      description: 'You are here!',
    });
    expect(await statusOf(g)).toBe('running');

    // A rollback stops the guest; only a RAM-state snapshot resumes it, or start=1 boots it.
    expect(await run('POST', `${base(g)}/snapshot/disk-only/rollback`)).toBe('OK');
    expect(await statusOf(g)).toBe('stopped');
    expect((await list(g)).at(-1)).toMatchObject({ name: 'current', parent: 'disk-only', running: 0 });
    expect(await run('POST', `${base(g)}/snapshot/with_ram/rollback`)).toBe('OK');
    expect(await statusOf(g)).toBe('running');
    expect(await run('POST', `${base(g)}/snapshot/disk-only/rollback`, { start: 1 })).toBe('OK');
    expect(await statusOf(g)).toBe('running');

    expect(await run('DELETE', `${base(g)}/snapshot/with_ram`)).toBe('OK');
    const after = await list(g);
    expect(after.map((s) => s.name)).not.toContain('with_ram');
    expect(after.find((s) => s.name === 'disk-only')?.parent).toBe(snaps.find((s) => s.name === 'with_ram')?.parent);
  });

  it('vmstate=1 of a stopped VM saves no RAM state', async () => {
    const g = take('qemu', 'stopped');
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'cold', vmstate: 1 })).toBe('OK');
    expect((await list(g)).find((s) => s.name === 'cold')).toMatchObject({ vmstate: 0 });
    expect(await run('POST', `${base(g)}/snapshot/cold/rollback`)).toBe('OK');
    expect(await statusOf(g)).toBe('stopped');
  });
});

describe('lxc', () => {
  it('has no vmstate parameter; a rollback leaves it stopped unless start=1', async () => {
    const g = take('lxc', 'running');
    const err = await refused(client.post(`${base(g)}/snapshot`, { snapname: 'x1', vmstate: 1 }));
    expect([err.status, err.errors]).toEqual([
      400,
      { vmstate: 'property is not defined in schema and the schema does not allow additional properties' },
    ]);
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'ct_snap' })).toBe('OK');
    expect((await list(g)).find((s) => s.name === 'ct_snap')).not.toHaveProperty('vmstate');
    expect(await run('POST', `${base(g)}/snapshot/ct_snap/rollback`)).toBe('OK');
    expect(await statusOf(g)).toBe('stopped');
    expect(await run('POST', `${base(g)}/snapshot/ct_snap/rollback`, { start: 1 })).toBe('OK');
    expect(await statusOf(g)).toBe('running');
  });
});

describe('snapshot names', () => {
  it('qemu reserves "current" and "pending" in any case; lxc reserves "current" and "vzdump"', async () => {
    const [vm, ct] = [take('qemu', 'stopped'), take('lxc', 'stopped')];
    const reserved = async (g: SimGuest, name: string): Promise<[number, string]> => {
      const err = await refused(client.post(`${base(g)}/snapshot`, { snapname: name }));
      return [err.status, err.reason];
    };
    for (const name of ['current', 'pending', 'PENDING'])
      expect(await reserved(vm, name)).toEqual([500, `unable to use snapshot name '${name}' (reserved name)`]);
    for (const name of ['current', 'vzdump'])
      expect(await reserved(ct, name)).toEqual([500, `unable to use snapshot name '${name}' (reserved name)`]);
    expect(await run('POST', `${base(vm)}/snapshot`, { snapname: 'vzdump' })).toBe('OK');
    expect(await run('POST', `${base(ct)}/snapshot`, { snapname: 'pending' })).toBe('OK');
  });

  it('follow pve-configid (a letter, then at least one letter, digit, "_" or "-") and at most 40 characters', async () => {
    const g = take('qemu', 'stopped');
    const paramError = async (name: string): Promise<string | undefined> =>
      (await refused(client.post(`${base(g)}/snapshot`, { snapname: name }))).errors?.snapname;
    expect(await paramError('a')).toBe("invalid format - invalid configuration ID 'a'");
    expect(await paramError('1st')).toBe("invalid format - invalid configuration ID '1st'");
    expect(await paramError('pre.upgrade')).toBe("invalid format - invalid configuration ID 'pre.upgrade'");
    expect(await paramError(`s${'x'.repeat(40)}`)).toBe('value may only be 40 characters long');
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: `S${'_'.repeat(38)}9` })).toBe('OK');
  });
});

describe('templates', () => {
  it('cannot be snapshotted or rolled back: the task fails with AbstractConfig’s text', async () => {
    const g = take('qemu', 'stopped');
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'before' })).toBe('OK');
    sim.updateGuest(g.vmid, { config: { template: '1' }, silent: true });
    expect(await run('POST', `${base(g)}/snapshot`, { snapname: 'again' })).toBe(
      "you can't take a snapshot if it's a template",
    );
    expect(await run('POST', `${base(g)}/snapshot/before/rollback`)).toBe("you can't rollback if vm is a template");
    expect(sim.cluster.guests.get(g.vmid)?.values.lock).toBeUndefined();
  });
});

describe('cluster log', () => {
  it('each snapshot worker logs its line under the token, in Proxmox’s words per guest type', async () => {
    const [vm, ct] = [take('qemu', 'stopped'), take('lxc', 'stopped')];
    for (const g of [vm, ct]) {
      await run('POST', `${base(g)}/snapshot`, { snapname: 'logged' });
      await run('POST', `${base(g)}/snapshot/logged/rollback`);
      await run('DELETE', `${base(g)}/snapshot/logged`);
    }
    const lines = ((await client.get('/cluster/log', { max: 200 })) as Entry[])
      .filter((e) => !/^(starting|end) task /.test(e.msg as string))
      .reverse();
    const mine = lines.filter((e) => / (VM|container|LXC) (\d+): logged$/.test(e.msg as string));
    expect(mine.map((e) => e.msg)).toEqual([
      `snapshot VM ${vm.vmid}: logged`,
      `rollback snapshot VM ${vm.vmid}: logged`,
      `delete snapshot VM ${vm.vmid}: logged`,
      `snapshot container ${ct.vmid}: logged`,
      `rollback snapshot LXC ${ct.vmid}: logged`,
      `delete snapshot VM ${ct.vmid}: logged`,
    ]);
    expect(new Set(mine.map((e) => e.user))).toEqual(new Set(['root@pam!inventory']));
  });
});
