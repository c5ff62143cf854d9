/**
 * Each action kind end to end, in process: submitAction writes the row and enqueues it, the BullMQ
 * worker on a real Redis sends it to the simulator over HTTPS, waits for the task, and reads the
 * guest back through the sync's refreshGuest, so the store shows the outcome before any sync
 * cycle. The simulator's write log proves one request per action; the events table proves each
 * change is reported once, also when a lagging bulk read follows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionKindName } from '../../src/actions/catalogue.js';
import { ActionRefused } from '../../src/actions/submit.js';
import type { ActionWorker } from '../../src/actions/queue.js';
import type { SimGuest } from '../../src/sim/state.js';
import type { ActionRow } from '../../src/store/actions.js';
import { startActionHarness, type ActionHarness } from './harness.js';

let h: ActionHarness;
let worker: ActionWorker;

beforeAll(async () => {
  h = await startActionHarness({ seed: 5, nodes: 3, guests: 90, lxcRatio: 0.4, taskDelayMs: 20 });
  worker = h.startWorker();
});

afterAll(async () => {
  await h?.close();
});

interface Expectation {
  /** The request the simulator must see exactly once. */
  request: string;
  /** The guest's status in the simulator and in the store afterwards. */
  status: string;
}

/** Submits, waits for the end, and checks the one request, the stored status and the action's events. */
async function runOnce(
  kind: ActionKindName,
  g: SimGuest,
  params: Record<string, unknown>,
  expected: Expectation,
): Promise<ActionRow> {
  const before = h.writesFor(g.vmid).length;
  const submitted = await h.submit(kind, g.vmid, params);
  expect(submitted).toMatchObject({ created: true, job: 'queued' });
  const row = await h.waitFinal(submitted.action.id);
  expect(row, row.reason ?? '').toMatchObject({ state: 'succeeded', exitStatus: 'OK' });

  const writes = h.writesFor(g.vmid).slice(before);
  expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual([expected.request]);
  expect(writes[0]).toMatchObject({ status: 200, upid: row.upid, user: 'root@pam!inventory' });

  expect(h.sim.cluster.guests.get(g.vmid)?.status).toBe(expected.status);
  // A paused VM: status/current says running, qmpstatus paused; the store shows paused, as /cluster/resources does.
  expect(h.guestStatus(g.vmid)).toBe(expected.status);
  return row;
}

/** The action's events from its `action.queued` on, by type. */
function actionEventTypes(row: ActionRow): string[] {
  const events = h.eventsOf(row);
  const from = events.findIndex((e) => e.type === 'action.queued' && e.data.action === row.id);
  return events.slice(from).map((e) => e.type);
}

/** A sync cycle after the action: it must not report the change a second time. */
async function cycleAddsNothingFor(row: ActionRow): Promise<void> {
  const seen = h.eventsOf(row).length;
  await h.sync.runCycle();
  expect(
    h
      .eventsOf(row)
      .slice(seen)
      .map((e) => e.type),
  ).toEqual([]);
}

const base = (g: SimGuest): string => `/nodes/${g.node}/${g.type}/${g.vmid}`;

describe.each(['qemu', 'lxc'] as const)('power actions on %s', (type) => {
  it('start: stopped → running, reported once before any cycle', async () => {
    const g = h.take(type, 'stopped');
    const row = await runOnce('start', g, {}, { request: `POST ${base(g)}/status/start`, status: 'running' });
    expect(actionEventTypes(row)).toEqual([
      'action.queued',
      'action.started',
      'guest.status_changed',
      'action.succeeded',
    ]);
    const changed = h.eventsOf(row).find((e) => e.type === 'guest.status_changed')!;
    expect(changed.data).toMatchObject({ from: 'stopped', to: 'running' });
    // Tags ride along on the guest's and the action's events (a webhook receiver routes on them).
    const tags = JSON.parse(
      h.store.sqlite.prepare('SELECT tags FROM guests WHERE vmid = ?').pluck().get(g.vmid) as string,
    ) as string[];
    expect(changed.data.tags).toEqual(tags);
    expect(h.eventsOf(row).find((e) => e.type === 'action.succeeded')!.data.tags).toEqual(tags);
    await cycleAddsNothingFor(row);
  });

  it('shutdown (with forceStop and a timeout): running → stopped', async () => {
    const g = h.take(type, 'running');
    const row = await runOnce(
      'shutdown',
      g,
      { timeout: 30, forceStop: true },
      { request: `POST ${base(g)}/status/shutdown`, status: 'stopped' },
    );
    expect(h.writesFor(g.vmid).at(-1)?.params).toEqual({ timeout: '30', forceStop: '1' });
    expect(actionEventTypes(row)).toEqual([
      'action.queued',
      'action.started',
      'guest.status_changed',
      'action.succeeded',
    ]);
    await cycleAddsNothingFor(row);
  });

  it('stop: running → stopped', async () => {
    const g = h.take(type, 'running');
    const row = await runOnce('stop', g, {}, { request: `POST ${base(g)}/status/stop`, status: 'stopped' });
    expect(actionEventTypes(row)).toEqual([
      'action.queued',
      'action.started',
      'guest.status_changed',
      'action.succeeded',
    ]);
    await cycleAddsNothingFor(row);
  });

  it('reboot: running, and no status change to report', async () => {
    const g = h.take(type, 'running');
    const row = await runOnce('reboot', g, {}, { request: `POST ${base(g)}/status/reboot`, status: 'running' });
    expect(actionEventTypes(row)).toEqual(['action.queued', 'action.started', 'action.succeeded']);
    await cycleAddsNothingFor(row);
  });

  it('suspend then resume', async () => {
    const g = h.take(type, 'running');
    const suspended = await runOnce(
      'suspend',
      g,
      {},
      {
        request: `POST ${base(g)}/status/suspend`,
        status: type === 'qemu' ? 'paused' : 'running',
      },
    );
    if (type === 'lxc') expect(h.sim.cluster.guests.get(g.vmid)?.frozen).toBe(true);
    // A VM pauses (a status change, reported once); a container freezes and Proxmox still calls it running.
    const changed = type === 'qemu' ? ['guest.status_changed'] : [];
    expect(actionEventTypes(suspended)).toEqual(['action.queued', 'action.started', ...changed, 'action.succeeded']);
    await cycleAddsNothingFor(suspended);
    const resumed = await runOnce('resume', g, {}, { request: `POST ${base(g)}/status/resume`, status: 'running' });
    if (type === 'lxc') expect(h.sim.cluster.guests.get(g.vmid)?.frozen).toBe(false);
    expect(actionEventTypes(resumed)).toEqual(['action.queued', 'action.started', ...changed, 'action.succeeded']);
    expect(h.writesFor(g.vmid)).toHaveLength(2);
    await cycleAddsNothingFor(resumed);
  });
});

describe('snapshots', () => {
  const snapshotsOf = (vmid: number) =>
    h.store.sqlite
      .prepare('SELECT name, description, vmstate FROM guest_snapshots WHERE cluster = ? AND vmid = ? ORDER BY name')
      .all('lab', vmid);

  it('qemu: create with vmstate, rollback to it (running again), delete; the list is read back each time', async () => {
    const g = h.take('qemu', 'running');
    const created = await runOnce(
      'snapshot_create',
      g,
      { name: 'pre-upgrade', description: 'before the kernel update', vmstate: true },
      { request: `POST ${base(g)}/snapshot`, status: 'running' },
    );
    expect(h.writesFor(g.vmid).at(-1)?.params).toEqual({
      snapname: 'pre-upgrade',
      description: 'before the kernel update',
      vmstate: '1',
    });
    expect(snapshotsOf(g.vmid)).toContainEqual({
      name: 'pre-upgrade',
      description: 'before the kernel update',
      vmstate: 1,
    });
    expect(actionEventTypes(created).filter((t) => t.startsWith('action.'))).toEqual([
      'action.queued',
      'action.started',
      'action.succeeded',
    ]);
    expect(actionEventTypes(created)).not.toContain('guest.status_changed');

    // A RAM-state snapshot resumes the VM after the rollback.
    const rolled = await runOnce(
      'snapshot_rollback',
      g,
      { name: 'pre-upgrade' },
      { request: `POST ${base(g)}/snapshot/pre-upgrade/rollback`, status: 'running' },
    );
    expect(actionEventTypes(rolled)).not.toContain('guest.status_changed');

    await runOnce(
      'snapshot_delete',
      g,
      { name: 'pre-upgrade' },
      { request: `DELETE ${base(g)}/snapshot/pre-upgrade`, status: 'running' },
    );
    expect(snapshotsOf(g.vmid).map((s) => (s as { name: string }).name)).not.toContain('pre-upgrade');
    expect(h.writesFor(g.vmid)).toHaveLength(3);
  });

  it('lxc: create, rollback (the container stops: reported once), delete', async () => {
    const g = h.take('lxc', 'running');
    await runOnce(
      'snapshot_create',
      g,
      { name: 'nightly' },
      { request: `POST ${base(g)}/snapshot`, status: 'running' },
    );
    expect(snapshotsOf(g.vmid)).toContainEqual({ name: 'nightly', description: null, vmstate: 0 });

    const rolled = await runOnce(
      'snapshot_rollback',
      g,
      { name: 'nightly' },
      { request: `POST ${base(g)}/snapshot/nightly/rollback`, status: 'stopped' },
    );
    expect(actionEventTypes(rolled)).toEqual([
      'action.queued',
      'action.started',
      'guest.status_changed',
      'action.succeeded',
    ]);
    await cycleAddsNothingFor(rolled);

    await runOnce(
      'snapshot_delete',
      g,
      { name: 'nightly' },
      { request: `DELETE ${base(g)}/snapshot/nightly`, status: 'stopped' },
    );
    expect(snapshotsOf(g.vmid)).toEqual([]);
  });
});

describe('a lagging bulk read after the action', () => {
  it('does not flip the status back, nor report the change twice', async () => {
    h.sim.setTiming({ statusLagMs: 60_000 });
    try {
      const g = h.take('qemu', 'running');
      const row = await runOnce('stop', g, {}, { request: `POST ${base(g)}/status/stop`, status: 'stopped' });
      // /cluster/resources still says running (pvestatd has not caught up): the read-back outranks it.
      const listed = (await h.client.clusterResources('vm')).guests.find((r) => r.vmid === g.vmid);
      expect(listed).toMatchObject({ status: 'running' });
      await cycleAddsNothingFor(row);
      expect(h.guestStatus(g.vmid)).toBe('stopped');
      await cycleAddsNothingFor(row);
      expect(h.guestStatus(g.vmid)).toBe('stopped');
      expect(actionEventTypes(row).filter((t) => t === 'guest.status_changed')).toHaveLength(1);
    } finally {
      h.sim.setTiming({ statusLagMs: 0 });
    }
  });
});

describe('idempotent outcomes', () => {
  it('start on a running guest succeeds, saying Proxmox found nothing to do', async () => {
    const g = h.take('qemu', 'running');
    const row = await h.waitFinal((await h.submit('start', g.vmid)).action.id);
    expect(row.state).toBe('succeeded');
    expect(row.exitStatus).toBe(`VM ${g.vmid} already running`);
    expect(row.reason).toBe(
      `nothing to do: Proxmox says "VM ${g.vmid} already running" (the guest already was running)`,
    );
    expect(h.writesFor(g.vmid)).toHaveLength(1);
    expect(actionEventTypes(row)).toEqual(['action.queued', 'action.started', 'action.succeeded']);
  });

  it('shutdown of a stopped container succeeds with the reason', async () => {
    const g = h.take('lxc', 'stopped');
    const row = await h.waitFinal((await h.submit('shutdown', g.vmid)).action.id);
    expect(row).toMatchObject({ state: 'succeeded', exitStatus: `CT ${g.vmid} not running` });
    expect(row.reason).toMatch(/^nothing to do: Proxmox says "CT \d+ not running" \(the guest already was stopped\)$/);
  });
});

describe('preconditions, refused before any row or request', () => {
  function refusal(fn: () => Promise<unknown>): Promise<ActionRefused> {
    return fn().then(
      () => {
        throw new Error('expected a refusal');
      },
      (err: unknown) => {
        expect(err).toBeInstanceOf(ActionRefused);
        return err as ActionRefused;
      },
    );
  }
  const rows = () => (h.store.sqlite.prepare('SELECT count(*) AS n FROM actions').get() as { n: number }).n;

  it('an unknown vmid', async () => {
    const n = rows();
    const err = await refusal(() => h.submit('start', 99_999));
    expect(err.message).toBe('No guest 99999 in the inventory.');
    expect(err.hint).toMatch(/list_guests/);
    expect(rows()).toBe(n);
  });

  it('a template', async () => {
    const t = [...h.sim.cluster.guests.values()].find((g) => g.values.template === '1');
    expect(t, 'the seed has a template').toBeDefined();
    const err = await refusal(() => h.submit('start', t!.vmid));
    expect(err.message).toMatch(/is a template: Proxmox neither runs nor snapshots templates\.$/);
  });

  it('a locked guest', async () => {
    const g = h.take('qemu', 'stopped');
    h.sim.updateGuest(g.vmid, { lock: 'backup' });
    await h.sync.runCycle();
    try {
      const err = await refusal(() => h.submit('start', g.vmid));
      expect(err.message).toMatch(/is locked \(backup\) by a Proxmox operation\.$/);
      expect(err.hint).toMatch(/list_tasks/);
      // The `action` command prints the shell's hint: its user has no MCP tools.
      expect(err.shellHint).toBe(
        "Wait until that operation ends (the node's task list in Proxmox shows it), then ask again.",
      );
    } finally {
      h.sim.updateGuest(g.vmid, { lock: null });
      await h.sync.runCycle();
    }
  });

  it('a guest on a node that did not answer the last sync (stale)', async () => {
    const g = h.take('lxc', 'running', 'pve3');
    h.sim.setNodeOnline('pve3', false);
    await h.sync.runCycle();
    try {
      const err = await refusal(() => h.submit('stop', g.vmid));
      expect(err.message).toMatch(
        /^The inventory's view of guest \d+ \(.+\) is stale: its node pve3 did not answer\.$/,
      );
      expect(err.hint).toMatch(/sync_status/);
      expect(err.shellHint).toMatch(/`proxmox-inventory sync --once` says why the sync fails/);
      expect(err.shellHint).not.toMatch(/sync_status/);
    } finally {
      h.sim.setNodeOnline('pve3', true);
      await h.sync.runCycle();
    }
  });

  it('a snapshot name that exists, one that does not, vmstate on a container', async () => {
    const g = h.take('lxc', 'stopped');
    await runOnce('snapshot_create', g, { name: 'base' }, { request: `POST ${base(g)}/snapshot`, status: 'stopped' });
    const n = rows();
    expect((await refusal(() => h.submit('snapshot_create', g.vmid, { name: 'BASE' }))).message).toMatch(
      /already has a snapshot named "BASE"\.$/,
    );
    const missing = await refusal(() => h.submit('snapshot_rollback', g.vmid, { name: 'other' }));
    expect(missing.message).toMatch(/has no snapshot "other"\.$/);
    expect(missing.hint).toBe('Its snapshots: base.');
    expect((await refusal(() => h.submit('snapshot_delete', g.vmid, { name: 'other' }))).message).toMatch(
      /has no snapshot "other"\.$/,
    );
    expect((await refusal(() => h.submit('snapshot_create', g.vmid, { name: 'mem', vmstate: true }))).message).toMatch(
      /^vmstate applies to qemu VMs only; guest \d+ .*is a container\.$/,
    );
    expect(rows()).toBe(n);
    expect(h.writesFor(g.vmid)).toHaveLength(1);
  });
});

it('the worker canary comes through while jobs flow', async () => {
  await worker.reconcile();
  const deadline = Date.now() + 5_000;
  while (worker.canaryAt() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(worker.canaryAt()).toBeDefined();
  expect(worker.healthy()).toBe(true);
});
