/**
 * Answers about what happened and what the inventory cannot say, through the real SDK client
 * against a store synced from the simulator over HTTP: changes_since shows old → new values and
 * who (by Proxmox's task) made a change, folds a cluster's first sync into one line per cluster;
 * list_tasks names guests and says how far back each node's tasks go; get_guest, get_node and
 * list_tasks state what is not collected. Expectations come from the simulator and from SQL of
 * the test's own.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_LIMITS, INVENTORY_SCOPE, NODE_LIMITS } from '../../src/mcp/tools/shared.js';
import type { SimGuest } from '../../src/sim/state.js';
import { insertEvents, type NewEvent } from '../../src/store/events.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';
import { connectClient } from './connect.js';

let h: SyncHarness;
let client: Client;

const textOf = (r: CallToolResult): string => (r.content[0] as { text: string }).text;
async function ok<T>(name: string, args: Record<string, unknown> = {}): Promise<{ s: T; lines: string[] }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${textOf(r)}`).toBeFalsy();
  // The last line is the freshness every answer ends with.
  return { s: r.structuredContent as T, lines: textOf(r).split('\n').slice(0, -1) };
}
const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];
const cycle = async (): Promise<void> => {
  expect((await h.sync.runCycle()).ok).toBe(true);
};
/** `2025-01-02T03:04:05.678Z` → `2025-01-02T03:04:05Z`, as the answers write times. */
const short = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const guests = (): SimGuest[] => [...h.sim.cluster.guests.values()];
const plainQemu = (): SimGuest[] =>
  guests().filter((g) => g.type === 'qemu' && !g.values.template && !g.values.lock && !g.ha);

type Event = { seq: number; type: string; subject: { id: string }; data: Record<string, unknown>; task?: unknown };
type Folded = { cluster: string; events: number; types: Record<string, number>; from: string; to: string };
type Events = { events: Event[]; nextSeq: number; hasMore: boolean; folded?: Folded[] };

beforeAll(async () => {
  h = await startHarness({ guests: 60, nodes: 3, seed: 7 });
  await cycle();
  client = await connectClient(h.store, 'answer-history');
}, 30_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

describe('changes_since: old → new, and who did it', () => {
  it('a config edit shows each changed key old → new, a property string only the parts that changed', async () => {
    const g = plainQemu().find((x) => x.values.net0?.includes(',bridge=vmbr0,'))!;
    const memoryBefore = Number(g.values.memory);
    const net0 = g.values.net0!;
    const seq = h.lastSeq();
    h.sim.updateGuest(g.vmid, {
      config: { net0: net0.replace('bridge=vmbr0', 'bridge=vmbr1'), memory: String(memoryBefore * 2) },
    });
    await cycle();
    const { s, lines } = await ok<Events>('changes_since', { afterSeq: seq });
    expect(s.events.map((e) => [e.type, e.subject.id])).toEqual([['guest.updated', `lab/${g.vmid}`]]);
    const gib = (mib: number): string => `${mib / 1024}G`;
    // maxmem in sizes; the config's memory key is said once, by memoryMib; the NICs by the net0 key,
    // and that by the part that changed (one cell each, quoted: `=` is not a plain token).
    expect(lines[1]).toMatch(
      new RegExp(
        `^\\S+Z guest\\.updated lab/${g.vmid} maxmem ${gib(memoryBefore)}→${gib(memoryBefore * 2)}; memoryMib ${memoryBefore}→${memoryBefore * 2}; config net0 …"bridge=vmbr0"→…"bridge=vmbr1"$`,
      ),
    );
    // The UI edit left an `update VM` line in the cluster log, not a task: no "by" is claimed.
    expect(s.events[0]!.task).toBeUndefined();
  });

  it("a change a Proxmox task made names the task's user and start; a change no task made names none", async () => {
    const [edited, stopped] = plainQemu().filter((x) => x.status === 'running');
    const seq = h.lastSeq();
    // A config edit through the API's async POST: a qmconfig task by alice, then the config.
    const upid = h.sim.cluster.startTask(edited!.node, 'qmconfig', edited!.vmid, 'alice@pve', () => ({}), 0);
    h.sim.updateGuest(edited!.vmid, { config: { cores: String(Number(edited!.values.cores ?? 1) + 1) }, silent: true });
    // A start task on the other guest, then a stop that no task made (the OS shut itself down):
    // the start is in the time window but cannot have stopped it.
    h.sim.cluster.startTask(stopped!.node, 'qmstart', stopped!.vmid, 'bob@pve', () => ({}), 0);
    h.sim.updateGuest(stopped!.vmid, { status: 'stopped', silent: true });
    await cycle();

    const { s, lines } = await ok<Events>('changes_since', { afterSeq: seq });
    const started = sql<{ starttime: number }>('SELECT starttime FROM tasks WHERE upid = ?', upid)[0]!.starttime;
    const update = s.events.find((e) => e.type === 'guest.updated')!;
    expect(update.task).toEqual({
      upid,
      type: 'qmconfig',
      user: 'alice@pve',
      startedAt: new Date(started * 1000).toISOString(),
      endedAt: expect.any(String),
    });
    expect(lines.find((l) => l.includes(' guest.updated '))).toMatch(
      new RegExp(`; by alice@pve \\(qmconfig started ${short(started * 1000)}\\)$`),
    );
    const stop = s.events.find((e) => e.type === 'guest.status_changed')!;
    expect(stop.subject.id).toBe(`lab/${stopped!.vmid}`);
    expect(stop.task).toBeUndefined();
    expect(lines.find((l) => l.includes(' guest.status_changed '))).toMatch(/ running→stopped$/);
  });

  it("a cluster's first sync is one line per cluster unless includeInitial; pages never count it twice", async () => {
    const seq = h.lastSeq();
    // Events as the first sync of a cluster marks them (data.initial), with the summary event.
    const created = (cluster: string, vmid: number): NewEvent => ({
      type: 'guest.created',
      cluster,
      subject: { kind: 'guest', id: `${cluster}/${vmid}` },
      data: { vmid, type: 'qemu', node: 'pve1', name: `imported-${vmid}`, status: 'running', initial: true },
    });
    const nodeSeen = (cluster: string, node: string): NewEvent => ({
      type: 'node.status_changed',
      cluster,
      subject: { kind: 'node', id: `${cluster}/${node}` },
      data: { from: null, to: 'online', initial: true },
    });
    const imported = {
      type: 'cluster.imported',
      cluster: 'far',
      subject: { kind: 'cluster', id: 'far' },
      data: { guests: 40, nodes: 3, storage: 5, initialEvents: 43, initial: true },
    } as unknown as NewEvent; // the type the sync's import adds
    const at = Date.now();
    h.store.write(() => {
      insertEvents(
        h.store,
        [
          ...Array.from({ length: 40 }, (_, i) => created('far', 7000 + i)),
          ...['pve1', 'pve2', 'pve3'].map((n) => nodeSeen('far', n)),
          imported,
          created('near', 8000),
          created('near', 8001),
          // A later change is news, whatever cluster it is in.
          {
            type: 'guest.status_changed',
            cluster: 'far',
            subject: { kind: 'guest', id: 'far/7000' },
            data: { vmid: 7000, from: 'running', to: 'stopped' },
          },
        ],
        at,
      );
    });
    const ids = sql<{ seq: number; type: string; cluster: string; initial: number | null }>(
      "SELECT seq, type, cluster, json_extract(data, '$.initial') AS initial FROM events WHERE seq > ? ORDER BY seq",
      seq,
    );
    expect(ids).toHaveLength(47);

    const { s, lines } = await ok<Events>('changes_since', {
      afterSeq: seq,
    });
    expect(s.events.map((e) => e.type)).toEqual(['cluster.imported', 'guest.status_changed']);
    expect(s.folded).toEqual([
      {
        cluster: 'far',
        events: 43,
        types: { 'guest.created': 40, 'node.status_changed': 3 },
        from: expect.any(String),
        to: expect.any(String),
      },
      { cluster: 'near', events: 2, types: { 'guest.created': 2 }, from: expect.any(String), to: expect.any(String) },
    ]);
    expect(lines).toEqual([
      `2 events; next poll: afterSeq ${ids.at(-1)!.seq}`,
      // A cluster with its summary event on the page says its fold there; one without, on a line of its own.
      `${short(at)} first sync of near: 2 events folded (guest.created 2); includeInitial lists them`,
      `${short(at)} cluster.imported far first sync: guests 40, nodes 3, storage 5; 43 events folded (guest.created 40, node.status_changed 3); includeInitial lists them`,
      `${short(at)} guest.status_changed far/7000 running→stopped`,
    ]);

    const all = await ok<Events>('changes_since', { afterSeq: seq, includeInitial: true });
    expect(all.s.events.map((e) => e.seq)).toEqual(ids.map((r) => r.seq));
    expect(all.s.folded).toBeUndefined();

    // Page by page: each page folds only the events up to its nextSeq, so the counts add up once.
    let after = seq;
    const folded: Record<string, number> = {};
    const listed: string[] = [];
    for (let page = 0; page < 10; page++) {
      const p = await ok<Events>('changes_since', {
        afterSeq: after,
        limit: 1,
      });
      for (const f of p.s.folded ?? []) folded[f.cluster] = (folded[f.cluster] ?? 0) + f.events;
      listed.push(...p.s.events.map((e) => e.type));
      after = p.s.nextSeq;
      if (!p.s.hasMore) break;
    }
    expect(folded).toEqual({ far: 43, near: 2 });
    expect(listed).toEqual(['cluster.imported', 'guest.status_changed']);

    // By type and time too: the fold counts what the filter selects.
    const createdOnly = await ok<Events>('changes_since', {
      since: '1h',
      types: ['guest.created'],
      subject: 'far/',
    });
    expect(createdOnly.s.events).toEqual([]);
    expect(createdOnly.s.folded!.map((f) => [f.cluster, f.events])).toEqual([['far', 40]]);
  });

  it('only the flag marks a first-sync event: text from Proxmox that spells it does not, nor a row that is not JSON', async () => {
    const seq = h.lastSeq();
    const g = plainQemu()[0]!;
    const spelled = 'copied from "initial":true, {"initial":true}';
    h.sim.updateGuest(g.vmid, { config: { description: spelled } });
    await cycle();
    h.store.sqlite
      .prepare(
        "INSERT INTO events (id, type, occurred_at, cluster, subject_kind, subject_id, data) VALUES ('evt_tampered', 'guest.updated', ?, 'lab', 'guest', 'lab/1', 'not json')",
      )
      .run(Date.now());
    const { s } = await ok<Events>('changes_since', { afterSeq: seq });
    expect(s.events.map((e) => [e.type, e.subject.id])).toEqual([
      ['guest.updated', `lab/${g.vmid}`],
      ['guest.updated', 'lab/1'],
    ]);
    expect(s.events[0]!.data.changes).toMatchObject({ description: { to: spelled } });
    expect(s.events[1]!.data).toEqual({ value: 'not json' });
    expect(s.folded).toBeUndefined();
  });
});

describe('list_tasks: guest names and how far back the tasks go', () => {
  it("names each task's guest, and per node the oldest task kept", async () => {
    const { s, lines } = await ok<{
      tasks: Array<{ vmid: number | null; guestName: string | null; node: string }>;
      window: Array<{ cluster: string; node: string; oldest: string | null; tasks: number }>;
    }>('list_tasks', { cluster: 'lab', limit: 500 });
    const names = new Map(
      sql<{ vmid: number; name: string }>('SELECT vmid, name FROM guests').map((r) => [r.vmid, r.name]),
    );
    expect(s.tasks.length).toBeGreaterThan(0);
    for (const t of s.tasks) expect(t.guestName).toBe(t.vmid == null ? null : (names.get(t.vmid) ?? null));
    expect(lines[0]).toBe('start type guest name node took outcome exitstatus');
    const withGuest = s.tasks.findIndex((t) => t.vmid != null);
    expect(lines[1 + withGuest]!.split(' ').slice(2, 4)).toEqual([
      String(s.tasks[withGuest]!.vmid),
      s.tasks[withGuest]!.guestName,
    ]);

    const want = sql<{ node: string; oldest: number | null; n: number }>(
      `SELECT n.node, min(t.starttime) AS oldest, count(t.upid) AS n FROM nodes n
       LEFT JOIN tasks t ON t.cluster = n.cluster AND t.node = n.node WHERE n.cluster = 'lab' GROUP BY n.node ORDER BY n.node`,
    );
    expect(s.window).toEqual(
      want.map((w) => ({
        cluster: 'lab',
        node: w.node,
        oldest: w.oldest == null ? null : new Date(w.oldest * 1000).toISOString(),
        tasks: w.n,
      })),
    );
    expect(lines.at(-1)).toBe(
      `tasks known since (oldest kept per node): ${want.map((w) => `${w.node} ${w.oldest == null ? 'none seen' : short(w.oldest * 1000)}`).join(', ')}; anything older is not known, so a task not listed may still have run before`,
    );
  });

  it('no task found says how far back the search went, so it never reads as "never happened"', async () => {
    const quiet = guests().find((g) => !sql('SELECT 1 FROM tasks WHERE vmid = ?', g.vmid).length)!;
    const { s, lines } = await ok<{ tasks: unknown[] }>('list_tasks', { vmid: quiet.vmid });
    expect(s.tasks).toEqual([]);
    expect(lines[0]).toBe('no task matches');
    expect(lines[1]).toMatch(/^tasks known since \(oldest kept per node\): pve1 /);
  });
});

describe('honest limits: what the inventory does not hold is said where an agent would look', () => {
  it('get_guest: current values only, no metric history; nothing from inside the guest; no backup contents', async () => {
    const g = guests().find((x) => x.status === 'running')!;
    const { s, lines } = await ok<{ guest: { limits: string } }>('get_guest', { vmid: g.vmid });
    expect(lines[1]).toMatch(/ \(current values only; no history is kept\)$/);
    expect(lines.at(-1)).toBe(GUEST_LIMITS);
    expect(GUEST_LIMITS).toMatch(/metric history/);
    expect(GUEST_LIMITS).toMatch(/processes, services or files inside the guest/);
    expect(GUEST_LIMITS).toMatch(/backup contents/);
    expect(s.guest.limits).toBe(GUEST_LIMITS);
  });

  it('get_node: its cpu and memory use are the last read, no history', async () => {
    const { s, lines } = await ok<{ node: { limits: string } }>('get_node', { node: 'pve1' });
    expect(lines.at(-1)).toBe("cpu and memory use are the last read's values; no history is kept");
    expect(s.node.limits).toBe(NODE_LIMITS);
  });

  it('list_tasks: a backup task says a backup ran, not what it holds', async () => {
    const g = guests()[0]!;
    h.sim.cluster.startTask(g.node, 'vzdump', g.vmid, 'root@pam', () => ({}), 0);
    await cycle();
    const { lines } = await ok('list_tasks', { vmid: g.vmid });
    expect(lines).toContain(
      'a vzdump task says a backup ran, not what the backup holds: backup contents are not collected',
    );
    const other = await ok('list_tasks', { onlyFailed: true });
    expect(other.lines.join('\n')).not.toMatch(/backup contents/);
  });

  it('the server instructions say in two lines what the inventory holds and what it does not', () => {
    const [holds, lacks] = client.getInstructions()!.split('\n').slice(-2);
    expect([holds, lacks].join('\n')).toBe(INVENTORY_SCOPE);
    expect(holds).toMatch(/^Holds: .*guests.*disks, NICs, IPs.*change events.*tasks/);
    expect(lacks).toMatch(
      /^Does not hold: metric history .*backup contents .*processes, services or files inside guests/,
    );
  });
});
