/**
 * Each action kind end to end through the real MCP client: the tool call → the action row and its
 * job (real Redis, BullMQ) → the worker's POST to the simulator (over HTTP) → the task → succeeded,
 * get_guest showing the new state before the next sync, and the events each once, in order. Each
 * destructive kind goes through the plan and its token; every action sends exactly one request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionsAskedSince } from '../../src/store/actions.js';
import {
  callerWith,
  connect,
  guestsOf,
  startActionRig,
  writesFor,
  type ActionRig,
  type Connected,
} from './actions-support.js';

let rig: ActionRig;
let mcp: Connected;
/** Every answer of this file, for the canary at the end. */
const answers: string[] = [];

beforeAll(async () => {
  rig = await startActionRig(11);
  mcp = await connect(rig, { caller: callerWith('alice') });
}, 60_000);

afterAll(async () => {
  await mcp?.client.close();
  await rig?.close();
});

async function call(name: string, args: Record<string, unknown>) {
  const answer = await mcp.call(name, args);
  answers.push(answer.text, JSON.stringify(answer.structured ?? {}));
  return answer;
}

/** Asks, confirming with the plan's token when the kind is destructive; waits for the outcome. */
async function act(tool: string, args: Record<string, unknown>, destructive: boolean) {
  const posted = rig.h.sim.writes().length;
  let answer = await call(tool, { ...args, waitSeconds: 20 });
  if (destructive) {
    expect(answer.isError, answer.text).toBe(false);
    expect(answer.structured!.outcome).toBe('confirmation_required');
    expect(rig.h.sim.writes().length, 'nothing sent before the confirmation').toBe(posted);
    answer = await call(tool, { ...args, waitSeconds: 20, confirmation: answer.structured!.confirmation });
  }
  expect(answer.isError, answer.text).toBe(false);
  expect(answer.structured!.outcome).toBe('queued');
  return answer.structured!.action as Record<string, unknown>;
}

const statusNow = async (vmid: number): Promise<string> => {
  const g = await call('get_guest', { vmid });
  return (g.structured!.guest as { status: string }).status;
};

/** The action's own events, and the guest's status changes since `seq`. */
function eventsOf(seq: number, id: string, vmid: number): string[] {
  return rig.h
    .eventsSince(seq)
    .filter((e) => e.subject === id || (e.type === 'guest.status_changed' && e.subject.endsWith(`/${vmid}`)))
    .map((e) => e.type);
}

describe('power kinds', () => {
  it('start, then shutdown, stop, reboot, suspend and resume: each one POST, the new status before the next sync, events once each', async () => {
    const qemu = guestsOf(rig).filter((g) => g.type === 'qemu');
    const stopped = qemu.find((g) => g.status === 'stopped')!;
    expect(stopped, 'a stopped qemu guest in the simulated cluster').toBeDefined();
    const steps: Array<[string, Record<string, unknown>, boolean, string]> = [
      ['start', {}, false, 'running'],
      ['suspend', {}, true, 'paused'], // status/current says running; qmpstatus (and /cluster/resources) paused
      ['resume', {}, false, 'running'],
      ['reboot', {}, true, 'running'],
      ['shutdown', { timeout: 30, forceStop: true }, true, 'stopped'],
      ['start', {}, false, 'running'],
      ['stop', {}, true, 'stopped'],
    ];
    for (const [kind, params, destructive, after] of steps) {
      const seq = rig.h.lastSeq();
      const before = writesFor(rig, stopped.vmid).length;
      const action = await act('guest_power', { vmid: stopped.vmid, action: kind, ...params }, destructive);
      expect(action.state, `${kind}: ${JSON.stringify(action)}`).toBe('succeeded');
      expect(action.requestedBy).toEqual({ transport: 'mcp-stdio', client: 'actions-test 2.1', principal: 'alice' });
      expect(action.upid).toMatch(/^UPID:/);
      const sent = writesFor(rig, stopped.vmid).slice(before);
      expect(sent, kind).toEqual([`POST /nodes/${stopped.node}/qemu/${stopped.vmid}/status/${kind}`]);
      expect(await statusNow(stopped.vmid), `${kind}: get_guest before any sync`).toBe(after);
      const events = eventsOf(seq, action.id as string, stopped.vmid);
      const changed = kind !== 'reboot';
      expect(events, kind).toEqual([
        'action.queued',
        'action.started',
        ...(changed ? ['guest.status_changed'] : []),
        'action.succeeded',
      ]);
    }
    // The next sync agrees: no status change is reported twice.
    const seq = rig.h.lastSeq();
    expect((await rig.h.sync.runCycle()).ok).toBe(true);
    expect(rig.h.eventsSince(seq).filter((e) => e.subject.endsWith(`/${stopped.vmid}`))).toEqual([]);
  }, 120_000);

  it('a container starts and stops too (vz tasks)', async () => {
    const ct = guestsOf(rig).find((g) => g.type === 'lxc' && g.status === 'running')!;
    expect(ct).toBeDefined();
    const stop = await act('guest_power', { vmid: ct.vmid, action: 'stop' }, true);
    expect(stop.state).toBe('succeeded');
    expect(await statusNow(ct.vmid)).toBe('stopped');
    const start = await act('guest_power', { vmid: ct.vmid, action: 'start' }, false);
    expect(start.state).toBe('succeeded');
    expect(await statusNow(ct.vmid)).toBe('running');
  }, 60_000);
});

describe('snapshot kinds', () => {
  it('create, rollback and delete: get_guest lists the snapshot with when it was read, and not after the delete', async () => {
    const g = guestsOf(rig).find((x) => x.type === 'qemu')!;
    const before = writesFor(rig, g.vmid).length;
    const created = await act(
      'guest_snapshot',
      { vmid: g.vmid, action: 'create', name: 'before-upgrade', description: 'taken by a test' },
      false,
    );
    expect(created.state, JSON.stringify(created)).toBe('succeeded');
    let shown = await call('get_guest', { vmid: g.vmid });
    const snaps = (shown.structured!.guest as { snapshots: { readAt: string; list: Array<{ name: string }> } })
      .snapshots;
    expect(snaps.list.map((s) => s.name)).toContain('before-upgrade');
    expect(Date.now() - Date.parse(snaps.readAt)).toBeLessThan(60_000);
    expect(shown.text).toMatch(/snapshots \(read [^)]+\): .*before-upgrade/);

    const rolled = await act('guest_snapshot', { vmid: g.vmid, action: 'rollback', name: 'before-upgrade' }, true);
    expect(rolled.state, JSON.stringify(rolled)).toBe('succeeded');
    const deleted = await act('guest_snapshot', { vmid: g.vmid, action: 'delete', name: 'before-upgrade' }, true);
    expect(deleted.state, JSON.stringify(deleted)).toBe('succeeded');
    shown = await call('get_guest', { vmid: g.vmid });
    expect((shown.structured!.guest as { snapshots: unknown }).snapshots).toEqual({
      readAt: null,
      configSaysSome: false,
      list: [],
    });
    expect(shown.text).toContain('snapshots: none known (its config names no parent snapshot)');
    const base = `/nodes/${g.node}/qemu/${g.vmid}/snapshot`;
    expect(writesFor(rig, g.vmid).slice(before)).toEqual([
      `POST ${base}`,
      `POST ${base}/before-upgrade/rollback`,
      `DELETE ${base}/before-upgrade`,
    ]);
  }, 90_000);

  it('a snapshot that does not exist is refused before anything is queued, naming the ones there are', async () => {
    const g = guestsOf(rig).find((x) => x.type === 'qemu')!;
    await act('guest_snapshot', { vmid: g.vmid, action: 'create', name: 'keep-me' }, false);
    const asked = actionsAskedSince(rig.h.store, 'alice', 0);
    const r = await call('guest_snapshot', { vmid: g.vmid, action: 'delete', name: 'nope' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('has no snapshot "nope"');
    expect(r.text).toContain('keep-me');
    expect(actionsAskedSince(rig.h.store, 'alice', 0)).toBe(asked);
  }, 60_000);
});

describe('reading actions', () => {
  it('list_actions pages newest first and filters; get_action shows the task log tail', async () => {
    const all = await call('list_actions', { limit: 100 });
    const rows = all.structured!.actions as Array<{ id: string; state: string; vmid: number }>;
    expect(rows.length).toBeGreaterThan(8);
    const first = await call('list_actions', { limit: 3 });
    const next = await call('list_actions', { limit: 3, cursor: first.structured!.nextCursor });
    expect(
      [...(first.structured!.actions as []), ...(next.structured!.actions as [])].map((r: { id: string }) => r.id),
    ).toEqual(rows.slice(0, 6).map((r) => r.id));
    const byState = await call('list_actions', { state: 'succeeded', vmid: rows[0]!.vmid, since: '1h' });
    expect((byState.structured!.actions as Array<{ state: string }>).every((r) => r.state === 'succeeded')).toBe(true);
    const one = await call('get_action', { id: rows[0]!.id });
    expect((one.structured!.action as { taskLog: string[] }).taskLog.length).toBeGreaterThan(0);
    expect(one.text).toContain('task log (last lines, data from Proxmox):');
    expect((await call('get_action', { id: 'act_nope' })).text).toContain('No action "act_nope"');
    expect((await call('list_actions', { cursor: 'bogus' })).isError).toBe(true);
  });

  it('canary: no Proxmox token secret in any answer or action row', () => {
    const secret = rig.h.sim.tokens.full.secret;
    expect(answers.join('\n')).not.toContain(secret);
    const rows = JSON.stringify(rig.h.store.sqlite.prepare('SELECT * FROM actions').all());
    expect(rows).not.toContain(secret);
    expect(rows).not.toMatch(/PVEAPIToken/);
  });
});
