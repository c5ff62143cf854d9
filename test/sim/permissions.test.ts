/**
 * The simulator's permission model: tokens with chosen privileges (control API, `sim.addToken`,
 * `pveum` lines), privilege separation as an intersection, every route's schema check answered
 * with Proxmox's 403, the checks handlers make themselves (task ownership, suspend to disk), and
 * lists that show only what the caller may audit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimToken, type Simulator } from '../../src/sim/server.js';
import type { SimGuest } from '../../src/sim/state.js';

type Entry = Record<string, unknown>;

let sim: Simulator;

async function call(
  token: SimToken,
  method: string,
  path: string,
  params: Record<string, string> = {},
): Promise<{ status: number; reason: string; data: unknown; total?: number }> {
  const query = method === 'GET' && Object.keys(params).length ? `?${new URLSearchParams(params)}` : '';
  const res = await fetch(`${sim.url}/api2/json${path}${query}`, {
    method,
    headers: {
      Authorization: `PVEAPIToken=${token.id}=${token.secret}`,
      ...(method === 'GET' ? {} : { 'Content-Type': 'application/x-www-form-urlencoded' }),
    },
    body: method === 'GET' ? undefined : new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Entry) : {};
  return { status: res.status, reason: res.statusText, data: body.data, total: body.total as number | undefined };
}

async function control(path: string, body: unknown): Promise<{ status: number; json: Entry }> {
  const res = await fetch(`${sim.url}/_sim/${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Entry };
}

const guest = (type: 'qemu' | 'lxc', status: 'running' | 'stopped'): SimGuest =>
  [...sim.cluster.guests.values()].find(
    (g) => g.type === type && g.status === status && !g.values.lock && g.values.template !== '1' && !g.ha,
  )!;
const base = (g: SimGuest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

async function waitTask(token: SimToken, node: string, upid: string): Promise<Entry> {
  for (;;) {
    const res = await call(token, 'GET', `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
    expect(res.status).toBe(200);
    if ((res.data as Entry).status === 'stopped') return res.data as Entry;
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 11, nodes: 3, guests: 60, taskDelayMs: 5 });
});

afterAll(async () => {
  await sim?.close();
});

describe('tokens with chosen privileges', () => {
  it('POST /_sim/tokens makes a token holding exactly the given set; /access/permissions reports it', async () => {
    const { status, json } = await control('tokens', { id: 'ops@pve!power', privileges: ['VM.PowerMgmt'] });
    expect(status).toBe(200);
    expect(json.id).toBe('ops@pve!power');
    const token = json as unknown as SimToken;
    const perms = await call(token, 'GET', '/access/permissions', { path: '/' });
    expect(perms).toMatchObject({ status: 200, data: { '/': { 'VM.PowerMgmt': 1 } } });
    expect(Object.keys((perms.data as Record<string, Entry>)['/']!)).toEqual(['VM.PowerMgmt']);
  });

  it('pveum lines: roles on / add up for a user; a privsep token holds the intersection with its own ACL', async () => {
    sim.access.pveum('pveum user add alice@pve');
    sim.access.pveum('pveum role add Starter -privs "VM.PowerMgmt VM.Audit"');
    sim.access.pveum('pveum role add Snapper -privs "VM.Snapshot,Sys.Audit"');
    sim.access.pveum('pveum aclmod / -user alice@pve -role Starter');
    sim.access.pveum('pveum acl modify / --users alice@pve --roles Snapper');
    const whole = sim.access.pveum('pveum user token add alice@pve whole --privsep 0') as SimToken;
    const split = sim.access.pveum('pveum user token add alice@pve split') as SimToken; // privsep 1 by default
    sim.access.pveum("pveum acl modify / --tokens 'alice@pve!split' --roles Starter,PVEAuditor");

    const held = async (t: SimToken): Promise<string[]> =>
      Object.keys(((await call(t, 'GET', '/access/permissions', { path: '/' })).data as Record<string, Entry>)['/']!);
    expect(await held(whole)).toEqual(['Sys.Audit', 'VM.Audit', 'VM.PowerMgmt', 'VM.Snapshot']);
    // Starter ∪ PVEAuditor on the token, ∩ Starter ∪ Snapper on the user.
    expect(await held(split)).toEqual(['Sys.Audit', 'VM.Audit', 'VM.PowerMgmt']);

    // A role change applies to the next request, as pmxcfs propagates user.cfg at once.
    sim.access.pveum('pveum role modify Starter -privs "VM.Audit"');
    expect(await held(split)).toEqual(['Sys.Audit', 'VM.Audit']);
  });

  it('refuses what pveum refuses, and ACLs the model cannot hold, with a 400 naming the fix', async () => {
    expect(await control('pveum', { command: 'pveum role add Bad -privs "VM.PowerMgmt VM.Teleport"' })).toEqual({
      status: 400,
      json: { error: "invalid privilege 'VM.Teleport'" },
    });
    expect((await control('pveum', { command: 'pveum aclmod / -user nobody@pve -role PVEAuditor' })).json.error).toBe(
      "user 'nobody@pve' does not exist",
    );
    expect((await control('pveum', { command: 'pveum aclmod / -user alice@pve -role Missing' })).json.error).toBe(
      "role 'Missing' does not exist",
    );
    expect(
      (await control('pveum', { command: 'pveum aclmod /vms/100 -user alice@pve -role PVEAuditor' })).json,
    ).toEqual({
      error: 'the simulator models ACL entries on / with propagation only, not on /vms/100',
    });
    expect((await control('tokens', { id: 'x@pve!y', privileges: 'VM.Audit' })).status).toBe(400);
    const created = await control('pveum', { command: 'pveum user token add alice@pve viahttp --privsep 1' });
    expect(created.status).toBe(200);
    expect((created.json.data as Entry).id).toBe('alice@pve!viahttp');
  });

  it('the two fixed tokens keep their privileges', async () => {
    expect(sim.access.privilegesOf(sim.tokens.full.id)).toEqual(new Set(['*']));
    expect([...sim.access.privilegesOf(sim.tokens.auditor.id)!].sort()).toEqual([
      'Datastore.Audit',
      'Mapping.Audit',
      'Pool.Audit',
      'SDN.Audit',
      'Sys.Audit',
      'VM.Audit',
      'VM.GuestAgent.Audit',
    ]);
  });
});

describe('route checks', () => {
  it('each write our actions send needs its schema privilege: 403 in Proxmox words, recorded in the write log', async () => {
    const audit = sim.addToken({ id: 'look@pve!only', privileges: ['VM.Audit', 'Sys.Audit'] });
    const g = guest('qemu', 'stopped');
    const cases: Array<[string, string, Record<string, string>, string]> = [
      ['POST', `${base(g)}/status/start`, {}, 'VM.PowerMgmt'],
      ['POST', `${base(g)}/status/stop`, {}, 'VM.PowerMgmt'],
      ['POST', `${base(g)}/snapshot`, { snapname: 'pre' }, 'VM.Snapshot'],
      ['POST', `${base(g)}/snapshot/pre/rollback`, {}, 'VM.Snapshot|VM.Snapshot.Rollback'],
      ['DELETE', `${base(g)}/snapshot/pre`, {}, 'VM.Snapshot'],
    ];
    for (const [method, path, params, priv] of cases) {
      const res = await call(audit, method, path, params);
      expect(res, `${method} ${path}`).toMatchObject({
        status: 403,
        reason: `Permission check failed (/vms/${g.vmid}, ${priv})`,
      });
    }
    expect(sim.writes().filter((w) => w.user === audit.id)).toHaveLength(cases.length);
    expect(sim.writes().find((w) => w.user === audit.id)).toMatchObject({ status: 403 });
  });

  it('VM.Snapshot.Rollback alone may roll back but not take a snapshot', async () => {
    const g = [...sim.cluster.guests.values()].find((x) => x.snapshots.length && !x.values.lock && !x.ha)!;
    const snap = g.snapshots[0]!.name;
    const rollback = sim.addToken({ id: 'undo@pve!only', privileges: ['VM.Snapshot.Rollback'] });
    const ok = await call(rollback, 'POST', `${base(g)}/snapshot/${snap}/rollback`);
    expect(ok.status).toBe(200);
    await waitTask(rollback, g.node, ok.data as string);
    expect((await call(rollback, 'POST', `${base(g)}/snapshot`, { snapname: 'more' })).reason).toBe(
      `Permission check failed (/vms/${g.vmid}, VM.Snapshot)`,
    );
  });

  it('qemu suspend to disk also needs VM.Config.Disk and Datastore.AllocateSpace on the state storage', async () => {
    const g = guest('qemu', 'running');
    const power = sim.addToken({ id: 'pause@pve!power', privileges: ['VM.PowerMgmt'] });
    expect((await call(power, 'POST', `${base(g)}/status/suspend`, { todisk: '1' })).reason).toBe(
      `Permission check failed (/vms/${g.vmid}, VM.Config.Disk)`,
    );
    const disk = sim.addToken({ id: 'pause@pve!disk', privileges: ['VM.PowerMgmt', 'VM.Config.Disk'] });
    expect((await call(disk, 'POST', `${base(g)}/status/suspend`, { todisk: '1' })).reason).toMatch(
      /^Permission check failed \(\/storage\/[\w-]+, Datastore\.AllocateSpace\)$/,
    );
    const all = sim.addToken({
      id: 'pause@pve!all',
      privileges: ['VM.PowerMgmt', 'VM.Config.Disk', 'Datastore.AllocateSpace'],
    });
    const ok = await call(all, 'POST', `${base(g)}/status/suspend`, { todisk: '1' });
    expect(ok.status).toBe(200);
    await waitTask(all, g.node, ok.data as string);
  });

  it("a token reads its own task's status and log without Sys.Audit, another's only with it", async () => {
    const g = guest('lxc', 'stopped');
    const power = sim.addToken({ id: 'tasks@pve!power', privileges: ['VM.PowerMgmt'] });
    const started = await call(power, 'POST', `${base(g)}/status/start`);
    expect(started.status).toBe(200);
    const upid = started.data as string;
    expect(await waitTask(power, g.node, upid)).toMatchObject({ exitstatus: 'OK' });
    expect((await call(power, 'GET', `/nodes/${g.node}/tasks/${encodeURIComponent(upid)}/log`)).status).toBe(200);

    const other = sim.addToken({ id: 'tasks@pve!other', privileges: ['VM.PowerMgmt'] });
    for (const what of ['status', 'log'])
      expect(await call(other, 'GET', `/nodes/${g.node}/tasks/${encodeURIComponent(upid)}/${what}`)).toMatchObject({
        status: 403,
        reason: `Permission check failed (/nodes/${g.node}, Sys.Audit)`,
      });

    // The node's task list: one's own tasks, or all of them with Sys.Audit; `total` counts what is shown.
    const own = await call(power, 'GET', `/nodes/${g.node}/tasks`);
    expect((own.data as Entry[]).map((t) => t.upid)).toEqual([upid]);
    expect(own.total).toBe(1);
    expect(await call(other, 'GET', `/nodes/${g.node}/tasks`)).toMatchObject({ data: [], total: 0 });
    const auditor = await call(sim.tokens.auditor, 'GET', `/nodes/${g.node}/tasks`);
    expect((auditor.data as Entry[]).some((t) => t.upid === upid)).toBe(true);

    // Cluster.pm `tasks` compares the task's user without its token id to the caller: a token without
    // Sys.Audit on / sees none of its tasks there, not even its own.
    expect((await call(power, 'GET', '/cluster/tasks')).data).toEqual([]);
    const all = (await call(sim.tokens.auditor, 'GET', '/cluster/tasks')).data as Entry[];
    expect(all.find((t) => t.upid === upid)).toMatchObject({ user: 'tasks@pve', tokenid: 'power' });
  });
});

describe('lists show what the caller may audit', () => {
  it('without VM.Audit no guest is listed; without Sys.Audit nodes keep no stats; without Pool.Audit no pool', async () => {
    const blind = sim.addToken({ id: 'blind@pve!none', privileges: ['VM.PowerMgmt'] });
    const resources = (await call(blind, 'GET', '/cluster/resources')).data as Entry[];
    expect(resources.map((e) => e.type)).toEqual(sim.cluster.nodes.map(() => 'node'));
    expect(Object.keys(resources[0]!).sort()).toEqual(['cgroup-mode', 'id', 'level', 'node', 'status', 'type']);
    expect((await call(blind, 'GET', '/nodes')).data as Entry[]).toHaveLength(sim.cluster.nodes.length);
    expect(((await call(blind, 'GET', '/nodes')).data as Entry[]).every((n) => n.cpu === undefined)).toBe(true);
    expect((await call(blind, 'GET', `/nodes/${sim.cluster.nodes[0]!.name}/qemu`)).data).toEqual([]);
    expect((await call(blind, 'GET', '/pools')).data).toEqual([]);
    expect((await call(blind, 'GET', `/nodes/${sim.cluster.nodes[0]!.name}/storage`)).data).toEqual([]);

    const auditor = (await call(sim.tokens.auditor, 'GET', '/cluster/resources')).data as Entry[];
    const full = (await call(sim.tokens.full, 'GET', '/cluster/resources')).data as Entry[];
    expect(auditor.map((e) => e.id)).toEqual(full.map((e) => e.id));
    expect(auditor.filter((e) => e.type === 'qemu' || e.type === 'lxc')).toHaveLength(sim.cluster.guests.size);
  });

  it('a read whose schema check fails answers 403 naming the privilege', async () => {
    const blind = sim.addToken({ id: 'blind@pve!reads', privileges: ['VM.PowerMgmt'] });
    const g = guest('qemu', 'running');
    expect((await call(blind, 'GET', `${base(g)}/config`)).reason).toBe(
      `Permission check failed (/vms/${g.vmid}, VM.Audit)`,
    );
    expect((await call(blind, 'GET', '/cluster/status')).reason).toBe('Permission check failed (/, Sys.Audit)');
    expect((await call(blind, 'GET', `/nodes/${g.node}/status`)).reason).toBe(
      `Permission check failed (/nodes/${g.node}, Sys.Audit)`,
    );
  });
});
