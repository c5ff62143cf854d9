/**
 * The config-fact queries (filters and pages, grouped counts, known values, MAC/IP lookups, the
 * facts of listed guests) over a 10,000-guest inventory the sync built from the simulator, plus a
 * small second cluster, some guests protected, some with an ISO, and a node offline (its guests
 * stale). Every expectation comes from SQL of the test's own over the guest rows and their
 * config JSON, never from the read models the queries use. The query plans are checked too: the
 * counts and pages walk an index range, without a sort of every guest or a scan of guest rows.
 */
import { and, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { countGuestsBy, COUNT_BY, listValues, type CountBy, type CountGroup } from '../../src/store/queries/counts.js';
import { listGuests } from '../../src/store/queries.js';
import {
  countFactGuests,
  drivingFacts,
  factConditions,
  findGuests,
  guestFacts,
  type FactQuery,
} from '../../src/store/queries/facts.js';
import { guests } from '../../src/store/schema.js';
import { findByAddress, findByMac } from '../../src/store/queries/network.js';
import { QueryError } from '../../src/store/queries/shared.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

type Row = Record<string, unknown>;

let h: SyncHarness;
let beta: Simulator;
const GiB = 2 ** 30;

/** The test's own reading of a query: conditions on a guest row `g` and its JSON. */
function expectedWhere(q: FactQuery): { where: string; params: Row } {
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
  if (q.cluster !== undefined) add('g.cluster = @cluster', 'cluster', q.cluster);
  if (q.node !== undefined) add('g.node = @node', 'node', q.node);
  if (q.type !== undefined) add('g.type = @type', 'type', q.type);
  if (q.status !== undefined)
    add(`CASE WHEN g.stale = 1 THEN 'unknown' ELSE g.status END = @status`, 'status', q.status);
  if (q.lastKnownStatus !== undefined) add('g.stale = 1 AND g.status = @lk', 'lk', q.lastKnownStatus);
  if (q.pool !== undefined) add('g.pool = @pool', 'pool', q.pool);
  if (q.template !== undefined) add('g.template = @template', 'template', q.template);
  if (q.tag !== undefined)
    add('EXISTS (SELECT 1 FROM json_each(g.tags) t WHERE lower(t.value) = lower(@tag))', 'tag', q.tag);
  if (q.namePattern !== undefined) add('g.name GLOB @glob', 'glob', q.namePattern);
  if (q.lock === true) add('g.lock IS NOT NULL');
  if (q.minMemoryBytes !== undefined) add('g.maxmem >= @minMem', 'minMem', q.minMemoryBytes);
  if (q.storage !== undefined) inJson('disks', 'storage', 'storage', q.storage);
  if (q.bridge !== undefined) inJson('nics', 'bridge', 'bridge', q.bridge);
  if (q.vlan !== undefined) inJson('nics', 'vlan', 'vlan', q.vlan);
  if (q.onboot !== undefined) add(`(json_extract(g.config, '$.onboot') IS '1') = @onboot`, 'onboot', q.onboot);
  if (q.protection !== undefined)
    add(`(json_extract(g.config, '$.protection') IS '1') = @protection`, 'protection', q.protection);
  if (q.agent !== undefined) add('g.agent = @agent', 'agent', q.agent);
  if (q.ostype !== undefined) add(`json_extract(g.config, '$.ostype') = @ostype`, 'ostype', q.ostype);
  if (q.hasSnapshots !== undefined)
    add(`(json_extract(g.config, '$.parent') IS NOT NULL) = @snap`, 'snap', q.hasSnapshots);
  return { where: w.join(' AND '), params };
}

function expectedGuests(q: FactQuery): Row[] {
  const { where, params } = expectedWhere(q);
  const bytes =
    q.storage === undefined
      ? ''
      : `, (SELECT sum(json_extract(j.value, '$.sizeBytes')) FROM json_each(g.disks) j
          WHERE json_extract(j.value, '$.storage') = @storage AND json_extract(j.value, '$.media') IS NOT 'cdrom') AS storageBytes`;
  return h.store.sqlite
    .prepare(`SELECT g.cluster, g.vmid${bytes} FROM guests g WHERE ${where} ORDER BY g.vmid, g.cluster`)
    .all(params) as Row[];
}

/** Each matching guest's values of a facet (a null where it has none), as the test reads the rows. */
function expectedGroups(by: CountBy, q: FactQuery, perCluster: boolean): CountGroup[] {
  const { where, params } = expectedWhere(q);
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
  const rows = h.store.sqlite
    .prepare(
      `WITH m AS MATERIALIZED (SELECT * FROM guests g WHERE ${where}), l AS MATERIALIZED (${listed[by] ?? 'SELECT 1'})
      SELECT v AS key, ${perCluster ? 'cluster' : 'NULL'} AS cluster, count(*) AS guests, sum(b) AS bytes FROM (${values}) GROUP BY 1, 2`,
    )
    .all(params) as Array<{ key: string | number | null; cluster: string | null; guests: number; bytes: number }>;
  return rows
    .map((r): CountGroup => {
      const key = r.key === null ? null : by === 'template' ? r.key === 1 : by === 'vlan' ? Number(r.key) : r.key;
      return {
        key,
        ...(r.cluster !== null ? { cluster: r.cluster } : {}),
        guests: r.guests,
        ...(by === 'storage' ? { bytes: r.bytes } : {}),
      };
    })
    .sort((a, b) => JSON.stringify([a.cluster, a.key]).localeCompare(JSON.stringify([b.cluster, b.key])));
}

const sortGroups = (groups: CountGroup[]): CountGroup[] =>
  [...groups].sort((a, b) => JSON.stringify([a.cluster, a.key]).localeCompare(JSON.stringify([b.cluster, b.key])));

function allPages(q: FactQuery, limit = 500): { items: Row[]; totals: Set<number> } {
  const items: Row[] = [];
  const totals = new Set<number>();
  let cursor: string | undefined;
  do {
    const page = findGuests(h.store, q, { limit, cursor });
    totals.add(page.total);
    items.push(
      ...page.items.map((i) => ({
        cluster: i.cluster,
        vmid: i.vmid,
        ...(q.storage !== undefined ? { storageBytes: i.storageBytes } : {}),
      })),
    );
    cursor = page.nextCursor;
  } while (cursor);
  return { items, totals };
}

const plan = (sql: string): string =>
  (h.store.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
    .map((r) => r.detail)
    .join('\n');

const QUERIES: FactQuery[] = [
  {},
  { storage: 'ceph-vm' },
  { storage: 'local-lvm', status: 'running' },
  { storage: 'local' },
  { bridge: 'vmbr1' },
  { vlan: 20 },
  { vlan: 20, node: 'pve3' },
  { onboot: true },
  { onboot: false, type: 'qemu' },
  { protection: true },
  { agent: true, status: 'stopped' },
  { ostype: 'win11' },
  { hasSnapshots: true },
  { hasSnapshots: false, template: true },
  { tag: 'PROD', storage: 'ceph-vm' },
  { tag: 'prod', vlan: 15 },
  { pool: 'dev', bridge: 'vmbr0' },
  { status: 'unknown' },
  { lastKnownStatus: 'running' },
  { namePattern: 'web-0*', storage: 'ceph-vm' },
  { cluster: 'beta', storage: 'ceph-vm' },
  { minMemoryBytes: 8 * GiB, protection: true },
  { lock: true },
  { ostype: 'l26', onboot: true, agent: true },
  { node: 'pve2', template: false, storage: 'local-lvm' },
];

describe('config-fact queries at 10,000 guests', () => {
  beforeAll(async () => {
    h = await startHarness({ guests: 10_000, nodes: 16, seed: 7, timeoutMs: 60_000 });
    // Protection on critical guests; an ISO in some VMs' CD-ROM drives (a volume on `local`).
    const all = [...h.sim.cluster.guests.values()];
    for (const g of all.filter((x) => x.values.tags?.includes('critical')))
      h.sim.updateGuest(g.vmid, { config: { protection: '1' }, silent: true });
    for (const g of all.filter((x) => x.type === 'qemu' && x.vmid % 7 === 0))
      h.sim.updateGuest(g.vmid, { config: { ide2: 'local:iso/debian-12.iso,media=cdrom,size=631M' }, silent: true });
    expect((await h.sync.runCycle()).ok).toBe(true);
    h.sim.setNodeOnline('pve16', false);
    expect((await h.sync.runCycle()).ok).toBe(true);

    beta = await startSimulator({ tls: false, guests: 300, nodes: 3, seed: 99 });
    const client = createHttpProxmoxClient({
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
      client,
      cluster: 'beta',
      settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
      log: h.log,
    });
    expect((await sync.runCycle()).ok).toBe(true);
    await client.close();
  }, 180_000);
  afterAll(async () => {
    await h.close();
    await beta.close();
  });

  it('the inventory has what the queries are asked about', () => {
    const count = (sql: string): number => h.store.sqlite.prepare(sql).pluck().get() as number;
    expect(count('SELECT count(*) FROM guests WHERE deleted_at IS NULL')).toBe(10_300);
    expect(count('SELECT count(*) FROM guests WHERE stale = 1')).toBeGreaterThan(100);
    expect(count('SELECT count(*) FROM guests WHERE protection = 1')).toBeGreaterThan(100);
    expect(count("SELECT count(*) FROM guest_disks WHERE storage = 'local' AND media = 'cdrom'")).toBeGreaterThan(100);
    expect(count('SELECT count(*) FROM guests WHERE snapshot_parent IS NOT NULL')).toBeGreaterThan(100);
    expect(count('SELECT count(*) FROM guest_addresses WHERE family = 4')).toBeGreaterThan(1_000);
  });

  it('pages through every filter as the test reads the rows, with the bytes on a named storage', () => {
    for (const q of QUERIES) {
      const expected = expectedGuests(q);
      const { items, totals } = allPages(q);
      expect(items, JSON.stringify(q)).toEqual(expected);
      expect([...totals], JSON.stringify(q)).toEqual([expected.length]);
      expect(countFactGuests(h.store, q), JSON.stringify(q)).toBe(expected.length);
    }
    // Small pages follow on from each other without a gap or a repeat.
    const small = allPages({ vlan: 20 }, 7).items;
    expect(small).toEqual(expectedGuests({ vlan: 20 }));
  });

  it('pages sorted by memory, name or cores through a narrow or broad VLAN, storage or tag, as the test orders the rows', () => {
    // vlan=20 (about 100 guests) and prod in the small cluster are read first and sorted; ceph-vm and prod
    // across 10,000 guests are probed walking the sort.
    expect([...drivingFacts(h.store, { vlan: 20, storage: 'ceph-vm' }, 51, true)]).toEqual(['vlan']);
    expect([...drivingFacts(h.store, { tag: 'prod', cluster: 'beta' }, 51, true)]).toEqual(['tag']);
    expect([...drivingFacts(h.store, { storage: 'ceph-vm', tag: 'prod' }, 51, true)]).toEqual([]);
    // Sorted by what no index orders, the narrowest value drives whatever its size.
    expect([...drivingFacts(h.store, { storage: 'ceph-vm', tag: 'prod' }, 51, false)]).toEqual(['tag']);
    const queries: FactQuery[] = [
      { vlan: 20 },
      { vlan: 20, status: 'running' },
      { storage: 'ceph-vm' },
      { tag: 'prod' },
      { tag: 'prod', cluster: 'beta' },
      { tag: 'prod', cluster: 'beta', storage: 'ceph-vm' },
      { bridge: 'vmbr1', vlan: 30, cluster: 'lab' },
    ];
    const orders = [
      { sort: 'maxmem', order: 'desc', key: 'coalesce(g.maxmem, -1) DESC' },
      { sort: 'maxmem', order: 'asc', key: 'coalesce(g.maxmem, -1)' },
      { sort: 'name', order: 'asc', key: "lower(coalesce(g.name, ''))" },
      { sort: 'maxcpu', order: 'desc', key: 'coalesce(g.maxcpu, -1) DESC' },
    ] as const;
    for (const q of queries)
      for (const { sort, order, key } of orders) {
        const { where, params } = expectedWhere(q);
        const expected = h.store.sqlite
          .prepare(`SELECT g.cluster, g.vmid FROM guests g WHERE ${where} ORDER BY ${key}, g.cluster, g.vmid`)
          .all(params);
        const items: Row[] = [];
        let cursor: string | undefined;
        do {
          const page = listGuests(h.store, q, { sort, order, limit: 40, cursor, fields: ['name'] });
          expect(page.total, JSON.stringify(q)).toBe(expected.length);
          items.push(...page.items.map((g) => ({ cluster: g.cluster, vmid: g.vmid })));
          cursor = page.nextCursor;
        } while (cursor);
        expect(items, JSON.stringify({ q, sort, order })).toEqual(expected);
      }
  });

  it("gives list_guests' own query the same filters as conditions on the guest rows", () => {
    for (const q of [
      { storage: 'local' },
      { bridge: 'vmbr1', vlan: 20 },
      { onboot: false, agent: true },
      { protection: true, ostype: 'l26' },
      { hasSnapshots: true },
      { hasSnapshots: false, storage: 'ceph-vm' },
    ] satisfies FactQuery[]) {
      const bound = factConditions(q);
      const rows = h.store.db
        .select({ cluster: guests.cluster, vmid: guests.vmid })
        .from(guests)
        .where(and(isNull(guests.deletedAt), ...bound.where))
        .orderBy(guests.vmid, guests.cluster)
        .prepare()
        .all(bound.params);
      expect(rows, JSON.stringify(q)).toEqual(expectedGuests(q).map((r) => ({ cluster: r.cluster, vmid: r.vmid })));
    }
    expect(() => factConditions({ vlan: 5000 })).toThrow(/VLAN tag from 1 to 4094/);
  });

  it('counts by every facet, with filters, as the test groups the rows', () => {
    const filters: FactQuery[] = [
      {},
      { cluster: 'lab' },
      { status: 'running' },
      // The kept counts per status now: the stale guests' (of the offline node) are `unknown`.
      { status: 'unknown', cluster: 'lab' },
      { tag: 'prod' },
      { storage: 'ceph-vm' },
      { template: true },
      { vlan: 20 },
      { node: 'pve3', onboot: true },
      { namePattern: 'db*' },
      { protection: true, cluster: 'lab' },
      // Two named values: the count walks the one with fewer guests (the stale ones, the templates).
      { status: 'unknown', tag: 'prod' },
      { template: true, node: 'pve2' },
    ];
    for (const by of COUNT_BY)
      for (const q of filters) {
        const perCluster = (by === 'node' || by === 'pool') && q.cluster === undefined;
        const answer = countGuestsBy(h.store, by, q);
        const label = JSON.stringify({ by, q });
        expect(sortGroups(answer.groups), label).toEqual(expectedGroups(by, q, perCluster));
        expect(answer.total, label).toBe(expectedGuests(q).length);
      }
  }, 180_000);

  it('answers the operator questions of issue 10 in one call', () => {
    const templatesPerNode = countGuestsBy(h.store, 'node', { template: true, cluster: 'lab' });
    expect(templatesPerNode.groups.reduce((n, g) => n + g.guests, 0)).toBe(templatesPerNode.total);
    const runningPerTag = countGuestsBy(h.store, 'tag', { status: 'running' });
    expect(runningPerTag.groups.find((g) => g.key === 'prod')!.guests).toBe(
      expectedGuests({ status: 'running', tag: 'prod' }).length,
    );
    const perStorage = countGuestsBy(h.store, 'storage', { cluster: 'lab' });
    const ceph = perStorage.groups.find((g) => g.key === 'ceph-vm')!;
    expect(ceph.bytes).toBe(
      expectedGuests({ cluster: 'lab', storage: 'ceph-vm' }).reduce((n, r) => n + Number(r.storageBytes ?? 0), 0),
    );
    const perVlan = countGuestsBy(h.store, 'vlan', { cluster: 'lab' });
    expect(perVlan.groups.at(-1)!.key).toBeNull(); // guests with no VLAN-tagged NIC, last
    expect(
      perVlan.groups.slice(0, -1).every((g, i, a) => i === 0 || (g.key as number) > (a[i - 1]!.key as number)),
    ).toBe(true);
  });

  it('lists the known values with counts', () => {
    const values = listValues(h.store);
    const count = (sql: string): Row[] => h.store.sqlite.prepare(sql).all() as Row[];
    expect(values.tags).toEqual(
      count(`SELECT lower(j.value) AS value, count(DISTINCT g.cluster || '/' || g.vmid) AS guests FROM guests g, json_each(g.tags) j
        WHERE g.deleted_at IS NULL GROUP BY 1 ORDER BY 1`),
    );
    expect(values.vlans).toEqual(
      count(`SELECT json_extract(j.value, '$.vlan') AS value, count(DISTINCT g.cluster || '/' || g.vmid) AS guests
        FROM guests g, json_each(g.nics) j WHERE g.deleted_at IS NULL AND json_extract(j.value, '$.vlan') IS NOT NULL GROUP BY 1 ORDER BY 1`),
    );
    expect(values.bridges).toEqual(
      count(`SELECT json_extract(j.value, '$.bridge') AS value, count(DISTINCT g.cluster || '/' || g.vmid) AS guests
        FROM guests g, json_each(g.nics) j WHERE g.deleted_at IS NULL GROUP BY 1 ORDER BY 1`),
    );
    expect(values.ostypes).toEqual(
      count(
        `SELECT ostype AS value, count(*) AS guests FROM guests WHERE deleted_at IS NULL AND ostype IS NOT NULL GROUP BY 1 ORDER BY 1`,
      ),
    );
    // Every pool and every storage, also those no guest uses (nfs-backup holds backups only).
    expect(values.pools.map((p) => [p.cluster, p.value])).toEqual(
      count('SELECT cluster, pool FROM pools ORDER BY 1, 2').map((r) => [r.cluster, r.pool]),
    );
    expect(values.pools.find((p) => p.cluster === 'lab' && p.value === 'dev')!.guests).toBe(
      expectedGuests({ cluster: 'lab', pool: 'dev' }).length,
    );
    expect(values.storages.find((s) => s.value === 'nfs-backup')).toEqual({ value: 'nfs-backup', guests: 0, bytes: 0 });
    expect(values.storages.find((s) => s.value === 'ceph-vm')!.guests).toBe(
      expectedGuests({ storage: 'ceph-vm' }).length,
    );
    expect(listValues(h.store, { cluster: 'beta' }).tags.reduce((n, t) => n + t.guests, 0)).toBeLessThan(1_000);
  });

  it('finds guests by MAC and IP, exactly and by prefix, as a scan of the config JSON does', () => {
    const byMac = (where: string, value: string): Row[] =>
      h.store.sqlite
        .prepare(
          `SELECT g.cluster, g.vmid, json_extract(j.value, '$.key') AS nic FROM guests g, json_each(g.nics) j
          WHERE g.deleted_at IS NULL AND ${where} ORDER BY json_extract(j.value, '$.mac'), 1, 2, 3`,
        )
        .all({ v: value }) as Row[];
    const sample = h.store.sqlite
      .prepare("SELECT json_extract(j.value, '$.mac') FROM guests g, json_each(g.nics) j WHERE g.vmid = 5000")
      .pluck()
      .get() as string;
    const pick = (r: { cluster: string; vmid: number; nic: string }): Row => ({
      cluster: r.cluster,
      vmid: r.vmid,
      nic: r.nic,
    });
    expect(findByMac(h.store, sample.toLowerCase().replace(/:/g, '-')).items.map(pick)).toEqual(
      byMac("json_extract(j.value, '$.mac') = @v", sample),
    );
    const prefix = sample.slice(0, 10); // three and a half bytes: BC:24:11:A
    const found = findByMac(h.store, prefix, { prefix: true, limit: 200 });
    const expected = byMac("substr(json_extract(j.value, '$.mac'), 1, length(@v)) = @v", prefix);
    expect(found.total).toBe(expected.length);
    expect(found.items.map(pick)).toEqual(expected.slice(0, 200));

    const byIp = (where: string, value: string): Row[] =>
      h.store.sqlite
        .prepare(
          `SELECT g.cluster, g.vmid, json_extract(j.value, '$.key') AS nic, a.value AS cidr
          FROM guests g, json_each(g.nics) j, json_each(json_array(json_extract(j.value, '$.ip'), json_extract(j.value, '$.ip6'))) a
          WHERE g.deleted_at IS NULL AND a.value IS NOT NULL AND ${where} ORDER BY 4, 1, 2, 3`,
        )
        .all({ v: value }) as Row[];
    const ip = h.store.sqlite
      .prepare(
        "SELECT json_extract(j.value, '$.ip') FROM guests g, json_each(g.nics) j WHERE json_extract(j.value, '$.ip') IS NOT NULL",
      )
      .pluck()
      .get() as string;
    const address = ip.split('/')[0]!;
    const cidrOf = (r: {
      cluster: string;
      vmid: number;
      nic: string;
      address?: string;
      prefixLength?: number | null;
    }): Row => ({
      cluster: r.cluster,
      vmid: r.vmid,
      nic: r.nic,
      cidr: `${r.address}${r.prefixLength == null ? '' : `/${r.prefixLength}`}`,
    });
    expect(findByAddress(h.store, address).items.map(cidrOf)).toEqual(
      byIp("substr(a.value, 1, instr(a.value, '/') - 1) = @v", address),
    );
    expect(findByAddress(h.store, ip).items.map(cidrOf)).toEqual(byIp('a.value = @v', ip));
    expect(findByAddress(h.store, `${address}/31`).total).toBe(0);
    const net = `${address.split('.').slice(0, 3).join('.')}.`;
    const inNet = findByAddress(h.store, net, { prefix: true });
    expect(inNet.items.map(cidrOf)).toEqual(byIp('substr(a.value, 1, length(@v)) = @v', net).slice(0, 200));
    expect(inNet.items.every((i) => i.family === 4)).toBe(true);
    // What a model might type that is not an address or a MAC is refused with the form to use.
    expect(() => findByMac(h.store, 'BC:24')).toThrow(QueryError);
    expect(() => findByAddress(h.store, 'web-01')).toThrow(/not an IP address/);
  });

  it('gives the facts of a page of guests as their config JSON says', () => {
    const refs = (
      h.store.sqlite
        .prepare('SELECT cluster, vmid FROM guests WHERE deleted_at IS NULL AND vmid % 97 = 0')
        .all() as Array<{
        cluster: string;
        vmid: number;
      }>
    ).slice(0, 100);
    const facts = guestFacts(h.store, refs);
    expect(facts.size).toBe(refs.length);
    for (const r of refs) {
      const row = h.store.sqlite
        .prepare('SELECT disks, nics, config FROM guests WHERE cluster = ? AND vmid = ?')
        .get(r.cluster, r.vmid) as { disks: string; nics: string; config: string };
      const disks = JSON.parse(row.disks) as Array<{ storage?: string; sizeBytes?: number; media?: string }>;
      const nics = JSON.parse(row.nics) as Array<{
        bridge?: string;
        vlan?: number;
        mac?: string;
        ip?: string;
        ip6?: string;
      }>;
      const config = JSON.parse(row.config) as Record<string, string>;
      const got = facts.get(`${r.cluster}/${r.vmid}`)!;
      expect(got.diskBytes).toBe(disks.filter((d) => d.media !== 'cdrom').reduce((n, d) => n + (d.sizeBytes ?? 0), 0));
      expect(got.storages.map((s) => s.storage).sort()).toEqual(
        [...new Set(disks.flatMap((d) => (d.storage ? [d.storage] : [])))].sort(),
      );
      expect(got.bridges).toEqual([...new Set(nics.flatMap((n) => (n.bridge ? [n.bridge] : [])))]);
      expect(got.vlans).toEqual([...new Set(nics.flatMap((n) => (n.vlan ? [n.vlan] : [])))]);
      expect(got.macs).toEqual(nics.map((n) => n.mac));
      expect(got.ips.sort()).toEqual(
        nics.flatMap((n) => [n.ip, n.ip6].filter((x) => x !== undefined).map((x) => x!.toLowerCase())).sort(),
      );
      expect(got.protection).toBe(config.protection === '1');
      expect(got.hasSnapshots).toBe(config.parent !== undefined);
    }
  });

  it('reads index ranges: no scan of guest rows, no sort of every guest', () => {
    // The statements as the queries prepared them, from the store's cache of shapes.
    const grouped = `SELECT v."value", count(*) FROM "guest_facets" v WHERE v."facet" = 'tag' AND v."status" = 'running' AND v."stale" = 0 GROUP BY v."value"`;
    expect(plan(grouped)).toMatch(/SEARCH v USING COVERING INDEX guest_facets_value \(facet=\?\)/);
    expect(plan(grouped)).not.toMatch(/TEMP B-TREE/);
    const paged = `SELECT d."cluster", d."vmid" FROM "guest_facets" d WHERE d."facet" = 'vlan' AND d."value" = '20' AND d."node" = 'pve3' ORDER BY d."vmid", d."cluster" LIMIT 51`;
    expect(plan(paged)).toMatch(/COVERING INDEX guest_facets_value \(facet=\? AND value=\?\)/);
    expect(plan(paged)).not.toMatch(/TEMP B-TREE|SCAN/);
    expect(plan(`SELECT * FROM guest_nics WHERE mac >= 'BC:24:11:0' AND mac < 'BC:24:11:1'`)).toMatch(
      /INDEX guest_nics_mac \(mac>\? AND mac<\?\)/,
    );
    expect(plan(`SELECT * FROM guest_addresses WHERE address = '10.1.2.3'`)).toMatch(
      /INDEX guest_addresses_address \(address=\?\)/,
    );
  });
});
