/**
 * Answers about guests, nodes and room, through the real SDK client against a store synced from
 * the simulator over HTTP: list_guests says a filter value that names nothing, echoes every filter
 * and a page cut inside a run; find_capacity takes overcommit allowances and a use-based mode and
 * says how far the nodes that cannot fall short; the overview names nodes above 90 % memory in use
 * and shows running-only overcommit. Expectations come from the simulator and SQL of the test's own.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes } from '../../src/mcp/render.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';
import { connectClient } from './connect.js';

const GiB = 2 ** 30;
let h: SyncHarness;
let client: Client;

const textOf = (r: CallToolResult): string => (r.content[0] as { text: string }).text;
async function ok<T>(name: string, args: Record<string, unknown> = {}): Promise<{ s: T; lines: string[] }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${textOf(r)}`).toBeFalsy();
  return { s: r.structuredContent as T, lines: textOf(r).split('\n').slice(0, -1) };
}
async function miss(name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)} should miss: ${textOf(r)}`).toBe(true);
  return textOf(r);
}
const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];
const cycle = async (): Promise<void> => {
  expect((await h.sync.runCycle()).ok).toBe(true);
};
const live = "deleted_at IS NULL AND cluster = 'lab'";

beforeAll(async () => {
  h = await startHarness({ guests: 200, nodes: 3, seed: 3 });
  await cycle();
  client = await connectClient(h.store, 'answer-guests');
}, 30_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

describe('list_guests: a value that names nothing, every filter said, a page cut inside a run', () => {
  it('an unknown cluster, node, pool or tag is a miss with the closest known value', async () => {
    expect(await miss('list_guests', { cluster: 'labb' })).toBe('No cluster "labb". Known clusters: lab.');
    expect(await miss('list_guests', { node: 'pve-1' })).toBe(
      'No node "pve-1". Closest: pve1. Known nodes: pve1, pve2, pve3.',
    );
    expect(await miss('list_guests', { cluster: 'lab', node: 'pve7', status: 'running' })).toMatch(
      /^No node "pve7" in cluster lab\. Closest: pve\d\. Known nodes: pve1, pve2, pve3\.$/,
    );
    const pools = sql<{ pool: string }>('SELECT pool FROM pools ORDER BY pool').map((r) => r.pool);
    expect(pools).toContain('prod');
    expect(await miss('list_guests', { pool: 'prd' })).toBe(
      `No pool "prd". Closest: prod. Known pools: ${pools.join(', ')}.`,
    );
    const tags = sql<{ t: string }>('SELECT DISTINCT tag_key AS t FROM guest_tags ORDER BY t').map((r) => r.t);
    expect(tags).toContain('prod');
    expect(await miss('list_guests', { tag: 'prdo', type: 'qemu' })).toBe(
      `No guest has the tag "prdo". Closest: prod. Known tags: ${tags.slice(0, 20).join(', ')}${tags.length > 20 ? ` (+${tags.length - 20} more)` : ''}.`,
    );
    // A status that is not a Proxmox status is refused by the schema, naming the ones there are.
    expect(await miss('list_guests', { status: 'runing' })).toMatch(/running.*stopped.*paused.*unknown.*other/);
    expect(await miss('list_guests', { lastKnownStatus: 'runing' })).toBe(
      'lastKnownStatus "runing" is not a Proxmox guest status. Use running, stopped or paused (or another QEMU state such as io-error).',
    );
  });

  it('a value that names something but matches nothing here is an empty answer, not a miss', async () => {
    // Every node answers: no guest is stale, so none was last seen running while its status is unknown.
    const none = await ok<{ total: number }>('list_guests', { lastKnownStatus: 'running', tag: 'PROD' });
    expect(none.s.total).toBe(0);
    expect(none.lines).toEqual(['no guest matches lastKnownStatus=running tag=PROD']);
  });

  it('the first line says every filter that was applied', async () => {
    const args = { status: 'running', tag: 'prod', name: 'e', minCores: 2, template: false };
    const want = sql<{ n: number }>(
      `SELECT count(*) AS n FROM guests g WHERE ${live} AND status = 'running' AND stale = 0 AND template = 0
       AND maxcpu >= 2 AND name LIKE '%e%' AND EXISTS (SELECT 1 FROM guest_tags t WHERE t.cluster = g.cluster AND t.vmid = g.vmid AND t.tag_key = 'prod')`,
    )[0]!.n;
    expect(want).toBeGreaterThan(0);
    const { s, lines } = await ok<{ total: number }>('list_guests', args);
    expect(s.total).toBe(want);
    expect(lines[0]).toBe(
      `${Math.min(want, 50)} of ${want} guests with status=running tag=prod name=e template=false minCores=2`,
    );
    // The status is said once, so the column is not repeated; name and tag are not fixed values.
    expect(lines[1]).toBe('vmid name type node');
  });

  it('a page that ends inside a run of equal values says how many more share the last one', async () => {
    const perNode = sql<{ node: string; n: number }>(
      `SELECT node, count(*) AS n FROM guests WHERE ${live} GROUP BY node ORDER BY node`,
    );
    const first = perNode[0]!;
    const cut = await ok<{ guests: unknown[] }>('list_guests', { sort: 'node', limit: 10 });
    expect(cut.lines[0]).toMatch(
      new RegExp(
        `^10 of \\d+ guests; the page ends inside a run: ${first.n - 10} more guests also have node ${first.node}; next page: cursor=`,
      ),
    );
    // A page that ends with the run says nothing of it.
    const whole = await ok<{ guests: unknown[] }>('list_guests', { sort: 'node', limit: first.n });
    expect(whole.lines[0]).not.toMatch(/run/);
    // Sorted by size, descending: the run of the largest size.
    const sizes = sql<{ maxmem: number; n: number }>(
      `SELECT maxmem, count(*) AS n FROM guests WHERE ${live} GROUP BY maxmem ORDER BY maxmem DESC LIMIT 1`,
    )[0]!;
    if (sizes.n > 1) {
      const bySize = await ok('list_guests', { sort: 'maxmem', order: 'desc', limit: 1 });
      expect(bySize.lines[0]).toContain(
        `; the page ends inside a run: ${sizes.n - 1} more guests also have maxmem ${bytes(sizes.maxmem)}; `,
      );
    }
  });

  it('status other: guests in a rarer QEMU state (io-error), with their status shown', async () => {
    const g = [...h.sim.cluster.guests.values()].find((x) => x.type === 'qemu' && x.status === 'running')!;
    g.status = 'io-error' as never;
    g.shownStatus = 'io-error' as never;
    await cycle();
    const { s, lines } = await ok<{ guests: Array<{ vmid: number; status: string }> }>('list_guests', {
      status: 'other',
    });
    expect(s.guests).toEqual([expect.objectContaining({ vmid: g.vmid, status: 'io-error' })]);
    expect(lines[0]).toBe('1 of 1 guests with status=other');
    expect(lines[1]).toBe('vmid name type node status');
    expect(lines[2]!.split(' ').at(-1)).toBe('io-error');
    const running = await ok<{ guests: Array<{ vmid: number }> }>('list_guests', { status: 'running', limit: 500 });
    expect(running.s.guests.map((x) => x.vmid)).not.toContain(g.vmid);
    g.status = 'running';
    g.shownStatus = 'running';
    await cycle();
  });
});

interface NodeRoom {
  node: string;
  maxmem: number;
  mem: number;
  maxcpu: number;
  allocMem: number;
  allocCpu: number;
}
/** Per node, from the rows: physical size, memory in use, and what its non-template guests were given. */
const rooms = (): NodeRoom[] =>
  sql<NodeRoom>(
    `SELECT n.node, n.maxmem, n.mem, n.maxcpu,
       coalesce(sum(CASE WHEN g.template = 0 THEN g.maxmem END), 0) AS allocMem,
       coalesce(sum(CASE WHEN g.template = 0 THEN g.maxcpu END), 0) AS allocCpu
     FROM nodes n LEFT JOIN guests g ON g.cluster = n.cluster AND g.node = n.node AND g.deleted_at IS NULL
     GROUP BY n.node ORDER BY n.node`,
  );

interface Candidate {
  node: string;
  fits: boolean;
  reasons: string[];
  short?: { memoryBytes?: number; memoryInUseBytes?: number; vcpus?: number; cores?: number };
  memory: { free: number; unusedAfter?: number };
}
type Capacity = { rule: string; fits: Candidate[]; cannot: Candidate[] };

describe('find_capacity: allowances, a use-based mode, and how far short', () => {
  it('vcpuRatio bounds allocated vCPUs; memoryRatio lets allocation go past physical', async () => {
    const all = rooms();
    const ratio = 3;
    const cores = 2;
    const { s, lines } = await ok<Capacity>('find_capacity', { cores, memoryGiB: 1, vcpuRatio: ratio });
    for (const n of all) {
      const c = [...s.fits, ...s.cannot].find((x) => x.node === n.node)!;
      const allowed = Math.floor(n.maxcpu * ratio);
      const fits = n.allocCpu + cores <= allowed && n.allocMem + GiB <= n.maxmem && n.mem + GiB <= n.maxmem;
      expect(c.fits, n.node).toBe(fits);
      if (n.allocCpu + cores > allowed) expect(c.short?.vcpus ?? -1, n.node).toBe(n.allocCpu + cores - allowed);
    }
    expect(s.rule).toContain('allocated vcpus + cores ≤ cpus x 3');
    expect(lines[0]).toMatch(/; cores ≤ cpus, allocated vcpus \+ cores ≤ cpus x 3\.$/);

    // A memory ask that fits no node's physical size after allocation, but fits one at 1.5x.
    const byRoom = [...all].sort((a, b) => b.maxmem - b.allocMem - (a.maxmem - a.allocMem));
    const ask = Math.max(1, Math.ceil((byRoom[0]!.maxmem - byRoom[0]!.allocMem) / GiB) + 1);
    const plain = await ok<Capacity>('find_capacity', { cores: 1, memoryGiB: ask });
    expect(plain.s.fits).toEqual([]);
    const loose = await ok<Capacity>('find_capacity', { cores: 1, memoryGiB: ask, memoryRatio: 1.5 });
    const expected = all
      .filter((n) => n.allocMem + ask * GiB <= Math.floor(n.maxmem * 1.5) && n.mem + ask * GiB <= n.maxmem)
      .map((n) => n.node);
    expect(expected.length).toBeGreaterThan(0);
    expect(loose.s.fits.map((c) => c.node).sort()).toEqual(expected.sort());
    const top = loose.s.fits[0]!;
    const n = all.find((x) => x.node === top.node)!;
    expect(loose.lines[1]).toContain(
      `${top.node} FITS: mem ${bytes(n.maxmem)}x1.5=${bytes(Math.floor(n.maxmem * 1.5))} - ${bytes(n.allocMem)} alloc = `,
    );
  });

  it('memoryBy=used checks memory in use only, allocation shown but not checked', async () => {
    const all = rooms();
    const over = all.find((n) => n.allocMem > n.maxmem)!; // the generator overcommits its fuller nodes
    expect(over).toBeDefined();
    const { s, lines } = await ok<Capacity>('find_capacity', { cores: 1, memoryGiB: 1, memoryBy: 'used' });
    for (const n of all) {
      const c = [...s.fits, ...s.cannot].find((x) => x.node === n.node)!;
      expect(c.fits, n.node).toBe(n.mem + GiB <= n.maxmem);
      expect(c.memory.unusedAfter).toBe(n.maxmem - n.mem - GiB);
    }
    expect(s.fits.map((c) => c.node)).toContain(over.node);
    expect(lines.find((l) => l.startsWith(`${over.node} FITS: `))).toContain(
      `mem ${bytes(over.maxmem)} - ${bytes(over.mem)} in use = `,
    );
    expect(s.rule).toContain('memory: in use now + asked ≤ physical (allocation not checked)');
    expect(await miss('find_capacity', { cores: 1, memoryGiB: 1, memoryBy: 'used', memoryRatio: 2 })).toBe(
      'memoryRatio bounds allocated memory, which memoryBy=used does not check. Leave out memoryRatio, or memoryBy.',
    );
  });

  it('when nothing fits: the least short first, each with the amount it falls short', async () => {
    const all = rooms();
    const free = all.map((n) => ({ node: n.node, free: n.maxmem - n.allocMem, unused: n.maxmem - n.mem }));
    const ask = (Math.max(...free.map((f) => f.free)) + 8 * GiB) / GiB;
    const { s, lines } = await ok<Capacity>('find_capacity', { cores: 1, memoryGiB: ask });
    expect(s.fits).toEqual([]);
    expect(lines[0]).toMatch(
      new RegExp(`^No node of 3 can take 1 cores, ${bytes(ask * GiB)} memory; the closest first; `),
    );
    const short = free
      .map((f) => ({
        node: f.node,
        memoryBytes: ask * GiB - f.free,
        ...(f.unused < ask * GiB ? { memoryInUseBytes: ask * GiB - f.unused } : {}),
      }))
      .sort(
        (a, b) => Math.max(a.memoryBytes, a.memoryInUseBytes ?? 0) - Math.max(b.memoryBytes, b.memoryInUseBytes ?? 0),
      );
    expect(s.cannot.map((c) => ({ node: c.node, ...c.short }))).toEqual(short);
    expect(lines[1]).toBe(
      `${short[0]!.node} short by 8G memory (allocation)${short[0]!.memoryInUseBytes ? `, ${bytes(short[0]!.memoryInUseBytes)} memory (in use)` : ''}`,
    );
    expect(lines).toHaveLength(1 + 3);
  });
});

describe('nodes: running-only overcommit in the text, memory in use above 90 %', () => {
  it('the overview names a node above 90 % memory in use, and its table shows running-only overcommit', async () => {
    const before = await ok<{ problems: { memoryInUse: unknown[] } }>('inventory_overview');
    const fullBefore = rooms().filter((n) => n.mem / n.maxmem > 0.9);
    expect(before.s.problems.memoryInUse).toHaveLength(fullBefore.length);
    // A guest given more memory than the node has: what it uses fills the node (the simulator caps it).
    h.sim.createGuest({ name: 'memory-hog', node: 'pve3', status: 'running', memoryMiB: 4 * 1_048_576 });
    await cycle();
    const pve3 = rooms().find((n) => n.node === 'pve3')!;
    expect(pve3.mem / pve3.maxmem).toBeGreaterThan(0.9);
    const { s, lines } = await ok<{
      problems: { memoryInUse: Array<{ cluster: string; node: string; usedFraction: number }> };
    }>('inventory_overview');
    expect(s.problems.memoryInUse).toContainEqual({
      cluster: 'lab',
      node: 'pve3',
      usedFraction: Math.round((pve3.mem / pve3.maxmem) * 10_000) / 10_000,
    });
    expect(lines).toContain(
      `- node pve3 memory ${Math.round((pve3.mem / pve3.maxmem) * 100)}% in use (${bytes(pve3.mem)}/${bytes(pve3.maxmem)})`,
    );
    expect(lines).toContain('nodes (_alloc: non-template guests, running or not; _run: running now):');
    expect(lines).toContain(
      'node status cpu vcpu_alloc/cpus vcpu_run/cpus mem_alloc/phys mem_run/phys mem_used guests running',
    );
  });
});
