/**
 * Node status on a slow schedule: GET /nodes/{node}/status once per online node on the first sync
 * and then once a period (5 minutes by default), never for an offline node; the values stored are
 * the simulator's answer; the calls are counted in sync_runs under one endpoint name; a node that
 * does not answer keeps its last values, does not fail the cycle and is tried again a period later.
 * Real cycles against the simulator over HTTP, with a clock the test moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeStatus as simNodeStatus } from '../../src/sim/views.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { endpointOf } from '../../src/sync/counting-client.js';
import { parseNodeStatus } from '../../src/sync/node-status.js';
import { startHarness, type SyncHarness } from './helpers.js';

const STATUS = 'GET /nodes/{node}/status';
const MINUTE = 60_000;

describe('node status, read on a slow schedule', () => {
  let h: SyncHarness;
  let clock = Date.now();
  let sync: ClusterSync;
  const nodeRows = (): Array<Record<string, unknown>> =>
    h.store.sqlite.prepare('SELECT * FROM nodes ORDER BY node').all() as Array<Record<string, unknown>>;

  async function cycle(advanceMs: number): Promise<{ status: number; calls: Record<string, number> }> {
    clock += advanceMs;
    h.sim.resetCounters();
    const r = await sync.runCycle();
    expect(r.ok, r.error).toBe(true);
    const run = h.store.sqlite.prepare('SELECT calls FROM sync_runs ORDER BY id DESC LIMIT 1').pluck().get() as string;
    const calls = JSON.parse(run) as Record<string, number>;
    // The simulator's own count and the cycle's accounting agree.
    expect(calls[STATUS] ?? 0).toBe(h.sim.counters().byEndpoint[STATUS] ?? 0);
    return { status: calls[STATUS] ?? 0, calls };
  }

  beforeAll(async () => {
    h = await startHarness({ guests: 30, nodes: 4, seed: 3 });
    sync = createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
      now: () => clock,
    });
  });
  afterAll(() => h.close());

  it('the first sync reads every online node once and stores what it answers', async () => {
    expect((await cycle(0)).status).toBe(4);
    for (const row of nodeRows()) {
      const node = h.sim.cluster.nodes.find((n) => n.name === row.node)!;
      const answer = simNodeStatus(h.sim.cluster, node) as {
        loadavg: string[];
        'current-kernel': { release: string };
        ksm: { shared: number };
        swap: { total: number; used: number };
        cpuinfo: { model: string; sockets: number; cores: number };
      };
      expect(row).toMatchObject({
        kernel: answer['current-kernel'].release,
        pve_version: h.sim.cluster.options.pveVersion,
        swap_total_bytes: answer.swap.total,
        cpu_model: answer.cpuinfo.model,
        cpu_sockets: answer.cpuinfo.sockets,
        cpu_cores: answer.cpuinfo.cores,
        status_read_at: clock,
      });
      expect(row.ksm_shared_bytes).toEqual(expect.any(Number));
      expect(row.swap_used_bytes).toEqual(expect.any(Number));
      // The load average drifts every 10 s in the simulator: three numbers, not strings.
      for (const key of ['loadavg1', 'loadavg5', 'loadavg15']) expect(row[key]).toEqual(expect.any(Number));
    }
  });

  it('steady cycles within the period read no status; the next period reads each online node once', async () => {
    for (let i = 0; i < 19; i++) expect((await cycle(15_000)).status).toBe(0); // 4 min 45 s
    const before = nodeRows().map((r) => r.status_read_at);
    const next = await cycle(15_000); // 5 min
    expect(next.status).toBe(4);
    expect(next.calls).toMatchObject({ 'GET /cluster/resources': 1, [STATUS]: 4 });
    expect(nodeRows().every((r, i) => (r.status_read_at as number) > (before[i] as number))).toBe(true);
  });

  it('an offline node is not read and keeps its last values; it is read again once it is back', async () => {
    const last = nodeRows().find((r) => r.node === 'pve2')!;
    h.sim.setNodeOnline('pve2', false);
    expect((await cycle(5 * MINUTE)).status).toBe(3);
    expect(nodeRows().find((r) => r.node === 'pve2')).toMatchObject({
      online: 0,
      kernel: last.kernel,
      status_read_at: last.status_read_at,
    });
    h.sim.setNodeOnline('pve2', true);
    expect((await cycle(15_000)).status).toBe(1); // pve2's read is long overdue; the others are not due
  });

  it('a node that does not answer keeps its values, fails nothing, and is tried again a period later', async () => {
    const before = nodeRows();
    h.sim.setFaults({ errorRate: 1, errorStatus: 500, endpoint: STATUS });
    const failing = await cycle(5 * MINUTE);
    expect(failing.status).toBe(4);
    expect(nodeRows().map((r) => [r.node, r.status_read_at, r.kernel])).toEqual(
      before.map((r) => [r.node, r.status_read_at, r.kernel]),
    );
    h.sim.setFaults({});
    expect((await cycle(15_000)).status).toBe(0); // not hammered every cycle
    expect((await cycle(5 * MINUTE)).status).toBe(4);
  });

  it('a period of 0 turns the reads off', async () => {
    const off = createClusterSync({
      store: h.store,
      client: h.client,
      cluster: 'lab',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0, nodeStatusPeriodMs: 0 },
      log: h.log,
      now: () => clock,
    });
    clock += 60 * MINUTE;
    h.sim.resetCounters();
    expect((await off.runCycle()).ok).toBe(true);
    expect(h.sim.counters().byEndpoint[STATUS]).toBeUndefined();
  });
});

describe('parsing /nodes/{node}/status', () => {
  it('takes numbers sent as strings, the kernel from kversion on releases without current-kernel, and leaves the rest null', () => {
    expect(
      parseNodeStatus({
        loadavg: ['0.15', '0.30', 'x'],
        kversion: 'Linux 6.8.12-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z)',
        pveversion: 'pve-manager/8.3.0/c1689ccb1065a83b',
        ksm: { shared: '1073741824' },
        swap: { total: 8589934592 },
        cpuinfo: { model: 'Intel(R) Xeon(R)', sockets: 2, cores: '24' },
      }),
    ).toEqual({
      loadavg1: 0.15,
      loadavg5: 0.3,
      loadavg15: null,
      kernel: '6.8.12-4-pve',
      pveVersion: '8.3.0',
      ksmSharedBytes: 2 ** 30,
      swapTotalBytes: 2 ** 33,
      swapUsedBytes: null,
      cpuModel: 'Intel(R) Xeon(R)',
      cpuSockets: 2,
      cpuCores: 24,
    });
    expect(Object.values(parseNodeStatus('garbage')).every((v) => v === null)).toBe(true);
  });

  it('counts a raw call under its endpoint, whatever the node or guest', () => {
    expect(endpointOf('/nodes/pve-7/status')).toBe('/nodes/{node}/status');
    expect(endpointOf('/nodes/a/qemu/101/agent/network-get-interfaces')).toBe(
      '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces',
    );
    expect(endpointOf('/nodes/a/tasks/UPID:a:0000:0000:00000000:qmstart:101:root@pam:/status')).toBe(
      '/nodes/{node}/tasks/{upid}/status',
    );
    expect(endpointOf('/cluster/resources')).toBe('/cluster/resources');
  });
});
