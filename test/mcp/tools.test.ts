/**
 * The read tools through the real SDK client over an in-memory transport, against a store synced
 * from two simulated clusters: `lab` (changes between cycles, two inventory snapshots, a node taken
 * offline) and `edge` (its last sync failed, so it is stale). Every expectation is computed from
 * what the simulator holds or from the raw rows, not from the query layer under test. The client
 * has listed the tools, so it checks each structuredContent against its outputSchema.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { bytes } from '../../src/mcp/render.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { readTime } from '../../src/mcp/time.js';
import { allTools } from '../../src/mcp/tools/index.js';
import { signedBytes } from '../../src/mcp/tools/shared.js';
import type { SimGuest } from '../../src/sim/state.js';
import { takeSnapshot, type SnapshotInfo } from '../../src/store/snapshots.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS, type ClusterSync } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

const GiB = 2 ** 30;
const isTemplate = (g: SimGuest): boolean => g.values.template === '1';

let h: SyncHarness;
let e: SyncHarness;
let edge: ClusterSync;
let client: Client;
let snapA: SnapshotInfo;
let snapB: SnapshotInfo;
let seq0: number;
let seq1: number;
const changed = { stopped: 0, renamed: 0, created: 0, oldName: '' };

type Structured = Record<string, unknown> & {
  freshness: { asOf: string | null; staleClusters: string[]; staleNodes: Array<{ cluster: string; node: string }> };
};
const call = async (
  name: string,
  args: Record<string, unknown> = {},
): Promise<CallToolResult & { structuredContent: Structured }> =>
  (await client.callTool({ name, arguments: args })) as CallToolResult & { structuredContent: Structured };
const textOf = (r: CallToolResult): string => (r.content[0] as { text: string }).text;
/**
 * A result that must be a success: its structured content (typed loosely for the test), its text,
 * and the text's lines without the freshness line every answer ends with.
 */
async function ok<T>(
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ s: T & Structured; text: string; lines: string[] }> {
  const r = await call(name, args);
  const text = textOf(r);
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${text}`).toBeFalsy();
  const lines = text.split('\n');
  expect(lines.at(-1)).toMatch(/^as of \d{4}-.*; stale: cluster edge, node lab\/pve3$/);
  return { s: r.structuredContent as T & Structured, text, lines: lines.slice(0, -1) };
}
async function miss(name: string, args: Record<string, unknown>): Promise<string> {
  const r = await call(name, args);
  expect(r.isError, `${name} ${JSON.stringify(args)} should miss`).toBe(true);
  expect(r.structuredContent).toBeUndefined();
  return textOf(r);
}

const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];
const labGuests = (): SimGuest[] => [...h.sim.cluster.guests.values()];
const edgeGuests = (): SimGuest[] => [...e.sim.cluster.guests.values()];

/**
 * Where the last read saw guests live: not on lab/pve3 (offline) nor in edge (its read failed).
 * Elsewhere a guest's status is unknown now, and it never counts as running.
 */
const reachable = (cluster: string, node: string): boolean => cluster === 'lab' && node !== 'pve3';

interface NodeExpect {
  cluster: string;
  node: string;
  maxcpu: number;
  maxmem: number;
  vcpus: number;
  mem: number;
  runningVcpus: number;
  runningMem: number;
  guests: number;
  running: number;
  unknown: number;
}
function expectedNodes(): NodeExpect[] {
  const out: NodeExpect[] = [];
  for (const [cluster, hh] of [
    ['lab', h],
    ['edge', e],
  ] as const) {
    for (const n of hh.sim.cluster.nodes) {
      const on = [...hh.sim.cluster.guests.values()].filter((g) => g.node === n.name);
      const live = reachable(cluster, n.name);
      const alloc = on.filter((g) => !isTemplate(g));
      const run = alloc.filter((g) => live && g.status === 'running');
      const sum = (list: SimGuest[], f: (g: SimGuest) => number): number => list.reduce((a, g) => a + f(g), 0);
      out.push({
        cluster,
        node: n.name,
        maxcpu: n.maxcpu,
        maxmem: n.maxmem,
        guests: on.length,
        running: live ? on.filter((g) => g.status === 'running').length : 0,
        unknown: live ? 0 : on.length,
        vcpus: sum(alloc, (g) => hh.sim.cluster.maxcpu(g)),
        mem: sum(alloc, (g) => hh.sim.cluster.maxmem(g)),
        runningVcpus: sum(run, (g) => hh.sim.cluster.maxcpu(g)),
        runningMem: sum(run, (g) => hh.sim.cluster.maxmem(g)),
      });
    }
  }
  return out;
}

beforeAll(async () => {
  h = await startHarness({ guests: 300, nodes: 4, seed: 11 });
  e = await startHarness({ guests: 30, nodes: 2, seed: 5 });
  // The second cluster writes into the first harness's store, as a daemon with two clusters does.
  edge = createClusterSync({
    store: h.store,
    client: e.client,
    cluster: 'edge',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log: h.log,
  });
  const plain = labGuests().filter((g) => !isTemplate(g) && !g.values.lock);
  h.sim.updateGuest(plain.find((g) => g.status === 'stopped')!.vmid, { lock: 'backup', silent: true });
  expect((await h.sync.runCycle()).ok).toBe(true);
  expect((await edge.runCycle()).ok).toBe(true);
  snapA = takeSnapshot(h.store, { label: 'before' });
  seq0 = h.lastSeq();

  const stopped = plain.find((g) => g.type === 'qemu' && g.status === 'running' && g.node === 'pve1')!;
  const renamed = plain.find((g) => g.type === 'qemu' && g.status === 'running' && g.vmid !== stopped.vmid)!;
  changed.stopped = stopped.vmid;
  changed.renamed = renamed.vmid;
  changed.oldName = h.sim.cluster.name(renamed);
  h.sim.updateGuest(stopped.vmid, { status: 'stopped' });
  h.sim.updateGuest(renamed.vmid, { name: 'renamed-by-test', config: { cores: '7' } });
  changed.created = h.sim.createGuest({
    name: 'fresh-vm',
    node: 'pve2',
    status: 'running',
    cores: 2,
    memoryMiB: 4096,
    storage: 'ceph-vm',
  });
  h.sim.cluster.startTask(
    'pve2',
    'vzdump',
    renamed.vmid,
    'root@pam',
    () => ({ error: 'job failed: storage "nfs-backup" is full' }),
    0,
  );
  expect((await h.sync.runCycle()).ok).toBe(true);
  seq1 = h.lastSeq();
  snapB = takeSnapshot(h.store, { label: 'after' });

  h.sim.setNodeOnline('pve3', false);
  expect((await h.sync.runCycle()).ok).toBe(true);
  e.sim.setFaults({ errorRate: 1, errorStatus: 503 });
  expect((await edge.runCycle()).ok).toBe(false);

  const server = createMcpServer({
    store: h.store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
  });
  client = new Client({ name: 'tools-test', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  await client.listTools(); // the client caches the output schemas and validates every answer against them
}, 30_000);

afterAll(async () => {
  await client?.close();
  await e?.close();
  await h?.close();
});

describe('tools/list', () => {
  it('lists every tool with object roots and its read-only annotations', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(allTools.map((t) => t.name));
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe('object');
      // Strict clients (OpenAI's API, VS Code) refuse a root schema without `properties`, even an empty one.
      expect(tool.inputSchema.properties).toEqual(expect.any(Object));
      expect(tool.outputSchema?.properties).toEqual(expect.any(Object));
      expect(tool.inputSchema).not.toHaveProperty('anyOf');
      expect(tool.inputSchema.additionalProperties).toBe(false);
      expect(tool.outputSchema?.type).toBe('object');
      // destructiveHint and idempotentHint mean something only when readOnlyHint is false (MCP spec).
      expect(tool.annotations).toEqual({ readOnlyHint: true, openWorldHint: false });
    }
  });
});

describe('inventory_overview', () => {
  it('counts, per-node allocation, top consumers and problems match the clusters', async () => {
    const { s, text, lines } = await ok<{
      clusters: Array<{ cluster: string; stale: boolean; quorate: boolean }>;
      guests: { total: number; templates: number; byType: Record<string, number>; byStatus: Record<string, number> };
      nodes: Array<{
        cluster: string;
        node: string;
        allocatedVcpus: number;
        allocatedMemoryBytes: number;
        maxcpu: number;
        maxmem: number;
        guests: { total: number; running: number };
      }>;
      top: {
        memory: Array<{ cluster: string; vmid: number; value: number }>;
        cpu: Array<{ vmid: number; value: number }>;
      };
      problems: {
        staleClusters: string[];
        staleNodes: string[];
        failedSyncs: Array<{ cluster: string; failures: number }>;
        fullStorage: Array<{ storage: string; usedFraction: number }>;
        locked: { total: number };
      };
    }>('inventory_overview');
    const all = [
      ...labGuests().map((g) => ({ cluster: 'lab', g })),
      ...edgeGuests().map((g) => ({ cluster: 'edge', g })),
    ];
    const tally = (list: typeof all, f: (g: SimGuest) => string): Record<string, number> =>
      list.reduce<Record<string, number>>((acc, { g }) => ({ ...acc, [f(g)]: (acc[f(g)] ?? 0) + 1 }), {});
    const live = all.filter(({ cluster, g }) => reachable(cluster, g.node));
    const stale = all.filter(({ cluster, g }) => !reachable(cluster, g.node));
    expect(s.clusters.map((c) => [c.cluster, c.stale])).toEqual([
      ['edge', true],
      ['lab', false],
    ]);
    expect(s.guests).toEqual({
      total: all.length,
      templates: all.filter(({ g }) => isTemplate(g)).length,
      byType: tally(all, (g) => g.type),
      byStatus: { ...tally(live, (g) => g.status), unknown: stale.length },
      unknown: {
        total: stale.length,
        lastKnown: tally(stale, (g) => g.status),
        onUnreachableNodes: stale.length,
        unreachableNodes: ['edge/pve1', 'edge/pve2', 'lab/pve3'],
        missingFromLastRead: 0,
      },
    });
    const nodes = expectedNodes();
    expect(
      s.nodes.map((n) => ({
        cluster: n.cluster,
        node: n.node,
        vcpus: n.allocatedVcpus,
        mem: n.allocatedMemoryBytes,
        maxcpu: n.maxcpu,
        maxmem: n.maxmem,
        guests: n.guests.total,
        running: n.guests.running,
      })),
    ).toEqual(
      nodes
        .sort((a, b) => a.cluster.localeCompare(b.cluster) || a.node.localeCompare(b.node))
        .map((n) => ({
          cluster: n.cluster,
          node: n.node,
          vcpus: n.vcpus,
          mem: n.mem,
          maxcpu: n.maxcpu,
          maxmem: n.maxmem,
          guests: n.guests,
          running: n.running,
        })),
    );

    // Guests of status unknown (stale) use nothing that is known now: never among the top consumers.
    const top = sql<{
      cluster: string;
      vmid: number;
      mem: number;
    }>(`SELECT g.cluster, g.vmid, m.mem FROM guests g JOIN guest_metrics m USING (cluster, vmid)
      WHERE g.status = 'running' AND g.stale = 0 AND g.deleted_at IS NULL AND m.mem IS NOT NULL ORDER BY m.mem DESC, g.cluster, g.vmid LIMIT 5`);
    expect(s.top.memory.map((t) => [t.cluster, t.vmid, t.value])).toEqual(top.map((t) => [t.cluster, t.vmid, t.mem]));
    const topCpu = sql<{ cpu: number }>(
      `SELECT m.cpu FROM guests g JOIN guest_metrics m USING (cluster, vmid) WHERE g.status = 'running' AND g.stale = 0 AND g.deleted_at IS NULL AND m.cpu IS NOT NULL ORDER BY m.cpu DESC LIMIT 5`,
    );
    expect(s.top.cpu.map((t) => t.value)).toEqual(topCpu.map((t) => t.cpu));

    expect(s.problems.staleClusters).toEqual(['edge']);
    expect(s.problems.staleNodes).toEqual(['edge/pve1', 'edge/pve2', 'lab/pve3']);
    expect(s.problems.failedSyncs).toEqual([{ cluster: 'edge', failures: 1, error: expect.stringMatching(/503/) }]);
    const full = h.sim.cluster.storages.filter((st) => st.shared && st.storage === 'ceph-vm');
    expect(s.problems.fullStorage.map((f) => f.storage)).toEqual(expect.arrayContaining(full.map((f) => f.storage)));
    expect(s.problems.fullStorage.every((f) => f.usedFraction > 0.85)).toBe(true);
    expect(s.problems.locked.total).toBe(all.filter(({ g }) => g.values.lock).length);

    expect(lines.length).toBeLessThan(30);
    expect(lines[0]).toMatch(/^cluster edge: pve 9\.1\.1, quorate, STALE, last sync \d{4}-/);
    expect(text).toContain('- sync of edge failing (1x): ');
    expect(text).toContain('- stale nodes: edge/pve1, edge/pve2, lab/pve3');
    expect(lines[2]).toMatch(
      new RegExp(
        `^guests ${all.length} \\(.*; running ${live.filter(({ g }) => g.status === 'running').length}, .*\\); ${stale.length} on unreachable nodes edge/pve1, edge/pve2, lab/pve3 \\(last known: `,
      ),
    );
    expect(text).toMatch(/- storage ceph-vm \(lab\) 8\d% used/);
    expect(text).not.toMatch(/[\u{1F300}-\u{1FAFF}]/u);
  });

  it('one cluster; an unknown cluster is a miss naming the known ones', async () => {
    const { s } = await ok<{ guests: { total: number }; nodes: unknown[] }>('inventory_overview', { cluster: 'lab' });
    expect(s.guests.total).toBe(labGuests().length);
    expect(s.nodes).toHaveLength(4);
    expect(await miss('inventory_overview', { cluster: 'prod' })).toBe('No cluster "prod". Known clusters: edge, lab.');
  });
});

describe('list_guests', () => {
  // A cursor from one filter, reused with another, started at its place in the other listing and
  // silently left guests out; from the other page path it was called malformed.
  it('a cursor is for the filters and sort it was made with: other ones and edited ones are refused, the same ones go on', async () => {
    type Page = { guests: Array<{ vmid: number; cluster: string }>; nextCursor?: string };
    for (const filter of [{ tag: 'prod' }, { cluster: 'lab' }]) {
      const first = await ok<Page>('list_guests', { ...filter, limit: 2, fields: ['cluster', 'vmid'] });
      const cursor = first.s.nextCursor!;
      expect(cursor).toMatch(/^[\w-]{6}\./);
      const next = await ok<Page>('list_guests', { ...filter, limit: 2, fields: ['cluster', 'vmid'], cursor });
      const all = await ok<Page>('list_guests', { ...filter, limit: 4, fields: ['cluster', 'vmid'] });
      expect([...first.s.guests, ...next.s.guests]).toEqual(all.s.guests);
      for (const other of [{ tag: 'dev' }, {}, { ...filter, sort: 'name' }, { ...filter, order: 'desc' }])
        expect(await miss('list_guests', { ...other, cursor })).toMatch(
          /^The cursor was made for other filters, sort or order, or was changed\. Pass nextCursor from the previous page unchanged with the same filters, sort and order, or omit cursor to start again\./,
        );
      // A position edited by hand (past the end, it answered "no guest matches") is refused too.
      const [digest, position] = [cursor.slice(0, 6), cursor.slice(7)];
      const edited = `${digest}.${position.replace(/\d+/, '99999999')}`;
      expect(await miss('list_guests', { ...filter, limit: 2, cursor: edited })).toMatch(/or was changed\./);
    }
    expect(await miss('list_guests', { cursor: '104:lab' })).toMatch(/^The cursor is malformed\. /);
  });

  it('lean columns by default plus the sort key, fields on request, filter values said once', async () => {
    type Page = { guests: Array<Record<string, unknown>>; total: number };
    const { s, lines } = await ok<Page>('list_guests', { cluster: 'lab', sort: 'maxmem', order: 'desc', limit: 3 });
    // The generator's largest size is shared by more guests than the page holds: the cut says how many more.
    const biggest = sql<{ n: number }>(
      "SELECT count(*) AS n FROM guests WHERE cluster = 'lab' AND deleted_at IS NULL AND maxmem = ?",
      16 * GiB,
    )[0]!.n;
    expect(biggest).toBeGreaterThan(3);
    expect(lines[0]).toMatch(
      new RegExp(
        `^3 of \\d+ guests with cluster=lab; the page ends inside a run: ${biggest - 3} more guests also have maxmem 16G; next page: cursor=[\\w-]{6}\\.maxmem:desc:\\d+:lab:\\d+$`,
      ),
    );
    expect(lines[1]).toBe('vmid name type node status maxmem');
    const sim = h.sim.cluster;
    expect(s.guests[0]!.maxmem).toBe(Math.max(...[...sim.guests.values()].map((g) => sim.maxmem(g))));
    expect(s.guests[0]!.maxmem).toBe(16 * GiB); // the generator's largest size; the text says it in G
    expect(lines[2]!.split(' ').at(-1)).toBe('16G');
    const wide = await ok<Page>('list_guests', { cluster: 'lab', limit: 2, fields: ['vmid', 'tags', 'memoryMib'] });
    expect(wide.lines[1]).toBe('vmid tags memoryMib');
    expect(Object.keys(wide.s.guests[0]!)).toEqual(['vmid', 'tags', 'memoryMib']);
  });
});

describe('list_nodes and get_node', () => {
  it('list_nodes: physical vs allocated, running-only, overcommit, and a line per node showing the ratio', async () => {
    const { s, lines } = await ok<{
      nodes: Array<{
        node: string;
        online: boolean;
        stale: boolean;
        allocatedVcpus: number;
        allocatedMemoryBytes: number;
        runningVcpus: number;
        runningMemoryBytes: number;
        memoryOvercommit: number;
      }>;
    }>('list_nodes', { cluster: 'lab' });
    const want = expectedNodes().filter((n) => n.cluster === 'lab');
    expect(
      s.nodes.map((n) => [
        n.node,
        n.allocatedVcpus,
        n.allocatedMemoryBytes,
        n.runningVcpus,
        n.runningMemoryBytes,
        n.memoryOvercommit,
      ]),
    ).toEqual(
      want.map((n) => [
        n.node,
        n.vcpus,
        n.mem,
        n.runningVcpus,
        n.runningMem,
        Math.round((n.mem / n.maxmem) * 1000) / 1000,
      ]),
    );
    expect(s.nodes.find((n) => n.node === 'pve3')).toMatchObject({ online: false, stale: true });
    expect(lines).toHaveLength(6);
    const pve1 = want.find((n) => n.node === 'pve1')!;
    const r3 = (x: number): string => (Math.round(x * 1000) / 1000).toFixed(2);
    // Seed 11 gives pve1 (one of the fuller nodes) 270.5 GiB allocated of 240 GiB: the memory cell
    // is written out, rounding included.
    expect([pve1.mem / GiB, pve1.maxmem / GiB]).toEqual([270.5, 240]);
    expect(lines[0]).toBe(
      'node status cpu vcpu_alloc/cpus vcpu_run/cpus mem_alloc/phys mem_run/phys mem_used guests running load swap ksm pve kernel',
    );
    // Running-only overcommit beside the allocation: what the node carries now, not only what it promised.
    // (The node status columns after them are checked in reach-nodes.test.ts.)
    expect(lines[1]!.split(' ').slice(0, 10).join(' ')).toBe(
      `pve1 online ${lines[1]!.split(' ')[2]} ${pve1.vcpus}/${pve1.maxcpu}=${r3(pve1.vcpus / pve1.maxcpu)}x ${pve1.runningVcpus}/${pve1.maxcpu}=${r3(pve1.runningVcpus / pve1.maxcpu)}x 271G/240G=1.13x ${bytes(pve1.runningMem)}/240G=${r3(pve1.runningMem / pve1.maxmem)}x ${lines[1]!.split(' ')[7]} ${pve1.guests} ${pve1.running}`,
    );
    expect(lines[5]).toMatch(/^load \(1,5,15 min\), swap, ksm, pve, kernel: GET \/nodes\/\{node\}\/status, read /);
    expect(lines[3]).toMatch(/^pve3 offline,STALE /);
    expect((await ok<{ nodes: unknown[] }>('list_nodes')).s.nodes).toHaveLength(6);
    expect(await miss('list_nodes', { cluster: 'nope' })).toContain('Known clusters: edge, lab.');
  });

  it('get_node: a name in two clusters is ambiguous, the cluster settles it, and the node lists its storage', async () => {
    expect(await miss('get_node', { node: 'pve1' })).toBe(
      'Node "pve1" exists in several clusters. Ask again with "cluster": one of edge, lab.',
    );
    const { s, text, lines } = await ok<{
      node: {
        cluster: string;
        node: string;
        allocatedVcpus: number;
        storage: Array<{ storage: string; shared: boolean; nodes: string[] }>;
      };
    }>('get_node', { node: 'pve2', cluster: 'lab' });
    const want = expectedNodes().find((n) => n.cluster === 'lab' && n.node === 'pve2')!;
    expect(s.node).toMatchObject({
      cluster: 'lab',
      node: 'pve2',
      allocatedVcpus: want.vcpus,
      allocatedMemoryBytes: want.mem,
      maxmem: want.maxmem,
    });
    expect(s.node.storage.map((st) => st.storage).sort()).toEqual(
      h.sim.cluster.storages
        .filter((st) => st.nodes.includes('pve2'))
        .map((st) => st.storage)
        .sort(),
    );
    expect(s.node.storage.find((st) => st.storage === 'ceph-vm')).toMatchObject({
      shared: true,
      nodes: ['pve1', 'pve2', 'pve3', 'pve4'],
    });
    expect(lines[0]).toMatch(/^lab\/pve2: online; ip 192\.0\.2\.12; uptime \d+d\d\dh$/);
    // The node's cpu use is named for what it is (not "load"), with the running guests' overcommit.
    expect(lines[1]).toMatch(
      new RegExp(
        `^cpu: ${want.maxcpu} physical, \\d+% in use; vcpus allocated ${want.vcpus}/${want.maxcpu}=\\S+x; running guests ${want.runningVcpus}/${want.maxcpu}=\\S+x$`,
      ),
    );
    expect(want.maxmem).toBe(416 * GiB);
    expect(text).toContain('memory: 416G physical');
    expect(await miss('get_node', { node: 'pve9', cluster: 'lab' })).toBe(
      'No node "pve9" in cluster lab. Closest known nodes: lab/pve1, lab/pve2, lab/pve3, lab/pve4, edge/pve1.',
    );
    expect(await miss('get_node', { node: 'pve1', cluster: 'nope' })).toContain('Known clusters: edge, lab.');
  });
});

describe('list_storage', () => {
  it('shared storage once with all its nodes, local storage per node, usage and content from the simulator', async () => {
    const { s, text, lines } = await ok<{
      storage: Array<{
        storage: string;
        shared: boolean;
        nodes: string[];
        content: string[];
        maxdisk: number;
        disk: number;
        usedFraction: number;
        stale: boolean;
      }>;
    }>('list_storage', { cluster: 'lab' });
    const sim = h.sim.cluster.storages;
    const expected = sim
      .flatMap((st) => (st.shared ? [[st.storage, st.nodes.join(',')]] : st.nodes.map((n) => [st.storage, n])))
      .sort((a, b) => a.join().localeCompare(b.join()));
    expect(
      s.storage.map((st) => [st.storage, st.nodes.join(',')]).sort((a, b) => a.join().localeCompare(b.join())),
    ).toEqual(expected);
    for (const st of s.storage) {
      const src = sim.find((x) => x.storage === st.storage)!;
      expect(st).toMatchObject({ shared: src.shared, content: src.content.split(','), maxdisk: src.maxdisk });
      expect(st.usedFraction).toBeCloseTo(st.disk / st.maxdisk, 3);
      expect(st.stale).toBe(!st.shared && st.nodes[0] === 'pve3');
    }
    expect(lines).toHaveLength(1 + expected.length);
    expect(text).toMatch(/\nceph-vm rbd \S+\/\S+ \d+% rootdir,images shared:pve1,pve2,pve3,pve4 available\n/);

    const shared = await ok<{ storage: Array<{ storage: string }> }>('list_storage', {
      cluster: 'lab',
      shared: 'true',
    });
    expect(shared.s.storage.map((st) => st.storage)).toEqual(
      sim
        .filter((st) => st.shared)
        .map((st) => st.storage)
        .sort(),
    );
    const onNode = await ok<{ storage: Array<{ storage: string; nodes: string[] }> }>('list_storage', {
      cluster: 'lab',
      node: 'pve4',
    });
    expect(onNode.s.storage.every((st) => st.nodes.includes('pve4'))).toBe(true);
    expect(await miss('list_storage', { cluster: 'lab', node: 'pve7' })).toBe(
      'No node "pve7" in cluster lab. Known nodes: lab/pve1, lab/pve2, lab/pve3, lab/pve4.',
    );
  });
});

describe('find_capacity', () => {
  interface Candidate {
    node: string;
    fits: boolean;
    reasons: string[];
    cpus: { physical: number; allocated: number; allocatedRunning: number; after: number };
    memory: {
      physical: number;
      allocated: number;
      allocatedRunning: number;
      used: number;
      free: number;
      unused: number;
      freeAfter: number;
    };
    storage: { storage: string; shared: boolean; free: number; freeAfter: number } | null;
    short?: Record<string, number>;
  }
  type Answer = { rule: string; fits: Candidate[]; cannot: Candidate[] };
  // (short: by how much a node that cannot take the guest falls short, when room is all it lacks)

  it("shows the arithmetic per node from the simulator's guests and nodes, ranks by memory left, and says why the rest cannot", async () => {
    const nodes = expectedNodes().filter((n) => n.cluster === 'lab');
    const used = new Map(
      sql<{ node: string; mem: number }>("SELECT node, mem FROM nodes WHERE cluster = 'lab'").map((r) => [
        r.node,
        r.mem,
      ]),
    );
    const ceph = sql<{ free: number }>(
      "SELECT maxdisk - disk AS free FROM storage WHERE cluster = 'lab' AND storage = 'ceph-vm' AND stale = 0 LIMIT 1",
    )[0]!.free;
    // Ask for a size that the roomiest online node can take and at least one other cannot.
    const room = nodes
      .filter((n) => n.node !== 'pve3')
      .map((n) => Math.min(n.maxmem - n.mem, n.maxmem - used.get(n.node)!))
      .sort((a, b) => b - a);
    expect(room[0]!).toBeGreaterThan(GiB);
    const memoryGiB = Math.max(1, Math.floor((room[0]! + Math.max(room.at(-1)!, 0)) / 2 / GiB));
    const ask = memoryGiB * GiB;

    const { s, text, lines } = await ok<Answer>('find_capacity', {
      cores: '2',
      memoryGiB: String(memoryGiB),
      diskGiB: 10,
      storage: 'ceph-vm',
      cluster: 'lab',
    });
    expect(s.rule).toMatch(/running or stopped/);
    const all = [...s.fits, ...s.cannot];
    expect(all.map((c) => c.node).sort()).toEqual(['pve1', 'pve2', 'pve3', 'pve4']);
    for (const c of all) {
      const n = nodes.find((x) => x.node === c.node)!;
      const u = used.get(c.node)!;
      expect(c.cpus).toEqual({
        physical: n.maxcpu,
        allocated: n.vcpus,
        allocatedRunning: n.runningVcpus,
        after: n.vcpus + 2,
        ratioAfter: Math.round(((n.vcpus + 2) / n.maxcpu) * 100) / 100,
      });
      expect(c.memory).toEqual({
        physical: n.maxmem,
        allocated: n.mem,
        allocatedRunning: n.runningMem,
        used: u,
        free: n.maxmem - n.mem,
        unused: n.maxmem - u,
        freeAfter: n.maxmem - n.mem - ask,
      });
      // A shared storage is one volume: the same free bytes for every node.
      expect(c.storage).toEqual({ storage: 'ceph-vm', shared: true, free: ceph, freeAfter: ceph - 10 * GiB });
      const fits =
        c.node !== 'pve3' && n.maxmem - n.mem >= ask && n.maxmem - u >= ask && n.maxcpu >= 2 && ceph >= 10 * GiB;
      expect(c.fits, c.node).toBe(fits);
      if (fits)
        expect(text).toContain(
          `${c.node} FITS: mem ${bytes(n.maxmem)} - ${bytes(n.mem)} alloc = ${signedBytes(n.maxmem - n.mem)} free - ${memoryGiB}G = ${signedBytes(n.maxmem - n.mem - ask)} left`,
        );
      else if (c.node !== 'pve3') {
        // A node that cannot says by how much it falls short, not the negative arithmetic.
        const short = {
          ...(n.maxmem - n.mem < ask ? { memoryBytes: ask - (n.maxmem - n.mem) } : {}),
          ...(n.maxmem - u < ask ? { memoryInUseBytes: ask - (n.maxmem - u) } : {}),
        };
        expect(c.short).toEqual(short);
        expect(text).toContain(`\n${c.node} short by ${bytes(ask - (n.maxmem - n.mem))} memory (allocation)`);
      }
    }
    // The same arithmetic written out for two nodes of seed 11: pve1, one of the fuller nodes, is
    // overcommitted (270.5 GiB allocated of 240 GiB), so its free memory is negative and the ask is
    // half of the roomiest node's room; pve4 has 330 GiB of 448 GiB allocated and takes it.
    const inGiB = Object.fromEntries(nodes.map((n) => [n.node, [n.maxmem / GiB, n.mem / GiB]]));
    expect([inGiB.pve1, inGiB.pve4]).toEqual([
      [240, 270.5],
      [448, 330],
    ]);
    expect(text).toContain(`\npve1 short by ${31 + memoryGiB}G memory (allocation)`);
    expect(text).toContain(`\npve4 FITS: mem 448G - 330G alloc = 118G free - ${memoryGiB}G = ${118 - memoryGiB}G left`);
    expect(s.fits.length).toBeGreaterThan(0);
    expect(s.cannot.length).toBeGreaterThan(1);
    expect(s.fits.map((c) => c.memory.freeAfter)).toEqual(s.fits.map((c) => c.memory.freeAfter).sort((a, b) => b - a));
    expect(s.cannot.find((c) => c.node === 'pve3')!.reasons).toContain('node offline');
    expect(lines[0]).toBe(
      `${s.fits.length} of 4 nodes can take 2 cores, ${memoryGiB}G memory, 10G disk on ceph-vm; allocated = sum of maxcpu/maxmem of non-template guests on the node, running or stopped; memory: allocated + asked ≤ physical, and in use + asked ≤ physical; cores ≤ cpus.`,
    );
    expect(lines[1]).toMatch(new RegExp(`^${s.fits[0]!.node} FITS: `));
    // The nodes that cannot follow, the least short first and the offline one last.
    expect(lines.at(-1)).toBe('pve3 no: node offline');
    expect(lines).toHaveLength(1 + 4);
  });

  it('without a storage, the roomiest guest-disk storage of each node; too many cores fit nowhere', async () => {
    const { s } = await ok<Answer>('find_capacity', { cores: 1, memoryGiB: 0.5, diskGiB: 1, cluster: 'lab' });
    for (const c of [...s.fits, ...s.cannot].filter((x) => x.node !== 'pve3'))
      expect(['ceph-vm', 'local-lvm']).toContain(c.storage!.storage);
    const huge = await ok<Answer>('find_capacity', { cores: 4096, memoryGiB: 1 });
    expect(huge.s.fits).toEqual([]);
    expect(
      huge.s.cannot
        .filter((c) => c.node !== 'pve3')
        .every((c) => c.reasons.some((r) => /^cpu: 4096 cores > \d+ physical$/.test(r))),
    ).toBe(true);
  });

  it("a stale cluster's nodes only with includeStale", async () => {
    const stale = await ok<Answer>('find_capacity', { cores: 1, memoryGiB: 0, cluster: 'edge' });
    expect(stale.s.fits).toEqual([]);
    expect(stale.s.cannot.every((c) => c.reasons[0] === 'node stale (includeStale to consider it)')).toBe(true);
    const included = await ok<Answer>('find_capacity', {
      cores: 1,
      memoryGiB: 0,
      cluster: 'edge',
      includeStale: 'true',
    });
    expect(included.s.cannot.every((c) => !c.reasons.some((r) => r.startsWith('node stale')))).toBe(true);
  });

  it('an unknown storage or cluster is a miss with the known ones', async () => {
    expect(await miss('find_capacity', { cores: 1, memoryGiB: 1, storage: 'ssd-pool', cluster: 'lab' })).toBe(
      'No storage "ssd-pool" in cluster lab. Storage for guest disks: ceph-vm, local-lvm.',
    );
    expect(await miss('find_capacity', { cores: 1, memoryGiB: 1, cluster: 'prod' })).toContain(
      'Known clusters: edge, lab.',
    );
    expect(await miss('find_capacity', { cores: 0, memoryGiB: 1 })).toMatch(/cores/);
  });
});

describe('search_inventory', () => {
  it('names, MACs and vmids, saying which field matched', async () => {
    const byName = await ok<{
      total: number;
      results: Array<{ kind: string; cluster: string; vmid: number; matches: Array<{ field: string; value: string }> }>;
    }>('search_inventory', { query: 'renamed-by' });
    expect(byName.s.results).toEqual([
      expect.objectContaining({
        kind: 'guest',
        cluster: 'lab',
        vmid: changed.renamed,
        matches: [{ field: 'name', value: 'renamed-by-test' }],
      }),
    ]);
    expect(byName.lines[2]).toBe(
      `${changed.renamed} renamed-by-test qemu@${h.sim.cluster.guests.get(changed.renamed)!.node} running name renamed-by-test`,
    );

    const withMac = labGuests().find((g) => g.type === 'qemu' && g.values.net0)!;
    const mac = /([0-9A-F]{2}:){5}[0-9A-F]{2}/.exec(withMac.values.net0!)![0];
    const byMac = await ok<{ results: Array<{ vmid: number; matches: Array<{ field: string; value: string }> }> }>(
      'search_inventory',
      { query: mac.toLowerCase() },
    );
    expect(byMac.s.results[0]).toMatchObject({ vmid: withMac.vmid, matches: [{ field: 'mac', value: `net0 ${mac}` }] });

    const byNode = await ok<{ results: Array<{ kind: string; cluster: string }> }>('search_inventory', {
      query: 'pve2',
      limit: '50',
    });
    expect(
      byNode.s.results
        .filter((r) => r.kind === 'node')
        .map((r) => r.cluster)
        .sort(),
    ).toEqual(['edge', 'lab']);
    const none = await ok<{ total: number }>('search_inventory', { query: 'zzz-nothing' });
    expect(none.s.total).toBe(0);
    expect(none.lines[0]).toMatch(/^nothing matches "zzz-nothing"; try/);
    expect(await miss('search_inventory', { query: '   ' })).toMatch(/query/);
  });
});

describe('changes_since', () => {
  type Events = {
    events: Array<{ seq: number; type: string; subject: { id: string }; data: Record<string, unknown> }>;
    nextSeq: number;
    hasMore: boolean;
  };

  it('afterSeq answers exactly the events of the changes made, one short line each', async () => {
    const { s, lines } = await ok<Events>('changes_since', { afterSeq: seq0, limit: seq1 - seq0 });
    expect(s.events.map((x) => [x.type, x.subject.id]).sort()).toEqual(
      [
        ['guest.created', `lab/${changed.created}`],
        ['guest.status_changed', `lab/${changed.stopped}`],
        ['guest.updated', `lab/${changed.renamed}`],
      ].sort(),
    );
    expect(s.events.map((x) => x.seq)).toEqual(
      h
        .eventsSince(seq0)
        .slice(0, 3)
        .map((x) => x.seq),
    );
    expect(s.nextSeq).toBe(seq1);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(`3 events; more: afterSeq ${seq1}`);
    const line = (type: string): string => lines.find((l) => l.split(' ')[1] === type)!;
    // Who did it, by Proxmox's task (the simulator's UI user), beside when the sync saw it.
    expect(line('guest.status_changed')).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ guest.status_changed lab/${changed.stopped} running→stopped; by root@pam \\(qmstop started \\S+Z\\)$`,
      ),
    );
    // Old → new values, each config key once (cores and name are said by their fields).
    const cores = sql<{ cores: number }>(
      'SELECT cores FROM guests WHERE cluster = ? AND vmid = ?',
      'lab',
      changed.renamed,
    )[0]!.cores;
    expect(cores).toBe(7);
    const before = (s.events.find((x) => x.type === 'guest.updated')!.data.changes as Record<string, { from: number }>)
      .cores!.from;
    expect(line('guest.updated')).toMatch(
      new RegExp(`lab/${changed.renamed} name ${changed.oldName}→renamed-by-test; maxcpu \\d+→7; cores ${before}→7$`),
    );
    expect(line('guest.created')).toMatch(/ fresh-vm qemu on pve2, running; by root@pam \(qmcreate started \S+Z\)$/);
  });

  it('pages with nextSeq until hasMore is false, and filters by type prefix and subject', async () => {
    const seen: number[] = [];
    let after = seq0;
    for (let page = 0; page < 20; page++) {
      const { s } = await ok<Events>('changes_since', { afterSeq: after, limit: 2 });
      seen.push(...s.events.map((x) => x.seq));
      after = s.nextSeq;
      if (!s.hasMore) break;
    }
    expect(seen).toEqual(h.eventsSince(seq0).map((x) => x.seq));
    const nodes = await ok<Events>('changes_since', { afterSeq: 0, types: ['node.'] });
    expect(nodes.s.events.map((x) => [x.subject.id, x.data.to])).toEqual([['lab/pve3', 'offline']]);
    expect(nodes.lines[1]).toMatch(/ node\.status_changed lab\/pve3 online→offline$/);
    // Its creation was part of the first sync, folded unless asked for.
    const one = await ok<Events>('changes_since', {
      afterSeq: 0,
      subject: `lab/${changed.stopped}`,
      includeInitial: true,
    });
    expect(one.s.events.map((x) => x.type)).toEqual(['guest.created', 'guest.status_changed']);
    const failed = await ok<Events>('changes_since', { since: '1h', types: ['cluster.sync_failed'], cluster: 'edge' });
    expect(failed.s.events).toHaveLength(1);
    expect(failed.lines[1]).toMatch(/ cluster\.sync_failed edge ".*503/);
  });

  it('since a snapshot, or a relative or absolute time', async () => {
    const bySnap = await ok<Events>('changes_since', { snapshot: snapB.id, types: ['guest.*', 'node.'] });
    expect(bySnap.s.events.map((x) => x.type)).toEqual(['node.status_changed']);
    const fromA = await ok<Events>('changes_since', { snapshot: String(snapA.id), types: ['guest.'] });
    expect(fromA.s.events).toHaveLength(3);
    const total = sql<{ n: number }>('SELECT count(*) AS n FROM events')[0]!.n;
    expect(
      (await ok<Events>('changes_since', { since: '2h', limit: 1000, includeInitial: true })).s.events,
    ).toHaveLength(total);
    const latest = sql<{ at: number }>('SELECT max(occurred_at) AS at FROM events')[0]!.at;
    const afterLatest = new Date(latest + 1).toISOString();
    expect((await ok<Events>('changes_since', { since: afterLatest })).s.events).toHaveLength(0);
    expect((await ok<Events>('changes_since', { since: afterLatest.replace('Z', '+00:00') })).s.events).toHaveLength(0);
  });

  it('a bad start is a miss with a hint', async () => {
    expect(await miss('changes_since', { since: 'yesterday' })).toBe(
      'since "yesterday": neither an ISO 8601 time nor a duration back from now. Use an ISO 8601 time ("2025-01-02T03:04:05Z"; UTC when it has no offset) or a duration back from now ("90s", "15m", "2h", "7d", "1h30m").',
    );
    expect(await miss('changes_since', {})).toBe(
      'Give since, afterSeq or snapshot. For example {"since": "2h"}, {"afterSeq": 120} or {"snapshot": 3}.',
    );
    expect(await miss('changes_since', { since: '1h', afterSeq: 3 })).toMatch(
      /^Give only one of since, afterSeq, snapshot\./,
    );
    expect(await miss('changes_since', { snapshot: 999 })).toBe(
      `No snapshot 999. Known: ${snapB.id} (${new Date(snapB.takenAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}), ${snapA.id} (${new Date(snapA.takenAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}).`,
    );
    expect(await miss('changes_since', { afterSeq: 0, types: ['vm.started'] })).toMatch(
      /^Unknown event type "vm.started"\. Types: guest\.created, .*; or a prefix such as "guest\."\.$/,
    );
  });

  it('readTime reads durations and times', () => {
    const now = Date.parse('2025-06-01T12:00:00Z');
    const at = (value: string): number | string => {
      const t = readTime(value, now);
      return t.ok ? t.at : t.problem;
    };
    const ago = (ms: number): number => now - ms;
    expect(at('15m')).toBe(ago(15 * 60_000));
    expect(at('2h')).toBe(ago(2 * 3_600_000));
    expect(at('1d')).toBe(ago(86_400_000));
    expect(at('1w')).toBe(ago(7 * 86_400_000));
    expect(at('1h30m')).toBe(ago(90 * 60_000));
    expect(at('90s')).toBe(ago(90_000));
    expect(at('1.5h')).toBe(ago(90 * 60_000));
    expect(at('2H ago')).toBe(ago(2 * 3_600_000));
    expect(at('PT2H')).toBe(ago(2 * 3_600_000));
    expect(at('P1DT30M')).toBe(ago(86_400_000 + 30 * 60_000));
    expect(at('2025-06-01T11:00:00Z')).toBe(ago(3_600_000));
    expect(at('2025-06-01')).toBe(Date.UTC(2025, 5, 1));
    for (const bad of ['', 'h', '2', 'P', 'PT', '-1h', '1y', 'yesterday', '1e9999d', '9'.repeat(30) + 'w', '30m1h'])
      expect(typeof at(bad), bad).toBe('string');
  });
});

describe('list_snapshots and diff_snapshots', () => {
  type Diff = {
    from: string;
    to: string;
    counts: Record<string, number>;
    truncated: boolean;
    guests: {
      added: Array<{ vmid: number; name: string }>;
      removed: unknown[];
      changed: Array<{ vmid: number; changes: Record<string, { from: unknown; to: unknown }> }>;
    };
    nodes: { changed: Array<{ node: string; changes: Record<string, { from: unknown; to: unknown }> }> };
  };

  it('list_snapshots: newest first with guest and node counts', async () => {
    const { s, lines } = await ok<{
      snapshots: Array<{ id: number; label: string; guests: number; nodes: number; takenAt: string }>;
    }>('list_snapshots');
    expect(s.snapshots).toEqual([
      {
        id: snapB.id,
        takenAt: new Date(snapB.takenAt).toISOString(),
        label: 'after',
        guests: labGuests().length + edgeGuests().length,
        nodes: 6,
      },
      {
        id: snapA.id,
        takenAt: new Date(snapA.takenAt).toISOString(),
        label: 'before',
        guests: labGuests().length + edgeGuests().length - 1,
        nodes: 6,
      },
    ]);
    expect(lines).toEqual([
      'id taken label guests nodes',
      expect.stringMatching(new RegExp(`^${snapB.id} \\S+Z after ${s.snapshots[0]!.guests} 6$`)),
      expect.stringMatching(/ before /),
    ]);
  });

  it('diff between two snapshots names the changed guests and fields', async () => {
    const { s, lines } = await ok<Diff>('diff_snapshots', { from: snapA.id, to: String(snapB.id) });
    expect(s.counts).toEqual({ added: 1, removed: 0, changed: 2, nodesAdded: 0, nodesRemoved: 0, nodesChanged: 0 });
    expect(s.guests.added).toEqual([expect.objectContaining({ vmid: changed.created, name: 'fresh-vm' })]);
    const renamed = s.guests.changed.find((c) => c.vmid === changed.renamed)!;
    expect(renamed.changes.name).toEqual({ from: changed.oldName, to: 'renamed-by-test' });
    expect(renamed.changes.cores).toEqual({ from: expect.any(Number), to: 7 });
    expect(s.guests.changed.find((c) => c.vmid === changed.stopped)!.changes).toEqual({
      status: { from: 'running', to: 'stopped' },
    });
    expect(s.truncated).toBe(false);
    expect(lines[0]).toMatch(
      new RegExp(`\\(snapshot ${snapA.id}\\) → \\S+ \\(snapshot ${snapB.id}\\): guests \\+1 -0 ~2; nodes \\+0 -0 ~0$`),
    );
    expect(lines).toContain(`+ lab/${changed.created} fresh-vm qemu on pve2, running`);
    expect(lines).toContain(
      `~ lab/${changed.stopped} ${h.sim.cluster.name(h.sim.cluster.guests.get(changed.stopped)!)} status running→stopped`,
    );
    expect(lines.find((l) => l.startsWith(`~ lab/${changed.renamed} `))).toMatch(
      new RegExp(`renamed-by-test name ${changed.oldName}→renamed-by-test; maxcpu \\d+→7; cores \\d+→7; config$`),
    );
    expect(lines).toHaveLength(4);
  });

  it('diff against now sees the offline node; an unknown id is a miss listing the known ones', async () => {
    const { s, text, lines } = await ok<Diff>('diff_snapshots', { from: snapB.id });
    expect(s.nodes.changed).toEqual([
      { cluster: 'lab', node: 'pve3', changes: { status: { from: 'online', to: 'offline' } } },
    ]);
    expect(text).toContain('~ node lab/pve3 status online→offline');
    expect(lines.length).toBeLessThanOrEqual(52);
    expect(await miss('diff_snapshots', { from: 77 })).toMatch(
      new RegExp(`^No snapshot 77\\. Known: ${snapB.id} \\(.*\\), ${snapA.id} \\(.*\\); list_snapshots lists all\\.$`),
    );
    expect(await miss('diff_snapshots', { from: snapA.id, to: 78 })).toMatch(/^No snapshot 78\./);
  });
});

describe('list_tasks', () => {
  type Tasks = {
    tasks: Array<{ type: string; vmid: number | null; node: string; outcome: string; exitstatus: string | null }>;
  };

  it('recent tasks, failed first on request, with the exit status of failures', async () => {
    const simTasks = h.sim.cluster.tasks.filter((t) => t.endtime !== undefined);
    const { s } = await ok<Tasks>('list_tasks', { cluster: 'lab', limit: 500 });
    expect(s.tasks.map((t) => t.type).sort()).toEqual(simTasks.map((t) => t.type).sort());
    const failedFirst = await ok<Tasks>('list_tasks', { failedFirst: true });
    expect(failedFirst.s.tasks[0]).toMatchObject({
      type: 'vzdump',
      vmid: changed.renamed,
      node: 'pve2',
      outcome: 'error',
      exitstatus: 'job failed: storage "nfs-backup" is full',
    });
    // Two clusters' tasks: the guest column names the cluster; the name column the guest.
    expect(failedFirst.lines[0]).toBe('start type guest name node took outcome exitstatus');
    expect(failedFirst.lines[1]).toMatch(
      new RegExp(
        `^\\S+Z vzdump lab/${changed.renamed} renamed-by-test pve2 \\S+ error "job failed: storage \\\\"nfs-backup\\\\" is full"$`,
      ),
    );
    const only = await ok<Tasks>('list_tasks', { onlyFailed: 'true' });
    expect(only.s.tasks.map((t) => t.outcome)).toEqual(['error']);
    const forGuest = await ok<Tasks>('list_tasks', { vmid: String(changed.stopped) });
    expect(forGuest.s.tasks.map((t) => t.type)).toEqual(['qmstop']);
    expect(forGuest.lines).toHaveLength(3);
    // How far back the tasks go per node, from the rows: "no task found" is never "never happened".
    const oldest = sql<{ node: string; t: number | null }>(
      `SELECT n.cluster || '/' || n.node AS node, (SELECT min(starttime) FROM tasks t WHERE t.cluster = n.cluster AND t.node = n.node) AS t
       FROM nodes n ORDER BY n.cluster, n.node`,
    ).map((r) => `${r.node} ${r.t == null ? 'none seen' : new Date(r.t * 1000).toISOString().replace('.000Z', 'Z')}`);
    expect(forGuest.lines[2]).toBe(
      `tasks known since (oldest kept per node): ${oldest.join(', ')}; anything older is not known, so a task not listed may still have run before`,
    );
    expect(await miss('list_tasks', { node: 'pve8' })).toMatch(
      /^No node "pve8"\. Known nodes: edge\/pve1, edge\/pve2, lab\/pve1/,
    );
  });
});

describe('every tool under arbitrary arguments', () => {
  it('answers a result (error or not) and never breaks the connection', async () => {
    const junk = fc.oneof(
      fc.jsonValue(),
      fc.string({ maxLength: 400 }),
      fc.constantFrom(
        -1,
        0,
        1e308,
        -1e308,
        2 ** 53,
        'true',
        '1h',
        '',
        'lab',
        'pve1',
        '100',
        '1e9',
        '{"a":1}',
        ['guest.'],
        null,
      ),
      fc.integer(),
      fc.double(),
    );
    const tools = allTools.map((t) => ({ name: t.name, keys: Object.keys(t.input.shape) }));
    // Mostly the tool's own fields with values of any type, sometimes unknown fields.
    const key = (keys: string[]): fc.Arbitrary<string> =>
      fc.oneof(
        { arbitrary: keys.length ? fc.constantFrom(...keys) : fc.constant('bogus'), weight: 8 },
        { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
      );
    const calls = fc
      .constantFrom(...tools)
      .chain((tool) => fc.tuple(fc.constant(tool), fc.dictionary(key(tool.keys), junk, { maxKeys: 4 })));
    let count = 0;
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(calls, async ([tool, args]) => {
        const r = (await client.callTool({ name: tool.name, arguments: args })) as CallToolResult;
        count++;
        expect(typeof r.isError === 'boolean' || r.isError === undefined).toBe(true);
        const text = textOf(r);
        expect(text.length).toBeGreaterThan(0);
        expect(text).not.toMatch(/\n\s+at \S+ \(|failed while reading the inventory/);
        if (!r.isError) {
          answered++;
          expect(r.structuredContent).toHaveProperty('freshness');
        }
      }),
      { numRuns: 300 },
    );
    expect(count).toBe(300);
    expect(answered).toBeGreaterThan(15); // handlers ran, not only the input validation
    expect((await client.listTools()).tools).toHaveLength(allTools.length);
    expect((await call('sync_status')).isError).toBeFalsy();
  });
});
