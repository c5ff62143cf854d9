/**
 * Guests whose node went offline (or whose cluster cannot be read) keep their last-known values,
 * but the tools never present them as current (issue 8): their status is `unknown`, as Proxmox
 * reports it, with the last known one beside; the overview counts them apart; top consumers and
 * usage sorts leave them out; `status=unknown` lists exactly them; a page of only stale guests
 * says so once. Through the real SDK client against a store synced from the simulator; every
 * expectation is computed from the simulator or the raw rows.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuest } from '../../src/sim/state.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';
import { connectClient } from './connect.js';

let h: SyncHarness;
let client: Client;
/** The node taken offline, holding the guest that uses the most memory by far. */
const down = 'pve2';
let topVmid: number;

type Row = Record<string, unknown>;
async function ok<T = Row>(
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ s: T; lines: string[]; text: string }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${text}`).toBeFalsy();
  const lines = text.split('\n');
  return { s: r.structuredContent as T, lines: lines.slice(0, -1), text };
}

const guests = (): SimGuest[] => [...h.sim.cluster.guests.values()];
const onDown = (): SimGuest[] => guests().filter((g) => g.node === down);
const elsewhere = (): SimGuest[] => guests().filter((g) => g.node !== down);
const count = (list: SimGuest[], status: string): number => list.filter((g) => g.status === status).length;
/** `{ running: n, stopped: m }` in key order, as the tools tally. */
const tally = (list: SimGuest[]): Record<string, number> =>
  Object.fromEntries([...new Set(list.map((g) => g.status))].sort().map((s) => [s, count(list, s)]));
const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];

async function cycle(ok = true): Promise<void> {
  expect((await h.sync.runCycle()).ok).toBe(ok);
}

beforeAll(async () => {
  h = await startHarness({ guests: 240, nodes: 4, seed: 17 });
  // 1 TiB, of which a running guest uses at least a fifth: the top memory user whatever the metrics drift.
  topVmid = h.sim.createGuest({ name: 'big-one', node: down, status: 'running', memoryMiB: 1_048_576 });
  await cycle();
  expect(sql<{ vmid: number }>('SELECT vmid FROM guest_metrics ORDER BY mem DESC LIMIT 1')[0]!.vmid).toBe(topVmid);
  client = await connectClient(h.store, 'offline-node-test');

  h.sim.setNodeOnline(down, false);
  await cycle();
  // The simulator still holds what the guests were doing: the last known status.
  expect(count(onDown(), 'running')).toBeGreaterThan(0);
  expect(count(onDown(), 'stopped')).toBeGreaterThan(0);
}, 30_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

describe('a node offline', () => {
  it("inventory_overview counts current guests by status and the offline node's guests apart, by last known status", async () => {
    type Overview = {
      guests: { total: number; byStatus: Record<string, number>; unknown: Row };
      nodes: Array<{ node: string; guests: Row }>;
    };
    const { s, lines } = await ok<Overview>('inventory_overview');
    const n = onDown().length;
    expect(s.guests.total).toBe(guests().length);
    expect(s.guests.byStatus).toEqual({ ...tally(elsewhere()), unknown: n });
    expect(s.guests.unknown).toEqual({
      total: n,
      lastKnown: tally(onDown()),
      onUnreachableNodes: n,
      unreachableNodes: [down],
      missingFromLastRead: 0,
    });
    const lastKnown = Object.entries(tally(onDown()))
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    expect(lines[1]).toMatch(
      new RegExp(
        `^guests ${guests().length} \\(lxc \\d+, qemu \\d+; running ${count(elsewhere(), 'running')}, stopped ${count(elsewhere(), 'stopped')}; templates \\d+\\); ${n} on unreachable nodes ${down} \\(last known: ${lastKnown}\\)$`,
      ),
    );
    // The node's own line: its guests' status is unknown, none counts as running.
    expect(s.nodes.find((x) => x.node === down)!.guests).toMatchObject({ total: n, running: 0, unknown: n });
    expect(
      lines
        .find((l) => l.startsWith(`${down} offline,STALE `))!
        .split(' ')
        .slice(-2),
    ).toEqual([String(n), 'unknown']);
  });

  it("top consumers leave the offline node's guests out, and a sort by usage puts them last, usage unknown", async () => {
    const { s, lines } = await ok<{
      top: { memory: Array<{ vmid: number; node: string; value: number }>; cpu: Array<{ node: string }> };
    }>('inventory_overview');
    const live = sql<{
      vmid: number;
      mem: number;
    }>(`SELECT g.vmid, m.mem FROM guests g JOIN guest_metrics m USING (cluster, vmid)
      WHERE g.deleted_at IS NULL AND g.stale = 0 AND m.mem > 0 ORDER BY m.mem DESC, g.vmid LIMIT 5`);
    expect(s.top.memory.map((t) => [t.vmid, t.value])).toEqual(live.map((r) => [r.vmid, r.mem]));
    expect(s.top.memory.map((t) => t.vmid)).not.toContain(topVmid);
    expect([...s.top.memory, ...s.top.cpu].every((t) => t.node !== down)).toBe(true);
    expect(lines.find((l) => l.startsWith('top memory used'))).not.toMatch(new RegExp(`\\b${topVmid}\\b`));

    const byMem = await ok<{ guests: Array<{ vmid: number; node: string; mem: number | null }>; total: number }>(
      'list_guests',
      { sort: 'mem', order: 'desc', limit: 500, fields: ['vmid', 'node', 'mem'] },
    );
    const n = onDown().length;
    expect(byMem.s.guests).toHaveLength(guests().length);
    expect(byMem.s.guests.slice(0, 5).map((g) => g.vmid)).toEqual(live.map((r) => r.vmid));
    // The stale ones come last, with no usage: what they use now is unknown.
    expect(byMem.s.guests.slice(-n).every((g) => g.node === down && g.mem === null)).toBe(true);
    expect(byMem.lines[0]).toMatch(new RegExp(`; ${n} stale \\(status unknown\\)`));
  });

  it("list_guests status=unknown lists exactly the offline node's guests, with their last known status, and says they are stale once", async () => {
    type Page = {
      guests: Array<{ vmid: number; node: string; status: string; lastKnownStatus?: string }>;
      total: number;
    };
    const { s, lines } = await ok<Page>('list_guests', { status: 'unknown', limit: 500 });
    expect(s.total).toBe(onDown().length);
    expect(s.guests.map((g) => g.vmid).sort((a, b) => a - b)).toEqual(
      onDown()
        .map((g) => g.vmid)
        .sort((a, b) => a - b),
    );
    for (const g of s.guests)
      expect(g).toMatchObject({
        node: down,
        status: 'unknown',
        lastKnownStatus: h.sim.cluster.guests.get(g.vmid)!.status,
      });
    const seen = sql<{ t: number }>(
      'SELECT DISTINCT last_seen_at AS t FROM guests WHERE node = ? AND deleted_at IS NULL',
      down,
    );
    expect(seen).toHaveLength(1);
    const at = new Date(seen[0]!.t).toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(lines[0]).toBe(
      `${onDown().length} of ${onDown().length} guests with status=unknown; all stale (node or cluster unreachable, or missing from the last read): status unknown, last seen ${at}`,
    );
    // Said once: the column is the last known status, and no row repeats it.
    expect(lines[1]).toBe('vmid name type node lastKnownStatus');
    expect(
      lines.slice(2).every((l) => /(running|stopped)$/.test(l) && !l.includes('unknown') && !l.includes('stale')),
    ).toBe(true);
    expect(lines.join('\n').match(/stale/g)).toHaveLength(1);

    // By node: the same page, said the same way.
    const byNode = await ok<Page>('list_guests', { node: down, limit: 500 });
    expect(byNode.s.total).toBe(onDown().length);
    expect(byNode.lines[0]).toMatch(/; all stale \(.*\): status unknown, last seen /);
    expect(byNode.lines[1]).toBe('vmid name type lastKnownStatus');

    // By last known status: the offline node's guests that were running.
    const wasRunning = await ok<Page>('list_guests', { lastKnownStatus: 'running', limit: 500 });
    expect(wasRunning.s.guests.map((g) => g.vmid).sort((a, b) => a - b)).toEqual(
      onDown()
        .filter((g) => g.status === 'running')
        .map((g) => g.vmid)
        .sort((a, b) => a - b),
    );
  });

  it('list_guests status=running lists only guests running now and says how many stale ones were running; a mixed page marks its stale rows', async () => {
    type Page = {
      guests: Array<{ vmid: number; node: string; status: string; lastKnownStatus?: string }>;
      total: number;
    };
    const running = await ok<Page>('list_guests', { status: 'running', limit: 500 });
    expect(running.s.guests.map((g) => g.vmid).sort((a, b) => a - b)).toEqual(
      elsewhere()
        .filter((g) => g.status === 'running')
        .map((g) => g.vmid)
        .sort((a, b) => a - b),
    );
    expect(running.s.total).toBe(count(elsewhere(), 'running'));
    const wasRunning = count(onDown(), 'running');
    expect(running.lines[0]).toContain(
      `; not listed: ${wasRunning} stale guests last seen running (status unknown now; lastKnownStatus=running lists them)`,
    );

    const all = await ok<Page>('list_guests', { limit: 500 });
    const staleRows = all.lines.slice(2).filter((l) => / unknown\((running|stopped)\)$/.test(l));
    expect(staleRows).toHaveLength(onDown().length);
    expect(staleRows.every((l) => l.split(' ')[3] === down)).toBe(true);
    expect(all.lines[0]).toContain(`; ${onDown().length} stale: status unknown(last known)`);
    for (const g of all.s.guests) {
      const sim = h.sim.cluster.guests.get(g.vmid)!;
      expect(g, String(g.vmid)).toEqual(
        g.node === down
          ? {
              cluster: 'lab',
              vmid: g.vmid,
              name: h.sim.cluster.name(sim),
              type: sim.type,
              node: down,
              status: 'unknown',
              lastKnownStatus: sim.status,
            }
          : {
              cluster: 'lab',
              vmid: g.vmid,
              name: h.sim.cluster.name(sim),
              type: sim.type,
              node: sim.node,
              status: sim.status,
            },
      );
    }
  });

  it('get_guest and search_inventory: status unknown with the last known one; usage only as last seen', async () => {
    const g = h.sim.cluster.guests.get(topVmid)!;
    const name = h.sim.cluster.name(g);
    const { s, lines } = await ok<{ guest: Row & { metrics: Row } }>('get_guest', { vmid: topVmid });
    const mem = sql<{ mem: number }>('SELECT mem FROM guest_metrics WHERE vmid = ?', topVmid)[0]!.mem;
    expect(s.guest).toMatchObject({
      status: 'unknown',
      lastKnownStatus: g.status,
      stale: true,
      mem: null,
      cpu: null,
      uptime: null,
      metrics: { mem },
    });
    expect(lines[0]).toMatch(
      new RegExp(`: ${g.type} on ${down}, status unknown \\(last known ${g.status}; STALE since \\d{4}-\\S+Z\\)`),
    );
    expect(lines[1]).toMatch(/ when last seen; memory .* when last seen/);

    const found = await ok<{ results: Array<{ vmid: number; status: string; lastKnownStatus?: string }> }>(
      'search_inventory',
      { query: name },
    );
    expect(found.s.results.find((r) => r.vmid === topVmid)).toMatchObject({
      status: 'unknown',
      lastKnownStatus: g.status,
    });
    const live = elsewhere().find((x) => x.type === 'qemu')!;
    const other = await ok<{ results: Array<{ vmid: number; status: string; lastKnownStatus?: string }> }>(
      'search_inventory',
      { query: String(live.vmid) },
    );
    expect(other.s.results[0]).toEqual(expect.objectContaining({ vmid: live.vmid, status: live.status }));
    expect(other.s.results[0]).not.toHaveProperty('lastKnownStatus');
  });

  it('find_capacity counts only guests running now as running allocation and says the offline node is stale', async () => {
    type Candidate = {
      node: string;
      stale: boolean;
      reasons: string[];
      cpus: { allocated: number; allocatedRunning: number };
      memory: { allocatedRunning: number };
    };
    const { s } = await ok<{ fits: Candidate[]; cannot: Candidate[] }>('find_capacity', { cores: 1, memoryGiB: 1 });
    const offline = s.cannot.find((c) => c.node === down)!;
    expect(offline).toMatchObject({
      stale: true,
      reasons: expect.arrayContaining(['node offline']),
      cpus: { allocatedRunning: 0 },
      memory: { allocatedRunning: 0 },
    });
    expect(offline.cpus.allocated).toBeGreaterThan(0); // what the node has promised still counts
    for (const c of [...s.fits, ...s.cannot].filter((x) => x.node !== down)) {
      const run = guests().filter((g) => g.node === c.node && g.status === 'running' && g.values.template !== '1');
      expect(c.stale).toBe(false);
      expect(c.cpus.allocatedRunning).toBe(run.reduce((sum, g) => sum + h.sim.cluster.maxcpu(g), 0));
    }
  });
});

describe('the cluster unreachable, then everything back', () => {
  it("a failed read: every guest's status is unknown, the overview says the whole inventory is last known", async () => {
    h.sim.setFaults({ errorRate: 1, errorStatus: 503 });
    await cycle(false);
    type Overview = {
      guests: { total: number; byStatus: Record<string, number>; unknown: Row };
      top: { memory: unknown[]; cpu: unknown[] };
    };
    const { s, lines } = await ok<Overview>('inventory_overview');
    const total = guests().length;
    expect(s.guests.byStatus).toEqual({ unknown: total });
    expect(s.guests.unknown).toMatchObject({
      total,
      lastKnown: tally(guests()),
      onUnreachableNodes: total,
      missingFromLastRead: 0,
    });
    expect(lines[1]).toMatch(new RegExp(`; ${total} on unreachable nodes pve1, pve2, pve3, pve4 \\(last known: `));
    expect(s.top).toEqual({ memory: [], cpu: [] });
    const unknown = await ok<{ total: number }>('list_guests', { status: 'unknown', limit: 1 });
    expect(unknown.s.total).toBe(total);
    expect((await ok<{ total: number }>('list_guests', { status: 'running' })).s.total).toBe(0);
    const capacity = await ok('find_capacity', { cores: 1, memoryGiB: 1, includeStale: true });
    expect(
      capacity.lines
        .slice(1)
        .filter((l) => !l.startsWith(`${down} `))
        .every((l) => l.includes(' at the last read, ')),
    ).toBe(true);
  });

  it('after the node comes back and the cluster answers, everything is current again', async () => {
    h.sim.setFaults({});
    h.sim.setNodeOnline(down, true);
    await cycle();
    type Overview = {
      guests: { byStatus: Record<string, number>; unknown: Row };
      top: { memory: Array<{ vmid: number }> };
      nodes: Array<{ node: string; guests: Row }>;
    };
    const { s, lines } = await ok<Overview>('inventory_overview');
    expect(s.guests.byStatus).toEqual(tally(guests()));
    expect(s.guests.unknown).toEqual({
      total: 0,
      lastKnown: {},
      onUnreachableNodes: 0,
      unreachableNodes: [],
      missingFromLastRead: 0,
    });
    expect(lines[1]).not.toMatch(/unreachable|unknown/);
    expect(s.top.memory[0]!.vmid).toBe(topVmid);
    expect(s.nodes.find((n) => n.node === down)!.guests).toMatchObject({
      running: count(onDown(), 'running'),
      unknown: 0,
    });
    const none = await ok<{ total: number }>('list_guests', { status: 'unknown' });
    expect(none.s.total).toBe(0);
    expect(none.lines[0]).toBe('no guest matches status=unknown');
    const page = await ok('list_guests', { node: down, limit: 500 });
    expect(page.text).not.toMatch(/stale|unknown/);
    const running = await ok<{ total: number }>('list_guests', { status: 'running', limit: 1 });
    expect(running.s.total).toBe(count(guests(), 'running'));
    expect(running.lines[0]).not.toContain('not listed');
    const g = await ok<{ guest: Row }>('get_guest', { vmid: topVmid });
    expect(g.s.guest).toMatchObject({
      status: h.sim.cluster.guests.get(topVmid)!.status,
      lastKnownStatus: null,
      stale: false,
      mem: expect.any(Number),
    });
  });
});
