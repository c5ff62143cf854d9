/**
 * Hostile text in the inventory: a store synced from the simulator into a real SQLite file, then
 * rewritten so that every text Proxmox gives (node, storage, lock, ostype, bridge, IP, MAC, status,
 * tags, pool, task types and errors, event data, snapshot labels, cluster identities and versions,
 * a node's kernel and CPU model, the config read models' volumes, bridges, MACs and addresses)
 * holds newlines, `|`, spaces, bidirectional controls, zero-width and tag characters: what a
 * tampered cluster, a future Proxmox or a hand-edited database could hold. Every tool's text must
 * keep one line per row (counted from its own structured answer) and show none of those
 * characters raw.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allTools } from '../../src/mcp/tools/index.js';
import { listGuestsTool } from '../../src/mcp/tools/list-guests.js';
import { insertEvents } from '../../src/store/events.js';
import { takeSnapshot, type SnapshotInfo } from '../../src/store/snapshots.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';
import { connectClient } from './connect.js';

/** Characters no answer may show raw: controls other than the line breaks we put, and the invisible ones. */
const RAW =
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF\uFFF9-\uFFFB]|[\u{E0000}-\u{E007F}]/u;

/** A value that tries everything at once; `k` keeps values apart. */
const evil = (k: string): string => `${k}\n|x y\u202Egnp.exe\u2066\u200B\uFEFF\u0085\u2028\r\t\u{E0041}\u061C\u200E|`;
/** A node name short enough to be asked for (text(63), trimmed): still a newline, a `|` and bidi. */
const NODE = 'pve\u202E1\n|\u200Bz';
const STORAGE = 'local\n|\u2067lvm';

let h: SyncHarness;
let client: Client;
let snapA: SnapshotInfo;
let target: number;

const run = (query: string, ...params: unknown[]): void => void h.store.sqlite.prepare(query).run(...params);
const sql = <T>(query: string, ...params: unknown[]): T[] => h.store.sqlite.prepare(query).all(...params) as T[];

beforeAll(async () => {
  h = await startHarness({ guests: 16, nodes: 2, seed: 7 });
  expect((await h.sync.runCycle()).ok).toBe(true);
  snapA = takeSnapshot(h.store, { label: 'plain' });

  // The guest that gets every hostile value: one on pve1 with disks and NICs.
  target = sql<{ vmid: number }>(
    "SELECT vmid FROM guests WHERE node = 'pve1' AND type = 'qemu' AND nics IS NOT NULL AND nics <> '[]' ORDER BY vmid LIMIT 1",
  )[0]!.vmid;
  const disks = JSON.stringify([{ key: evil('key'), storage: STORAGE, volume: evil('vol'), media: evil('media') }]);
  const nics = JSON.stringify([
    {
      key: evil('net'),
      model: evil('model'),
      mac: evil('mac'),
      bridge: evil('bridge'),
      vlan: 5,
      firewall: true,
      ip: evil('ip'),
      ip6: evil('ip6'),
    },
  ]);
  run(
    `UPDATE guests SET name = ?, lock = ?, ostype = ?, hastate = ?, pool = ?, tags = ?, description = ?, disks = ?, nics = ?
     WHERE vmid = ?`,
    evil('name'),
    evil('lock'),
    evil('ostype'),
    evil('ha'),
    evil('pool'),
    JSON.stringify([evil('tag1'), evil('tag2')]),
    evil('description'),
    disks,
    nics,
    target,
  );
  // The read models of its config, as the tools read them (fields, countBy, search).
  run('UPDATE guest_disks SET storage = ?, volume = ? WHERE vmid = ?', STORAGE, evil('vol'), target);
  run('UPDATE guest_nics SET bridge = ?, mac = ? WHERE vmid = ?', evil('bridge'), evil('mac'), target);
  run('UPDATE guest_addresses SET address = ? WHERE vmid = ?', evil('ip'), target);
  run("UPDATE guest_facets SET value = ? WHERE vmid = ? AND facet = 'bridge'", evil('bridge'), target);
  // Another guest with a status Proxmox never sends, counted as such by the read model too.
  const other = sql<{ vmid: number; node: string; type: string; status: string }>(
    'SELECT vmid, node, type, status FROM guests WHERE vmid <> ? ORDER BY vmid LIMIT 1',
    target,
  )[0]!;
  run('UPDATE guests SET status = ?, name = ? WHERE vmid = ?', evil('status'), evil('other'), other.vmid);
  const statColumns = sql<{ name: string }>('PRAGMA table_info(guest_stats)').map((c) => c.name);
  const statValues = statColumns.map((c) =>
    ['cluster', 'node', 'type'].includes(c) ? c : c === 'status' ? '?' : c === 'guests' ? '1' : '0',
  );
  run(
    `INSERT INTO guest_stats (${statColumns.join(', ')}) SELECT ${statValues.join(', ')}
     FROM guest_stats WHERE node = ? AND type = ? AND status = ? LIMIT 1`,
    evil('stat'),
    other.node,
    other.type,
    other.status,
  );

  // pve1 renamed everywhere a node name is kept, and made stale (so the freshness line names it).
  for (const table of ['nodes', 'guests', 'storage', 'guest_stats', 'tasks'])
    run(`UPDATE ${table} SET node = ? WHERE node = 'pve1'`, NODE);
  run('UPDATE nodes SET stale = 1, ip = ?, status = ? WHERE node = ?', evil('ip'), evil('nodestatus'), NODE);
  run('UPDATE nodes SET online = 1 WHERE node = ?', NODE);
  run(
    'UPDATE nodes SET kernel = ?, pve_version = ?, cpu_model = ?, loadavg1 = 1, status_read_at = ? WHERE node = ?',
    evil('kernel'),
    evil('pvever'),
    evil('cpu'),
    Date.now(),
    NODE,
  );
  run(
    "UPDATE storage SET storage = ?, plugintype = ?, content = ?, status = ? WHERE storage = 'local-lvm'",
    STORAGE,
    evil('plugin'),
    JSON.stringify(['images', evil('content')]),
    'available',
  );
  run(
    'UPDATE storage SET status = ? WHERE rowid = (SELECT min(rowid) FROM storage WHERE storage <> ?)',
    evil('st'),
    STORAGE,
  );

  // Two tasks as the sync records them, with hostile type, node, user, outcome and exit status.
  const insertTask = h.store.sqlite.prepare(
    `INSERT INTO tasks (cluster, upid, node, type, object_id, vmid, user, starttime, endtime, exitstatus, outcome, seen_at)
     VALUES ('lab', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const at = Math.floor(Date.now() / 1000);
  insertTask.run(
    'UPID:1',
    NODE,
    evil('tasktype'),
    String(target),
    target,
    evil('user'),
    at - 60,
    at - 50,
    evil('exit'),
    'error',
    Date.now(),
  );
  insertTask.run(
    'UPID:2',
    NODE,
    'qmstart',
    String(target),
    target,
    'root@pam',
    at - 40,
    at - 30,
    'OK',
    evil('outcome'),
    Date.now(),
  );

  // The cluster: its version, its signal problems and another cluster answering at its URL.
  const identity = (name: string) => ({ clusterName: evil(name), nodes: { [NODE]: 1, [evil('member')]: 2 } });
  run(
    'UPDATE clusters SET pve_version = ?, signal_problems = ?, identity_changed = ? WHERE name = ?',
    evil('9.1'),
    JSON.stringify({ [evil('signal')]: evil('problem') }),
    JSON.stringify({ expected: identity('old'), seen: identity('new'), since: evil('since') }),
    'lab',
  );
  // A second cluster whose syncs fail with hostile errors.
  run(
    "INSERT INTO clusters (name, stale, consecutive_failures, last_error, last_attempt_at, pve_version) VALUES ('edge', 1, 3, ?, ?, ?)",
    evil('error'),
    Date.now(),
    evil('ver'),
  );

  // Events with hostile data, subjects and types, and a snapshot with a hostile label.
  h.store.write(() =>
    insertEvents(
      h.store,
      [
        {
          type: 'guest.created',
          cluster: 'lab',
          subject: { kind: 'guest', id: evil('lab/1') },
          data: { name: evil('n'), type: evil('t'), node: NODE, status: evil('s') },
        },
        {
          type: 'guest.updated',
          cluster: 'lab',
          subject: { kind: 'guest', id: `lab/${target}` },
          data: {
            changes: {
              name: { from: evil('a'), to: evil('b') },
              [evil('field')]: { from: 1, to: 2 },
              config: { [evil('cfgkey')]: { from: 'a', to: 'b' } },
            },
          },
        },
        {
          type: 'guest.migrated',
          cluster: 'lab',
          subject: { kind: 'guest', id: 'lab/1' },
          data: { from: NODE, to: evil('to') },
        },
        {
          type: 'cluster.sync_failed',
          cluster: 'edge',
          subject: { kind: 'cluster', id: 'edge' },
          data: { error: evil('e') },
        },
        {
          type: 'snapshot.created',
          cluster: null,
          subject: { kind: 'snapshot', id: '1' },
          data: { id: evil('id'), label: evil('label') },
        },
        { type: evil('type') as 'guest.created', cluster: 'lab', subject: { kind: 'guest', id: 'lab/2' }, data: {} },
      ],
      Date.now(),
    ),
  );
  takeSnapshot(h.store, { label: 'second' });
  run('UPDATE inventory_snapshots SET label = ? WHERE id = ?', evil('snaplabel'), snapA.id);

  client = await connectClient(h.store, 'hostile-test');
}, 30_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

type S = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each test reads its tool's fields

/** The answer's text and structured content; the text shows nothing raw, and its last line is the freshness. */
async function answer(name: string, args: Record<string, unknown> = {}): Promise<{ lines: string[]; s: S }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r.content[0] as { text: string }).text;
  expect(r.isError, `${name}: ${text}`).toBeFalsy();
  expect(text, `${name} shows a raw control or invisible character`).not.toMatch(RAW);
  const lines = text.split('\n');
  expect(lines.at(-1)).toMatch(/^as of \S+.*; stale: .*node "lab\/pve\\u202e1\\n\|\\u200bz"/);
  return { lines: lines.slice(0, -1), s: r.structuredContent as S };
}

describe('hostile Proxmox text in every tool', () => {
  const seen = new Set<string>();
  afterAll(() => {
    // Each tool was asked at least once.
    expect([...seen].sort()).toEqual(allTools.map((t) => t.name).sort());
  });
  const ask = async (name: string, args: Record<string, unknown> = {}): Promise<{ lines: string[]; s: S }> => {
    seen.add(name);
    return answer(name, args);
  };

  it('list_guests: a line per guest, with every field', async () => {
    const all = listGuestsTool.input.shape.fields.unwrap().element.options;
    const { lines, s } = await ask('list_guests', { limit: 500, fields: all });
    expect(lines).toHaveLength(2 + s.guests.length);
    expect(s.guests.length).toBe(sql<{ n: number }>('SELECT count(*) AS n FROM guests')[0]!.n);
    const row = lines.find((l) => l.startsWith(`${target} `))!;
    expect(row).toContain(
      '"name\\n|x y\\u202egnp.exe\\u2066\\u200b\\ufeff\\u0085\\u2028\\r\\t\\udb40\\udc41\\u061c\\u200e|"',
    );
    const onNode = await ask('list_guests', { node: NODE });
    expect(onNode.lines[0]).toMatch(/ with node="pve\\u202e1\\n\|\\u200bz"$/);
    expect(onNode.lines).toHaveLength(2 + onNode.s.guests.length);
  });

  it('list_guests: the config facts and countBy, a cell and a line each', async () => {
    const facts = await ask('list_guests', {
      name: 'name*',
      fields: ['vmid', 'storages', 'bridges', 'macs', 'ips', 'diskBytes'],
    });
    expect(facts.lines).toHaveLength(3);
    expect(facts.lines[2]).toMatch(new RegExp(`^${target} "local\\\\n\\|\\\\u2067lvm:\\w+" "bridge\\\\n`));
    const counted = await ask('list_guests', { countBy: 'bridge', type: 'qemu' });
    expect(counted.lines).toHaveLength(2 + counted.s.groups.length);
    expect(counted.lines.some((l) => l.startsWith('"bridge\\n|x y'))).toBe(true);
    // No space in the query: a volume name holds none, so a query with one skips the volume scan.
    const found = await ask('search_inventory', { query: 'y\u202Egnp.exe' });
    expect(found.lines).toHaveLength(2 + found.s.results.length);
    expect(found.lines.find((l) => l.startsWith(`${target} `))).toMatch(/ volume "\w+ vol\\n\|x y/);
  });

  it('get_guest: its lines, a disk and a NIC a line', async () => {
    const { lines, s } = await ask('get_guest', { vmid: target });
    const g = s.guest;
    const expected =
      3 + g.disks.length + g.nics.length + 1 + 1 + (g.recentTasks.length ? 1 : 0) + (g.recentEvents.length ? 1 : 0) + 1; // + the snapshots line
    expect(lines).toHaveLength(expected);
    expect(lines[0]).toContain(', locked ("lock\\n|x y');
    expect(lines.find((l) => l.startsWith('nic '))).toMatch(/ bridge "bridge\\n\|x y.* ip "ip\\n/);
    const miss = await client.callTool({ name: 'get_guest', arguments: { name: 'other' } });
    expect((miss.content as Array<{ text: string }>)[0]!.text).not.toMatch(RAW);
  });

  it('list_nodes, get_node and list_storage: a line per node and per storage', async () => {
    const nodes = await ask('list_nodes');
    // The columns, a line per node, and when the node status was read.
    expect(nodes.lines).toHaveLength(1 + nodes.s.nodes.length + 1);
    expect(nodes.lines.find((l) => l.startsWith('"pve'))).toMatch(/ "pvever\\n\|x y.* "kernel\\n\|x y/);
    const node = await ask('get_node', { node: NODE });
    expect(node.lines).toHaveLength(4 + 1 + 1 + node.s.node.storage.length + 1);
    expect(node.lines[4]).toMatch(/^status read .* kernel "kernel\\n\|x y.*; cpu "cpu\\n\|x y/);
    expect(node.lines[0]).toMatch(/^"lab\/pve\\u202e1\\n\|\\u200bz": "nodestatus\\n/);
    const storage = await ask('list_storage');
    expect(storage.lines).toHaveLength(1 + storage.s.storage.length);
    const miss = await client.callTool({ name: 'get_node', arguments: { node: 'pve9' } });
    const text = (miss.content as Array<{ text: string }>)[0]!.text;
    expect(text).not.toMatch(RAW);
    expect(text.split('\n')).toHaveLength(1);
  });

  it('find_capacity: a line per node, also on a hostile storage', async () => {
    const any = await ask('find_capacity', { cores: 1, memoryGiB: 1, diskGiB: 1, includeStale: true });
    expect(any.lines).toHaveLength(1 + any.s.fits.length + any.s.cannot.length);
    const named = await ask('find_capacity', { cores: 1, memoryGiB: 1, diskGiB: 1, storage: STORAGE });
    expect(named.lines).toHaveLength(1 + named.s.fits.length + named.s.cannot.length);
    expect(named.lines[0]).toContain(' on "local\\n|\\u2067lvm";');
  });

  it('search_inventory: a line per match', async () => {
    const { lines, s } = await ask('search_inventory', { query: 'x y', limit: 200 });
    expect(s.results.length).toBeGreaterThan(0);
    expect(lines).toHaveLength(2 + s.results.length);
  });

  it('changes_since: a line per event', async () => {
    const { lines, s } = await ask('changes_since', { afterSeq: 0, limit: 1000 });
    expect(s.events.length).toBeGreaterThan(6);
    expect(lines).toHaveLength(1 + s.events.length);
    expect(lines.some((l) => l.includes(' "type\\n|x y'))).toBe(true);
  });

  it("a miss echoes the caller's text with its invisible characters escaped", async () => {
    const hostile = 'x\u202Egnp.exe\u2066\n|';
    const misses: Array<[string, Record<string, unknown>]> = [
      ['get_guest', { name: hostile }],
      ['get_node', { node: hostile }],
      ['list_guests', { cluster: hostile }],
      ['list_guests', { node: hostile }],
      ['find_capacity', { cores: 1, memoryGiB: 1, storage: hostile }],
      ['changes_since', { since: hostile }],
      ['changes_since', { since: '1h', types: [hostile] }],
    ];
    for (const [name, args] of misses) {
      const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
      const text = (r.content[0] as { text: string }).text;
      expect(r.isError, `${name} ${JSON.stringify(args)}: ${text}`).toBe(true);
      expect(text, `${name} ${JSON.stringify(args)}`).not.toMatch(RAW);
      expect(text, `${name} ${JSON.stringify(args)}`).toContain('"x\\u202egnp.exe\\u2066\\n|"');
    }
  });

  it('list_snapshots and diff_snapshots: a line per snapshot and per change', async () => {
    const list = await ask('list_snapshots');
    expect(list.lines).toHaveLength(1 + list.s.snapshots.length);
    const diff = await ask('diff_snapshots', { from: snapA.id });
    const c = diff.s.counts;
    const changes = c.added + c.removed + c.changed + c.nodesAdded + c.nodesRemoved + c.nodesChanged;
    expect(changes).toBeGreaterThan(3);
    expect(diff.lines).toHaveLength(1 + Math.min(changes, 50) + (changes > 50 ? 1 : 0));
  });

  it('list_tasks: a line per task', async () => {
    const { lines, s } = await ask('list_tasks', { limit: 500 });
    expect(s.tasks.length).toBe(2);
    expect(lines).toHaveLength(1 + s.tasks.length + 1); // and the line saying how far back each node's tasks go
    expect(lines.slice(1, -1).filter((l) => l.includes(' "pve\\u202e1\\n|\\u200bz" '))).toHaveLength(2);
  });

  it('inventory_overview: the lines its structured answer accounts for', async () => {
    const { lines, s } = await ask('inventory_overview');
    const p = s.problems;
    const issues =
      p.staleClusters.length +
      (p.staleNodes.length ? 1 : 0) +
      p.otherCluster.length +
      p.failedSyncs.length +
      p.signalProblems.length +
      p.fullStorage.length +
      (p.locked.total ? 1 : 0);
    expect(p.otherCluster).toHaveLength(1);
    expect(p.signalProblems).toHaveLength(1);
    expect(p.failedSyncs).toHaveLength(1);
    const nodeLines = s.nodes.length ? 1 + Math.min(s.nodes.length, 20) + (s.nodes.length > 20 ? 1 : 0) : 0;
    // Clusters, guests, filter values, nodes, top memory and cpu, problems.
    expect(lines).toHaveLength(s.clusters.length + 1 + 1 + 1 + nodeLines + 2 + 1 + Math.max(issues, 1));
  });

  it('sync_status: a line per cluster, and a line per note', async () => {
    const { lines, s } = await ask('sync_status');
    const identity = s.clusters.filter((c: S) => c.identityChanged).length;
    const signals = s.clusters.reduce((n: number, c: S) => n + Object.keys(c.signalProblems).length, 0);
    expect(identity).toBe(1);
    expect(lines).toHaveLength(1 + s.clusters.length + (identity ? 1 + identity : 0) + (signals ? 1 + signals : 0));
  });
});
