/**
 * Which configs a cycle reads (planConfigFetches, logSignals) at their boundaries: the budget,
 * the order the budget is spent in, a task seen running and then finished, and the cluster log's
 * gap rule. Pure functions, so each boundary is exact.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterLogEntry, GuestResource, Task } from '../../src/proxmox/types.js';
import type { GuestRow } from '../../src/store/sync-state.js';
import { logSignals, planConfigFetches, type PlanInput } from '../../src/sync/plan.js';

const resource = (vmid: number, extra: Partial<GuestResource> = {}): GuestResource =>
  ({
    id: `qemu/${vmid}`,
    type: 'qemu',
    vmid,
    node: 'pve1',
    status: 'running',
    name: `vm${vmid}`,
    tags: [],
    template: false,
    maxmem: 2 ** 30,
    maxcpu: 1,
    maxdisk: 2 ** 33,
    ...extra,
  }) as GuestResource;

const row = (vmid: number, extra: Partial<GuestRow> = {}): GuestRow => ({
  cluster: 'c',
  vmid,
  type: 'qemu',
  node: 'pve1',
  status: 'running',
  name: `vm${vmid}`,
  tags: '[]',
  template: false,
  maxmem: 2 ** 30,
  maxcpu: 1,
  maxdisk: 2 ** 33,
  configFetchedAt: 1,
  configDirty: false,
  missingCount: 0,
  deletedAt: null,
  lastSeenAt: 1,
  firstSeenAt: 1,
  updatedAt: 1,
  ...extra,
});

const task = (vmid: number, upid: string, endtime?: number, type = 'qmsnapshot'): Task =>
  ({
    upid,
    node: 'pve1',
    starttime: 100,
    type,
    id: String(vmid),
    user: 'root@pam',
    ...(endtime === undefined ? {} : { endtime, status: 'OK' }),
  }) as Task;

function input(over: Partial<PlanInput>): PlanInput {
  const vmids = [100, 101, 102, 103, 104, 105];
  return {
    resources: vmids.map((v) => resource(v)),
    prev: new Map(vmids.map((v) => [v, row(v)])),
    onlineNodes: new Set(['pve1']),
    tasks: [],
    knownTasks: new Map(),
    logVmids: new Set(),
    sweepDue: false,
    sweepBatch: 0,
    budget: Infinity,
    ...over,
  };
}

describe('planConfigFetches', () => {
  it('reads exactly `budget` configs and defers the rest to the next cycle', () => {
    const logVmids = new Set([100, 101, 102, 103]);
    const atBudget = planConfigFetches(input({ logVmids, budget: 4 }));
    expect(atBudget.fetch.map((f) => f.resource.vmid)).toEqual([100, 101, 102, 103]);
    expect(atBudget.deferred).toEqual(new Set());
    const overBudget = planConfigFetches(input({ logVmids, budget: 3 }));
    expect(overBudget.fetch.map((f) => f.resource.vmid)).toEqual([100, 101, 102]);
    expect(overBudget.deferred).toEqual(new Set([103]));
  });

  it('spends the budget on signalled guests before reads that keep failing, and sweeps last', () => {
    const prev = new Map([100, 101, 102, 103, 104, 105].map((v) => [v, row(v, { configDirty: v <= 102 })]));
    const plan = planConfigFetches(
      input({
        prev,
        logVmids: new Set([104]),
        tasks: [task(105, 'UPID:a', 200, 'qmconfig')],
        sweepDue: true,
        sweepBatch: 1,
        budget: 3,
      }),
    );
    expect(plan.fetch.map((f) => [f.resource.vmid, f.reason])).toEqual([
      [105, 'task'],
      [104, 'log'],
      [100, 'retry'],
    ]);
    expect(plan.deferred).toEqual(new Set([101, 102])); // retries wait; the sweep simply does not happen
  });

  it('reads the config when a task seen running has finished since', () => {
    const running = planConfigFetches(input({ tasks: [task(101, 'UPID:r')] }));
    expect(running.fetch).toEqual([]);
    const finished = planConfigFetches(
      input({ tasks: [task(101, 'UPID:r', 200)], knownTasks: new Map([['UPID:r', 'running']]) }),
    );
    expect(finished.fetch.map((f) => [f.resource.vmid, f.reason])).toEqual([[101, 'task']]);
    const alreadyKnown = planConfigFetches(
      input({ tasks: [task(101, 'UPID:r', 200)], knownTasks: new Map([['UPID:r', 'ok']]) }),
    );
    expect(alreadyKnown.fetch).toEqual([]);
  });

  it('never reads on an offline node: a signalled guest there is deferred', () => {
    const plan = planConfigFetches(input({ resources: [resource(100, { node: 'pve2' })], logVmids: new Set([100]) }));
    expect(plan.fetch).toEqual([]);
    expect(plan.deferred).toEqual(new Set([100]));
  });
});

describe('logSignals gap rule', () => {
  const line = (uid: number): ClusterLogEntry => ({ uid, time: 2_000_000_000, node: 'pve1', msg: 'x' });
  it('the next uid after the cursor is no gap; one more missing is', () => {
    expect(logSignals([line(11), line(12)], { pve1: 10 }, 0).gap).toBe(false);
    expect(logSignals([line(12), line(13)], { pve1: 10 }, 0).gap).toBe(true);
    expect(logSignals([line(10), line(11)], { pve1: 10 }, 0).gap).toBe(false);
  });
});
