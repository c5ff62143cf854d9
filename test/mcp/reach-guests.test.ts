/**
 * list_guests and search_inventory reach the parsed config (issue 10), through the real SDK client
 * against a 10,000-guest inventory the sync built from the simulator (protection on critical
 * guests, an ISO in some VMs, one node offline so its guests are stale) plus a 300-guest second
 * cluster. Every expectation comes from SQL of the test's own over the guest rows and their config
 * JSON, never from the read models (guest_facets, guest_disks…) the tools read.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

type Row = Record<string, unknown>;
type Args = Record<string, string | number | boolean>;

let h: SyncHarness;
let beta: Simulator;
let client: Client;
const GiB = 2 ** 30;

const textOf = (r: CallToolResult): string => (r.content[0] as { text: string }).text;
async function call<T = Row>(name: string, args: Row): Promise<{ s: T; text: string }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)}: ${textOf(r)}`).toBeFalsy();
  return { s: r.structuredContent as T, text: textOf(r) };
}
async function miss(name: string, args: Row): Promise<string> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} ${JSON.stringify(args)} should miss: ${textOf(r)}`).toBe(true);
  return textOf(r);
}
const sql = <T = Row>(query: string, params: Row = {}): T[] => h.store.sqlite.prepare(query).all(params) as T[];

/** The test's own reading of list_guests' filters: conditions on a guest row `g` and its config JSON. */
function expectedWhere(a: Args): { where: string; params: Row } {
  const w = ['g.deleted_at IS NULL'];
  const params: Row = {};
  const add = (cond: string, name?: string, value?: unknown): void => {
    w.push(cond);
    if (name) params[name] = typeof value === 'boolean' ? Number(value) : value;
  };
  const inJson = (list: string, path: string, name: string, value: unknown): void =>
    add(
      `EXISTS (SELECT 1 FROM json_each(g.${list}) j WHERE json_extract(j.value, '$.${path}') = @${name})`,
      name,
      value,
    );
  if (a.cluster !== undefined) add('g.cluster = @cluster', 'cluster', a.cluster);
  if (a.node !== undefined) add('g.node = @node', 'node', a.node);
  if (a.type !== undefined) add('g.type = @type', 'type', a.type);
  if (a.status !== undefined)
    add(`CASE WHEN g.stale = 1 THEN 'unknown' ELSE g.status END = @status`, 'status', a.status);
  if (a.lastKnownStatus !== undefined) add('g.stale = 1 AND g.status = @lk', 'lk', a.lastKnownStatus);
  if (a.pool !== undefined) add('g.pool = @pool', 'pool', a.pool);
  if (a.template !== undefined) add('g.template = @template', 'template', a.template);
  if (a.tag !== undefined)
    add('EXISTS (SELECT 1 FROM json_each(g.tags) t WHERE lower(t.value) = lower(@tag))', 'tag', a.tag);
  if (a.name !== undefined) add('g.name GLOB @glob', 'glob', a.name);
  if (a.minMemoryGiB !== undefined) add('g.maxmem >= @minMem', 'minMem', Number(a.minMemoryGiB) * GiB);
  if (a.storage !== undefined) inJson('disks', 'storage', 'storage', a.storage);
  if (a.bridge !== undefined) inJson('nics', 'bridge', 'bridge', a.bridge);
  if (a.vlan !== undefined) inJson('nics', 'vlan', 'vlan', a.vlan);
  if (a.onboot !== undefined) add(`(json_extract(g.config, '$.onboot') IS '1') = @onboot`, 'onboot', a.onboot);
  if (a.protection !== undefined)
    add(`(json_extract(g.config, '$.protection') IS '1') = @protection`, 'protection', a.protection);
  // The simulator writes agent: 1 or nothing (checked below), so this reading of `agent` is complete.
  if (a.agent !== undefined) add(`(json_extract(g.config, '$.agent') IS '1') = @agent`, 'agent', a.agent);
  if (a.ostype !== undefined) add(`json_extract(g.config, '$.ostype') = @ostype`, 'ostype', a.ostype);
  if (a.hasSnapshots !== undefined)
    add(`(json_extract(g.config, '$.parent') IS NOT NULL) = @snap`, 'snap', a.hasSnapshots);
  return { where: w.join(' AND '), params };
}

/** Disk bytes on the named storage, CD-ROM images left out (null when no volume there has a size). */
const STORAGE_BYTES = `(SELECT sum(json_extract(j.value, '$.sizeBytes')) FROM json_each(g.disks) j
  WHERE json_extract(j.value, '$.storage') = @storage AND json_extract(j.value, '$.media') IS NOT 'cdrom')`;

function expectedGuests(a: Args, orderBy = 'g.vmid, g.cluster'): Row[] {
  const { where, params } = expectedWhere(a);
  const bytes = a.storage === undefined ? '' : `, ${STORAGE_BYTES} AS storageBytes`;
  return sql(`SELECT g.cluster, g.vmid${bytes} FROM guests g WHERE ${where} ORDER BY ${orderBy}`, params);
}

/** Every page of list_guests, as (cluster, vmid[, storageBytes]) rows, with the totals each page said. */
async function allPages(args: Args, limit = 500): Promise<{ items: Row[]; totals: Set<number> }> {
  const items: Row[] = [];
  const totals = new Set<number>();
  let cursor: string | undefined;
  do {
    const { s } = await call<{ guests: Row[]; total: number; nextCursor?: string }>('list_guests', {
      ...args,
      limit,
      fields: ['cluster', 'vmid', ...(args.storage !== undefined ? ['storageBytes'] : [])],
      ...(cursor ? { cursor } : {}),
    });
    totals.add(s.total);
    items.push(...s.guests);
    cursor = s.nextCursor;
  } while (cursor);
  return { items, totals };
}

beforeAll(async () => {
  h = await startHarness({ guests: 10_000, nodes: 16, seed: 7, timeoutMs: 60_000 });
  const all = [...h.sim.cluster.guests.values()];
  for (const g of all.filter((x) => x.values.tags?.includes('critical')))
    h.sim.updateGuest(g.vmid, { config: { protection: '1' }, silent: true });
  for (const g of all.filter((x) => x.type === 'qemu' && x.vmid % 7 === 0))
    h.sim.updateGuest(g.vmid, { config: { ide2: 'local:iso/debian-12.iso,media=cdrom,size=631M' }, silent: true });
  expect((await h.sync.runCycle()).ok).toBe(true);
  h.sim.setNodeOnline('pve16', false);
  expect((await h.sync.runCycle()).ok).toBe(true);

  beta = await startSimulator({ tls: false, guests: 300, nodes: 3, seed: 99 });
  const betaClient = createHttpProxmoxClient({
    cluster: 'beta',
    url: beta.url,
    tokenId: beta.tokens.full.id,
    tokenSecret: new Secret(beta.tokens.full.secret),
    tls: {},
    retries: 0,
    timeoutMs: 10_000,
  });
  const sync = createClusterSync({
    store: h.store,
    client: betaClient,
    cluster: 'beta',
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log: h.log,
  });
  expect((await sync.runCycle()).ok).toBe(true);
  await betaClient.close();

  const server = createMcpServer({
    store: h.store,
    now: Date.now,
    staleAfterMs: Infinity,
    log: createLogger({ level: 'silent' }),
    version: 'test',
  });
  client = new Client({ name: 'reach', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  await client.listTools(); // so the client checks every structuredContent against its output schema
}, 240_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
  await beta?.close();
});

const FILTERS: Args[] = [
  { storage: 'ceph-vm' },
  { storage: 'local' },
  { storage: 'local-lvm', status: 'running' },
  { bridge: 'vmbr1' },
  { vlan: 20 },
  { vlan: 20, node: 'pve3' },
  { onboot: true },
  { onboot: false, type: 'qemu' },
  { protection: true },
  { agent: true, status: 'stopped' },
  { agent: false },
  { ostype: 'win11' },
  { hasSnapshots: true },
  { hasSnapshots: false, template: true },
  { tag: 'PROD', storage: 'ceph-vm' },
  { tag: 'prod', status: 'running' },
  { pool: 'dev', bridge: 'vmbr0' },
  { status: 'unknown', vlan: 15 },
  { lastKnownStatus: 'running', storage: 'ceph-vm' },
  { name: 'web-0*', storage: 'ceph-vm' },
  { cluster: 'beta', storage: 'ceph-vm' },
  { minMemoryGiB: 8, protection: true },
  { ostype: 'l26', onboot: true, agent: true },
];

describe('list_guests filters on the parsed config', () => {
  it('the inventory has what the filters are asked about', () => {
    const count = (query: string): number => h.store.sqlite.prepare(query).pluck().get() as number;
    expect(count('SELECT count(*) FROM guests WHERE deleted_at IS NULL')).toBe(10_300);
    expect(count('SELECT count(*) FROM guests WHERE stale = 1')).toBeGreaterThan(100);
    expect(count("SELECT count(*) FROM guests WHERE json_extract(config, '$.protection') = '1'")).toBeGreaterThan(100);
    expect(count("SELECT count(*) FROM guests WHERE json_extract(config, '$.parent') IS NOT NULL")).toBeGreaterThan(
      100,
    );
    expect(
      count(
        "SELECT count(*) FROM guests WHERE json_extract(config, '$.agent') IS NOT '1' AND json_extract(config, '$.agent') IS NOT NULL",
      ),
    ).toBe(0);
    for (const a of FILTERS) expect(expectedGuests(a).length, JSON.stringify(a)).toBeGreaterThan(0);
  });

  it('pages through every filter as the test reads the rows, with the bytes on a filtered storage', async () => {
    for (const a of FILTERS) {
      const expected = expectedGuests(a);
      const { items, totals } = await allPages(a);
      expect(items, JSON.stringify(a)).toEqual(expected);
      expect([...totals], JSON.stringify(a)).toEqual([expected.length]);
    }
    // Small pages follow on from each other without a gap or a repeat.
    expect((await allPages({ vlan: 20 }, 7)).items).toEqual(expectedGuests({ vlan: 20 }));
  }, 120_000);

  it('sorts a filtered listing by another key, paging by its cursor', async () => {
    const a = { storage: 'local', sort: 'maxmem', order: 'desc' } as const;
    const { items } = await allPages(a, 100);
    expect(items).toEqual(expectedGuests(a, 'coalesce(g.maxmem, -1) DESC, g.cluster, g.vmid'));
  });

  it('says every filter in its first line and shows the bytes on the filtered storage by default', async () => {
    const { s, text } = await call<{ guests: Row[] }>('list_guests', {
      storage: 'ceph-vm',
      onboot: true,
      vlan: 20,
      limit: 3,
    });
    const expected = expectedGuests({ storage: 'ceph-vm', onboot: true, vlan: 20 });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^3 of ${expected.length} guests with storage=ceph-vm vlan=20 onboot=true; next page: cursor=`),
    );
    // vmids 100… are in both clusters: the page names the cluster of each row.
    expect(lines[1]).toBe('cluster vmid name type node status bytes_on_ceph-vm');
    expect(s.guests.map((g) => [g.vmid, g.storageBytes])).toEqual(
      expected.slice(0, 3).map((r) => [r.vmid, r.storageBytes]),
    );
  });

  it('shows the config facts through fields, as the config JSON says', async () => {
    const fields = [
      'onboot',
      'protection',
      'agent',
      'hasSnapshots',
      'storages',
      'diskBytes',
      'bridges',
      'vlans',
      'macs',
      'ips',
    ];
    for (const a of [{ vlan: 20 }, { hasSnapshots: true, sort: 'name' }, { storage: 'local' }] as Args[]) {
      const { s, text } = await call<{ guests: Array<Row & { cluster: string; vmid: number }> }>('list_guests', {
        ...a,
        limit: 40,
        fields: ['cluster', 'vmid', ...fields],
      });
      expect(s.guests).toHaveLength(40);
      // A column the filter fixes (hasSnapshots=true) is said once, in the first line; the cluster only on a mixed page.
      const columns = [
        ...(new Set(s.guests.map((g) => g.cluster)).size > 1 ? ['cluster'] : []),
        'vmid',
        ...fields.filter((f) => a[f] === undefined),
      ];
      expect(text.split('\n')[1]).toBe(columns.join(' '));
      for (const g of s.guests) {
        const row = sql<{ disks: string; nics: string; config: string }>(
          'SELECT disks, nics, config FROM guests WHERE cluster = @c AND vmid = @v',
          { c: g.cluster, v: g.vmid },
        )[0]!;
        const disks = JSON.parse(row.disks) as Array<{
          key: string;
          storage?: string;
          sizeBytes?: number;
          media?: string;
        }>;
        const nics = (
          JSON.parse(row.nics) as Array<{
            key: string;
            bridge?: string;
            vlan?: number;
            mac?: string;
            ip?: string;
            ip6?: string;
          }>
        ).sort((x, y) => (x.key < y.key ? -1 : 1));
        const config = JSON.parse(row.config) as Record<string, string>;
        const sized = (d: (typeof disks)[number]): boolean => d.media !== 'cdrom' && d.sizeBytes !== undefined;
        const storages = [
          ...new Set(
            [...disks].sort((x, y) => (x.key < y.key ? -1 : 1)).flatMap((d) => (d.storage ? [d.storage] : [])),
          ),
        ];
        expect(g, `${g.cluster}/${g.vmid}`).toEqual({
          cluster: g.cluster,
          vmid: g.vmid,
          onboot: config.onboot === '1',
          protection: config.protection === '1',
          agent: config.agent === '1',
          hasSnapshots: config.parent !== undefined,
          storages: storages.map((st) => {
            const on = disks.filter((d) => d.storage === st && sized(d));
            return { storage: st, bytes: on.length ? on.reduce((n, d) => n + d.sizeBytes!, 0) : null };
          }),
          diskBytes: disks.filter(sized).reduce((n, d) => n + d.sizeBytes!, 0),
          bridges: [...new Set(nics.flatMap((n) => (n.bridge ? [n.bridge] : [])))],
          vlans: [...new Set(nics.flatMap((n) => (n.vlan ? [n.vlan] : [])))],
          macs: nics.flatMap((n) => (n.mac ? [n.mac] : [])),
          ips: nics.flatMap((n) => [n.ip, n.ip6].filter((x): x is string => !!x).map((x) => x.toLowerCase())),
        });
      }
    }
  });

  it('a storage, bridge, VLAN or ostype no guest has is a miss naming the closest known value', async () => {
    expect(await miss('list_guests', { storage: 'cepf-vm' })).toBe(
      'No storage "cepf-vm". Closest: ceph-vm. Known storages: ceph-vm, local, local-lvm, nfs-backup.',
    );
    expect(await miss('list_guests', { bridge: 'vmbr2', cluster: 'lab' })).toMatch(
      /^No guest has a NIC on bridge "vmbr2" in cluster lab\. Closest: vmbr\d\. Known bridges: vmbr0, vmbr1\.$/,
    );
    const vlans = sql<{ v: number }>(
      `SELECT DISTINCT json_extract(j.value, '$.vlan') AS v FROM guests g, json_each(g.nics) j
      WHERE g.deleted_at IS NULL AND json_extract(j.value, '$.vlan') IS NOT NULL ORDER BY 1`,
    ).map((r) => r.v);
    const beyond = vlans.at(-1)! + 100;
    expect(await miss('list_guests', { vlan: beyond })).toBe(
      `No guest has a NIC with VLAN tag ${beyond}. Closest: ${[...vlans].reverse().slice(0, 5).join(', ')} (of ${vlans.length} VLAN tags in use; list_guests countBy=vlan lists them).`,
    );
    expect(await miss('list_guests', { ostype: 'win12' })).toMatch(
      /^No guest has ostype "win12"\. Closest: win1[01]\. Known ostypes: /,
    );
    // A value some guest has, in a combination that matches nothing, is no miss.
    const none = await call<{ total: number }>('list_guests', { storage: 'nfs-backup' });
    expect(none.s.total).toBe(0);
    expect(none.text.split('\n')[0]).toBe('no guest matches storage=nfs-backup');
  });
});

describe('list_guests countBy', () => {
  const COUNT_BY = ['node', 'type', 'status', 'pool', 'ostype', 'template', 'tag', 'storage', 'bridge', 'vlan'];
  interface Group {
    key: string | number | boolean | null;
    cluster?: string;
    guests: number;
    bytes?: number;
  }

  /** Each matching guest's values of a facet (null where it has none), counted as the test reads the rows. */
  function expectedGroups(by: string, a: Args, perCluster: boolean): Group[] {
    const { where, params } = expectedWhere(a);
    const listed: Record<string, string> = {
      tag: `SELECT DISTINCT g.cluster, g.vmid, lower(j.value) AS v, 0 AS b FROM m g, json_each(g.tags) j`,
      storage: `SELECT g.cluster, g.vmid, json_extract(j.value, '$.storage') AS v,
        coalesce(sum(CASE WHEN json_extract(j.value, '$.media') IS NOT 'cdrom' THEN json_extract(j.value, '$.sizeBytes') END), 0) AS b
        FROM m g, json_each(g.disks) j WHERE json_extract(j.value, '$.storage') IS NOT NULL GROUP BY 1, 2, 3`,
      bridge: `SELECT DISTINCT g.cluster, g.vmid, json_extract(j.value, '$.bridge') AS v, 0 AS b FROM m g, json_each(g.nics) j
        WHERE json_extract(j.value, '$.bridge') IS NOT NULL`,
      vlan: `SELECT DISTINCT g.cluster, g.vmid, json_extract(j.value, '$.vlan') AS v, 0 AS b FROM m g, json_each(g.nics) j
        WHERE json_extract(j.value, '$.vlan') IS NOT NULL`,
    };
    const scalar: Record<string, string> = {
      node: 'g.node',
      type: 'g.type',
      status: `CASE WHEN g.stale = 1 THEN 'unknown' ELSE g.status END`,
      pool: 'g.pool',
      ostype: `json_extract(g.config, '$.ostype')`,
      template: 'g.template',
    };
    const values =
      by in listed
        ? `SELECT * FROM l UNION ALL SELECT g.cluster, g.vmid, NULL, 0 FROM m g WHERE (g.cluster, g.vmid) NOT IN (SELECT cluster, vmid FROM l)`
        : `SELECT g.cluster, g.vmid, ${scalar[by]} AS v, 0 AS b FROM m g`;
    return sql<{ key: string | number | null; cluster: string | null; guests: number; bytes: number }>(
      `WITH m AS MATERIALIZED (SELECT * FROM guests g WHERE ${where}), l AS MATERIALIZED (${listed[by] ?? 'SELECT 1'})
      SELECT v AS key, ${perCluster ? 'cluster' : 'NULL'} AS cluster, count(*) AS guests, sum(b) AS bytes FROM (${values}) GROUP BY 1, 2`,
      params,
    ).map((r) => ({
      key: r.key === null ? null : by === 'template' ? r.key === 1 : by === 'vlan' ? Number(r.key) : r.key,
      ...(r.cluster !== null ? { cluster: r.cluster } : {}),
      guests: r.guests,
      ...(by === 'storage' ? { bytes: r.bytes } : {}),
    }));
  }
  const sorted = (groups: Group[]): Group[] =>
    [...groups].sort((x, y) => JSON.stringify([x.cluster, x.key]).localeCompare(JSON.stringify([y.cluster, y.key])));

  it('counts by every facet with the same filters, as the test groups the rows', async () => {
    const filters: Args[] = [
      {},
      { cluster: 'lab' },
      { status: 'running' },
      { tag: 'prod' },
      { vlan: 20 },
      { storage: 'ceph-vm', onboot: true },
      { template: true, cluster: 'lab' },
      { protection: true, hasSnapshots: false },
    ];
    for (const by of COUNT_BY)
      for (const a of filters) {
        const perCluster = (by === 'node' || by === 'pool') && a.cluster === undefined;
        const { s, text } = await call<{ by: string; total: number; groups: Group[] }>('list_guests', {
          ...a,
          countBy: by,
        });
        const label = JSON.stringify({ by, a });
        expect(sorted(s.groups), label).toEqual(sorted(expectedGroups(by, a, perCluster)));
        expect(s.total, label).toBe(expectedGuests(a).length);
        // The header, the columns, a line per group, the freshness line.
        expect(text.split('\n')).toHaveLength(s.groups.length + 3);
      }
  }, 120_000);

  it('answers "templates per node" and "running guests per tag" in one call, in readable text', async () => {
    const { text } = await call('list_guests', { countBy: 'node', template: true, cluster: 'lab' });
    const perNode = sql<{ node: string; n: number }>(
      `SELECT node, count(*) AS n FROM guests WHERE deleted_at IS NULL AND cluster = 'lab' AND template = 1 GROUP BY 1`,
    );
    const total = perNode.reduce((n, r) => n + r.n, 0);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${total} guests with cluster=lab template=true by node: ${perNode.length} groups`);
    expect(lines[1]).toBe('node guests');
    expect(lines.slice(2, -1).sort()).toEqual(perNode.map((r) => `${r.node} ${r.n}`).sort());

    const byTag = await call('list_guests', { countBy: 'tag', status: 'running' });
    expect(byTag.text.split('\n')[0]).toMatch(/by tag: \d+ groups \(a guest counts once per tag it has\)$/);
    expect(byTag.text).toContain(`\n(none) `);
  });

  it('refuses rows options beside countBy, and status=other', async () => {
    expect(await miss('list_guests', { countBy: 'node', limit: 5, sort: 'name' })).toMatch(
      /countBy answers counts, not rows: leave out sort, limit \(or countBy, to list rows\)/,
    );
    expect(await miss('list_guests', { countBy: 'node', status: 'other' })).toBe(
      'status=other cannot be combined with countBy. Ask countBy=status without a status filter: it counts every status, io-error and the like included.',
    );
    expect(await miss('list_guests', { countBy: 'storage', bridge: 'vmbr7' })).toMatch(
      /^No guest has a NIC on bridge "vmbr7"/,
    );
  });
});

describe('inventory_overview says how many values each filter takes', () => {
  it('as many tags, pools, bridges, VLANs, storages and ostypes as the rows hold', async () => {
    const distinct = (query: string): number => h.store.sqlite.prepare(query).pluck().get() as number;
    const live = 'FROM guests g WHERE g.deleted_at IS NULL';
    const inNics = (path: string): number =>
      distinct(
        `SELECT count(DISTINCT json_extract(j.value, '$.${path}')) FROM guests g, json_each(g.nics) j WHERE g.deleted_at IS NULL`,
      );
    const expected = {
      tags: distinct(
        `SELECT count(DISTINCT lower(t.value)) FROM guests g, json_each(g.tags) t WHERE g.deleted_at IS NULL`,
      ),
      pools: distinct('SELECT count(*) FROM pools'),
      bridges: inNics('bridge'),
      vlans: inNics('vlan'),
      storages: distinct(`SELECT count(*) FROM (SELECT storage FROM storage UNION
        SELECT json_extract(j.value, '$.storage') FROM guests g, json_each(g.disks) j
        WHERE g.deleted_at IS NULL AND json_extract(j.value, '$.storage') IS NOT NULL)`),
      ostypes: distinct(`SELECT count(DISTINCT json_extract(g.config, '$.ostype')) ${live}`),
    };
    const { s, text } = await call<{ values: Record<string, number> }>('inventory_overview', {});
    expect(s.values).toEqual(expected);
    expect(text.split('\n')).toContain(
      `filter values: ${Object.entries(expected)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')} (list_guests countBy=tag|pool|bridge|vlan|storage|ostype lists them with counts)`,
    );
  });
});

describe('search_inventory through the config read models', () => {
  interface Found {
    total: number;
    results: Array<{ cluster: string; vmid?: number; matches: Array<{ field: string; value: string }> }>;
  }
  const guestsOf = (r: Found): string[] =>
    r.results
      .filter((x) => x.vmid !== undefined)
      .map((x) => `${x.cluster}/${x.vmid}`)
      .sort();
  const refs = (rows: Row[]): string[] => [...new Set(rows.map((r) => `${r.cluster}/${r.vmid}`))].sort();
  const nicRows = (cond: string, params: Row): Row[] =>
    sql(`SELECT g.cluster, g.vmid FROM guests g, json_each(g.nics) j WHERE g.deleted_at IS NULL AND ${cond}`, params);

  it('finds a MAC whole or by its first bytes, in any spelling', async () => {
    const mac = h.store.sqlite
      .prepare("SELECT json_extract(j.value, '$.mac') FROM guests g, json_each(g.nics) j WHERE g.vmid = 5000")
      .pluck()
      .get() as string;
    const whole = await call<Found>('search_inventory', { query: mac.toLowerCase().replace(/:/g, '-') });
    expect(guestsOf(whole.s)).toEqual(refs(nicRows("json_extract(j.value, '$.mac') = @m", { m: mac })));
    expect(whole.s.results[0]!.matches).toEqual([{ field: 'mac', value: `net0 ${mac}` }]);
    const prefix = mac.slice(0, 11); // BC:24:11:AB
    const part = await call<Found>('search_inventory', { query: prefix, limit: 200 });
    const expected = refs(nicRows("substr(json_extract(j.value, '$.mac'), 1, length(@m)) = @m", { m: prefix }));
    expect(part.s.total).toBe(expected.length);
    expect(guestsOf(part.s)).toEqual(expected);
  });

  it('finds an address whole (with or without its length) or a network by its leading octets', async () => {
    const ip = h.store.sqlite
      .prepare(
        "SELECT json_extract(j.value, '$.ip') FROM guests g, json_each(g.nics) j WHERE json_extract(j.value, '$.ip') IS NOT NULL AND g.vmid > 3000",
      )
      .pluck()
      .get() as string;
    const address = ip.split('/')[0]!;
    const same = refs(
      nicRows("substr(json_extract(j.value, '$.ip'), 1, instr(json_extract(j.value, '$.ip'), '/') - 1) = @a", {
        a: address,
      }),
    );
    expect(guestsOf((await call<Found>('search_inventory', { query: address })).s)).toEqual(same);
    expect(guestsOf((await call<Found>('search_inventory', { query: ip })).s)).toEqual(same);
    const octets = address.split('.').slice(0, 3).join('.');
    const net = refs(nicRows("json_extract(j.value, '$.ip') GLOB @g", { g: `${octets}.*` }));
    const found = await call<Found>('search_inventory', { query: octets, limit: 200 });
    expect(found.s.total).toBe(net.length);
    expect(guestsOf(found.s)).toEqual(net);
  });

  it('finds the guests on a bridge or a VLAN, and volumes by part of their name', async () => {
    const onBridge = refs(nicRows("json_extract(j.value, '$.bridge') = 'vmbr1'", {}));
    const bridge = await call<Found>('search_inventory', { query: 'vmbr1' });
    expect(bridge.s.total).toBe(onBridge.length);
    expect(bridge.text.split('\n')[2]).toMatch(/ bridge vmbr1$/);
    const vlan = await call<Found>('search_inventory', { query: 'VLAN 20', limit: 200 });
    expect(guestsOf(vlan.s)).toEqual(refs(nicRows("json_extract(j.value, '$.vlan') = 20", {})));
    expect(vlan.s.results[0]!.matches).toEqual([{ field: 'vlan', value: '20' }]);
    const volume = await call<Found>('search_inventory', { query: 'vm-4321-disk' });
    const disks = sql(
      `SELECT g.cluster, g.vmid, json_extract(j.value, '$.key') || ' ' || json_extract(j.value, '$.volume') AS m FROM guests g, json_each(g.disks) j
      WHERE g.deleted_at IS NULL AND instr(json_extract(j.value, '$.volume'), 'vm-4321-disk') > 0`,
    );
    expect(disks.length).toBeGreaterThan(0);
    expect(guestsOf(volume.s)).toEqual(refs(disks));
    expect(volume.s.results[0]!.matches.map((m) => `${m.field} ${m.value}`)).toEqual(
      disks.filter((d) => d.cluster === volume.s.results[0]!.cluster).map((d) => `volume ${String(d.m)}`),
    );
  });
});
