/**
 * Only /cluster/resources and /cluster/status are essential to a cycle. Tasks, the cluster log and
 * the version are signals: one that fails is marked (sync_status signal problems), the cycle is
 * applied without it, and a sweep batch makes up for the edits it would have pointed at.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { syncStatus } from '../../src/store/queries.js';
import { clusterEntry, guest, memberEntry, node, startHandmade, type Handmade } from './handmade.js';

let h: Handmade;
afterEach(async () => {
  await h?.close();
});

const fail = (_req: unknown, res: ServerResponse): void => {
  res.writeHead(500, { 'content-type': 'application/json' });
  res.end('{"data":null,"message":"ipcc_send_rec[3] failed: Connection refused\\n"}');
};

async function setUp(): Promise<void> {
  // A sweep batch of one guest whenever one runs (sweepEveryMs/sweepPeriodMs × 4 guests).
  h = await startHandmade({ settings: { sweepEveryMs: 3_600_000, sweepPeriodMs: 4 * 3_600_000 } });
  h.status = [clusterEntry(1), memberEntry('pve1', 1), memberEntry('pve2', 2)];
  h.resources = [guest(100), guest(101), guest(102), guest(103), node('pve1'), node('pve2')];
  expect((await h.sync.runCycle()).ok).toBe(true);
}

describe('a failing signal endpoint', () => {
  for (const endpoint of ['/cluster/log', '/cluster/tasks']) {
    it(`GET ${endpoint} failing: the cycle applies changes, marks the signal, sweeps, and clears the mark when it answers again`, async () => {
      await setUp();
      h.answers.set(endpoint, fail);
      h.resources = [
        guest(100, { name: 'renamed' }),
        guest(101, { status: 'stopped' }),
        guest(102),
        guest(103),
        node('pve1'),
        node('pve2'),
      ];
      const cycle = await h.sync.runCycle();
      expect(cycle.ok).toBe(true);
      expect(cycle.changes).toEqual({ 'guest.updated': 1, 'guest.status_changed': 1 });
      expect(cycle.missingSignals).toEqual({
        [`GET ${endpoint}`]: expect.stringMatching(/ipcc_send_rec.*a sweep batch re-read configs/) as string,
      });
      expect(cycle.configsFetched).toBe(2); // the renamed guest's config, and one swept
      expect(h.count('SELECT count(*) AS n FROM guests WHERE stale = 1')).toEqual({ n: 0 });
      expect(syncStatus(h.store).clusters[0]!.signalProblems).toEqual({
        [`GET ${endpoint}`]: expect.any(String) as string,
      });
      expect(h.events('cluster.sync_failed')).toEqual([]);
      h.answers.delete(endpoint);
      expect((await h.sync.runCycle()).ok).toBe(true);
      expect(syncStatus(h.store).clusters[0]!.signalProblems).toEqual({});
    });
  }

  it('GET /cluster/resources failing still fails the cycle: it is the inventory', async () => {
    await setUp();
    h.answers.set('/cluster/resources', fail);
    const cycle = await h.sync.runCycle();
    expect(cycle.ok).toBe(false);
    expect(cycle.error).toMatch(/GET \/cluster\/resources/);
  });

  it('GET /cluster/status failing still fails the cycle', async () => {
    await setUp();
    h.answers.set('/cluster/status', fail);
    expect((await h.sync.runCycle()).ok).toBe(false);
  });

  it('a task that finishes while /cluster/tasks is down still signals its config read once the list is back', async () => {
    await setUp();
    const upid = 'UPID:pve1:00001234:00000000:6A000000:qmconfig:102:root@pam:';
    h.tasks = [{ upid, node: 'pve1', starttime: 1_780_000_000, type: 'qmconfig', id: '102', user: 'root@pam' }];
    await h.sync.runCycle(); // seen running
    h.answers.set('/cluster/tasks', fail);
    h.tasks = [
      {
        upid,
        node: 'pve1',
        starttime: 1_780_000_000,
        endtime: 1_780_000_002,
        type: 'qmconfig',
        id: '102',
        user: 'root@pam',
        status: 'OK',
      },
    ];
    await h.sync.runCycle(); // the list is down while it finishes
    h.answers.delete('/cluster/tasks');
    const before = h.requests.get('/nodes/pve1/qemu/102/config') ?? 0;
    const back = await h.sync.runCycle(); // no sweep is due now: only the task's signal reads a config
    expect(back.configsFetched).toBe(1);
    expect(h.requests.get('/nodes/pve1/qemu/102/config')).toBe(before + 1);
  });
});
