/**
 * `serve` SIGKILLed while an action's task runs, with the embedded redis-server (REDIS_URL unset):
 * the next `serve` stops the Redis the dead one left, starts its own on the same AOF, and the
 * reconciler takes back at once the job the dead one held (not after BullMQ's stalled check, up to
 * a minute later) and resumes the action on its UPID. Proxmox gets one POST, the action ends succeeded, and
 * the inventory shows the new status. The action is asked for with the `action` command beside the
 * running daemon, as an operator would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAction } from '../../src/store/actions.js';
import { startServeHarness, until, type ServeHarness } from '../webhooks/serve-harness.js';

let h: ServeHarness;

beforeAll(async () => {
  h = await startServeHarness([{ name: 'lab', nodes: 2, guests: 12, seed: 17 }], { ACTIONS: 'power' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const guestStatus = (vmid: number): string | undefined =>
  h.store.sqlite.prepare("SELECT status FROM guests WHERE cluster = 'lab' AND vmid = ?").pluck().get(vmid) as
    string | undefined;

describe('serve SIGKILLed mid-task', () => {
  it('the next serve resumes the action on its UPID: one POST, succeeded, the new status shown', async () => {
    const first = await h.serve();
    const sim = h.sims.lab!;
    const g = [...sim.cluster.guests.values()].find(
      (x) => x.status === 'stopped' && x.type === 'qemu' && !x.values.lock && x.values.template !== '1' && !x.ha,
    )!;
    await until('the first sync to hold the guest', () => guestStatus(g.vmid) === 'stopped');
    sim.setTaskFaults({ hang: { vmid: g.vmid } });

    const asked = await h.cli(['action', 'start', String(g.vmid)]);
    expect(asked.code, asked.stderr).toBe(0);
    const id = /act_\w+/.exec(asked.stdout)![0];
    const upid = await until('the UPID stored', () => getAction(h.store, id)?.upid, 30_000);

    await first.kill('SIGKILL');
    sim.setTaskFaults({}); // the task Proxmox was running finishes while no daemon watches
    await sleep(500);
    expect(getAction(h.store, id)).toMatchObject({ state: 'running', upid });

    const second = await h.serve();
    const row = await until(
      'the action final',
      () => {
        const r = getAction(h.store, id);
        return r && ['succeeded', 'failed', 'expired', 'cancelled'].includes(r.state) ? r : undefined;
      },
      20_000, // BullMQ's stalled check alone would take up to two lock periods (60 s) after the start
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; row ${JSON.stringify(getAction(h.store, id))}; serve said:\n${second.log().slice(-4000)}`,
      );
    });
    expect(row).toMatchObject({ state: 'succeeded', upid });
    const starts = sim.writes().filter((w) => w.path.endsWith(`/qemu/${g.vmid}/status/start`));
    expect(starts).toHaveLength(1);
    await until('the store to show it running', () => guestStatus(g.vmid) === 'running', 10_000);
    expect(second.log()).toMatch(/redis-server left running by an earlier serve/);
    await second.kill('SIGTERM');
  }, 120_000);
});
