/**
 * The node status fields (GET /nodes/{node}/status: load average, kernel, PVE version, KSM, swap,
 * CPU model) in list_nodes and get_node with when they were read, and the status calls counted in
 * sync_status, through the real SDK client against a store the sync filled from the simulator:
 * one node offline from the start (never read), the others read every cycle. Expectations come
 * from the simulator and from SQL of the test's own over the nodes and sync_runs rows.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

let h: SyncHarness;

const HOUR = 3_600_000;
const STATUS_CALL = 'GET /nodes/{node}/status';

async function connect(now: () => number): Promise<Client> {
  const server = createMcpServer({
    store: h.store,
    now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
  });
  const client = new Client({ name: 'nodes', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  await client.listTools();
  return client;
}

async function ok<T>(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ s: T; lines: string[] }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  expect(r.isError, `${name}: ${text}`).toBeFalsy();
  return { s: r.structuredContent as T, lines: text.split('\n').slice(0, -1) };
}

interface NodeRow {
  node: string;
  loadavg1: number | null;
  loadavg5: number | null;
  loadavg15: number | null;
  kernel: string | null;
  pve_version: string | null;
  ksm_shared_bytes: number | null;
  swap_total_bytes: number | null;
  swap_used_bytes: number | null;
  cpu_model: string | null;
  status_read_at: number | null;
}
const nodeRows = (): NodeRow[] =>
  h.store.sqlite.prepare("SELECT * FROM nodes WHERE cluster = 'lab' ORDER BY node").all() as NodeRow[];

beforeAll(async () => {
  // Every cycle reads the status of each online node (the default is every 5 minutes).
  h = await startHarness({ guests: 30, nodes: 3, seed: 41, settings: { nodeStatusPeriodMs: 1 } });
  h.sim.setNodeOnline('pve3', false);
  expect((await h.sync.runCycle()).ok).toBe(true);
  await new Promise((r) => setTimeout(r, 5));
  expect((await h.sync.runCycle()).ok).toBe(true);
}, 30_000);
afterAll(async () => {
  await h?.close();
});

describe('node status in list_nodes and get_node', () => {
  it('list_nodes shows each node status as read, and which node was never read', async () => {
    const client = await connect(Date.now);
    const { s, lines } = await ok<{ nodes: Array<Record<string, unknown>> }>(client, 'list_nodes');
    const rows = nodeRows();
    const pve = h.sim.cluster.options.pveVersion;
    for (const row of rows) {
      const node = s.nodes.find((n) => n.node === row.node)!;
      const read = row.status_read_at !== null;
      expect(read, row.node).toBe(row.node !== 'pve3');
      expect(node, row.node).toMatchObject({
        loadavg: read ? [row.loadavg1, row.loadavg5, row.loadavg15] : null,
        kernel: read ? '6.14.8-2-pve' : null,
        pveVersion: read ? pve : null,
        ksmSharedBytes: read ? 0 : null,
        swapTotalBytes: read ? 8 * 2 ** 30 : null,
        swapUsedBytes: read ? 0 : null,
        cpuModel: read ? 'AMD EPYC 7543P 32-Core Processor' : null,
        statusReadAt: read ? new Date(row.status_read_at!).toISOString() : null,
      });
    }
    expect(lines[0]).toMatch(/ running load swap ksm pve kernel$/);
    const pve1 = rows.find((r) => r.node === 'pve1')!;
    const load = [pve1.loadavg1, pve1.loadavg5, pve1.loadavg15].map((v) => v!.toFixed(2)).join(',');
    expect(lines[1]).toMatch(
      new RegExp(`^pve1 online .* ${load} 0B/8G 0B ${pve.replace(/\./g, '\\.')} 6\\.14\\.8-2-pve$`),
    );
    expect(lines[3]).toMatch(/^pve3 offline.* - - - - -$/);
    const times = rows.flatMap((r) => (r.status_read_at === null ? [] : [r.status_read_at])).sort();
    const seen = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const range =
      seen(times[0]!) === seen(times.at(-1)!) ? seen(times[0]!) : `${seen(times[0]!)} to ${seen(times.at(-1)!)}`;
    expect(lines[4]).toBe(
      `load (1,5,15 min), swap, ksm, pve, kernel: GET /nodes/{node}/status, read ${range}; 1 node not read yet (-)`,
    );
    await client.close();
  });

  it('get_node says the status, its time and the CPU model, or that it was never read', async () => {
    const client = await connect(Date.now);
    const pve2 = nodeRows().find((r) => r.node === 'pve2')!;
    const { s, lines } = await ok<{ node: Record<string, unknown> }>(client, 'get_node', { node: 'pve2' });
    expect(s.node).toMatchObject({
      cpuModel: 'AMD EPYC 7543P 32-Core Processor',
      cpuSockets: 2,
      statusReadAt: new Date(pve2.status_read_at!).toISOString(),
    });
    expect(lines).toContain(
      `status read ${new Date(pve2.status_read_at!).toISOString().replace(/\.\d{3}Z$/, 'Z')}: load ${[pve2.loadavg1, pve2.loadavg5, pve2.loadavg15].map((v) => v!.toFixed(2)).join(',')} (1,5,15 min); swap 0B/8G; ksm 0B; pve ${h.sim.cluster.options.pveVersion}; kernel 6.14.8-2-pve; cpu "AMD EPYC 7543P 32-Core Processor" (2 sockets, ${s.node.cpuCores as number} cores)`,
    );
    const never = await ok<{ node: Record<string, unknown> }>(client, 'get_node', { node: 'pve3' });
    expect(never.lines).toContain('status (load, swap, KSM, versions): not read yet');
    expect(never.s.node).toMatchObject({ loadavg: null, statusReadAt: null });
    await client.close();
  });
});

describe('sync_status counts the node status calls', () => {
  const statusCalls = (since: number): number =>
    (
      h.store.sqlite
        .prepare("SELECT calls, started_at AS startedAt FROM sync_runs WHERE cluster = 'lab'")
        .all() as Array<{ calls: string; startedAt: number }>
    )
      .filter((r) => r.startedAt >= since)
      .reduce((n, r) => n + ((JSON.parse(r.calls) as Record<string, number>)[STATUS_CALL] ?? 0), 0);

  it('counts the calls of the last hour, and the nodes read', async () => {
    const now = Date.now();
    const client = await connect(() => now);
    const { s, lines } = await ok<{ clusters: Array<{ cluster: string; nodeStatus: Record<string, unknown> }> }>(
      client,
      'sync_status',
    );
    // Two cycles, each reading the two online nodes.
    expect(statusCalls(now - HOUR)).toBe(4);
    expect(s.clusters[0]!.nodeStatus).toEqual({
      callsLastHour: 4,
      nodesRead: 2,
      lastReadAt: new Date(Math.max(...nodeRows().map((r) => r.status_read_at ?? 0))).toISOString(),
    });
    expect(lines[0]).toMatch(/ calls node_status_calls_1h duration /);
    expect(lines[1]!.split(' ')[5]).toBe('4');
    await client.close();
    // Two hours on, those calls are older than an hour.
    const later = await connect(() => now + 2 * HOUR);
    const after = await ok<{ clusters: Array<{ nodeStatus: { callsLastHour: number } }> }>(later, 'sync_status');
    expect(after.s.clusters[0]!.nodeStatus.callsLastHour).toBe(0);
    await later.close();
  });
});
