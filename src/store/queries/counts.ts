/**
 * Guests counted by a facet (node, type, status, pool, ostype, template, tag, storage, bridge,
 * VLAN) with list_guests' filters and the config facts, and the values each facet holds, with
 * counts: from guest_facets (one index range walked in value order, no guest row read) or, with
 * no filter but the cluster and the status, from the counts the sync's writer keeps
 * (guest_facet_counts, per value and status now).
 */
import type { Store } from '../db.js';
import type { Facet } from '../guest-parts.js';
import { guestFacetCounts, guestFacets, pools, storage } from '../schema.js';
import {
  column,
  countFactGuests,
  facetConditions,
  facetValues,
  keptCount,
  LISTED_FACETS,
  statement,
  type FactQuery,
} from './facts.js';
import { oneRead } from './shared.js';

export type CountBy = Facet;
export const COUNT_BY: readonly CountBy[] = [
  'node',
  'type',
  'status',
  'pool',
  'ostype',
  'template',
  'tag',
  'storage',
  'bridge',
  'vlan',
];

export interface CountGroup {
  /**
   * The value: a VLAN tag as a number, the template flag as a boolean, else the text (tags lower
   * case, status `unknown` for stale guests); null for none (no pool, no tags, no VLAN-tagged NIC).
   */
  key: string | number | boolean | null;
  /** by=node and by=pool: their cluster (node and pool names are per cluster). */
  cluster?: string;
  guests: number;
  /** by=storage: the group's disk bytes on that storage (CD-ROM images left out). */
  bytes?: number;
}

export interface GuestCounts {
  by: CountBy;
  /** In value order (VLAN tags by number), none last. */
  groups: CountGroup[];
  /** Guests matching, each once: by a listed facet (tag, storage…) a guest counts in each of its values' groups. */
  total: number;
}

const PER_CLUSTER = new Set<CountBy>(['node', 'pool']);
const f = (alias: string, key: keyof typeof guestFacets._.columns & string): string => column(guestFacets, alias, key);

/** A scalar facet's value from the columns every guest_facets row carries. */
function valueColumn(a: string, by: Exclude<CountBy, (typeof LISTED_FACETS)[number]>): string {
  switch (by) {
    case 'status':
      return `CASE WHEN ${f(a, 'stale')} = 1 THEN 'unknown' ELSE ${f(a, 'status')} END`;
    case 'template':
      return `CASE WHEN ${f(a, 'template')} = 1 THEN '1' ELSE '0' END`;
    default:
      return f(a, by);
  }
}

const isListed = (by: CountBy): by is (typeof LISTED_FACETS)[number] =>
  (LISTED_FACETS as readonly string[]).includes(by);

interface GroupRow {
  key: string | null;
  cluster: string | null;
  guests: number;
  bytes: number;
}

/** Only the cluster and the status (or nothing) are filtered: the counts the writer keeps say it. */
function keptCountsAnswer(q: FactQuery): boolean {
  return Object.entries(q).every(([k, v]) => v === undefined || k === 'cluster' || k === 'status');
}

/** Whether the groups need their cluster apart: a per-cluster facet over more than one cluster. */
function splitClusters(store: Store, by: CountBy, q: FactQuery): boolean {
  if (!PER_CLUSTER.has(by) || q.cluster !== undefined) return false;
  const clusters = statement(
    store,
    'clusters-with-guests',
    () => `SELECT count(DISTINCT cluster) FROM "guest_facet_counts"`,
  );
  return (clusters.pluck().get() as number) > 1;
}

/** The groups from guest_facet_counts: the facet's values in the cluster (or all), those of guests with the status now (or any). */
function countedRows(store: Store, by: CountBy, q: Pick<FactQuery, 'cluster' | 'status'>, split: boolean): GroupRow[] {
  const c = (key: keyof typeof guestFacetCounts._.columns & string): string => column(guestFacetCounts, 'c', key);
  const inCluster = q.cluster !== undefined;
  const withStatus = q.status !== undefined;
  const query = statement(
    store,
    `counted:${inCluster}:${withStatus}:${split}`,
    () =>
      `SELECT nullif(${c('value')}, '') AS key, ${split ? c('cluster') : 'NULL'} AS cluster, sum(${c('guests')}) AS guests, sum(${c('bytes')}) AS bytes
      FROM "guest_facet_counts" c WHERE ${c('facet')} = @by${inCluster ? ` AND ${c('cluster')} = @cluster` : ''}${withStatus ? ` AND ${c('status')} = @status` : ''}
      GROUP BY ${c('value')}${split ? `, ${c('cluster')}` : ''}`,
  );
  return query.all({
    by,
    ...(inCluster ? { cluster: q.cluster } : {}),
    ...(withStatus ? { status: q.status } : {}),
  }) as GroupRow[];
}

/**
 * What walking one index entry costs, in relative units measured at 10,000 guests: an entry of a
 * range tested on its own columns (WALK), the same with a probe of the guest's other facet rows
 * for a named tag or storage (PROBE), and an entry joined to the guest's rows of the counted
 * facet and sorted into its group (JOIN, or SORT when the group is a column of the entry itself).
 */
const COST = { WALK: 0.2, PROBE: 1.2, JOIN: 1.6, SORT: 0.4 } as const;

/**
 * The facet whose named value's range a count walks instead of the counted facet's own: the
 * named value with the fewest guests (the counts the writer keeps say how many), when walking it
 * and grouping what it finds costs less than walking the counted facet's every entry.
 */
function countDriver(store: Store, by: CountBy, q: FactQuery): Facet | undefined {
  const values = facetValues(q);
  const named = (Object.keys(values) as Facet[]).filter((facet) => facet !== by);
  if (named.length === 0) return undefined;
  const sizes = named.map((facet) => ({ facet, guests: keptCount(store, facet, values[facet], q.cluster) }));
  const narrowest = sizes.reduce((a, b) => (b.guests < a.guests ? b : a));
  const ownEntries = keptCount(store, by, undefined, q.cluster);
  // Walking the counted facet, each named tag, storage, bridge or VLAN (its own too) is a probe per entry.
  const probed = (Object.keys(values) as Facet[]).some(isListed);
  const walkOwn = ownEntries * (probed ? COST.PROBE : COST.WALK);
  const walkNamed = narrowest.guests * (isListed(by) ? COST.JOIN : COST.SORT);
  return walkNamed < walkOwn ? narrowest.facet : undefined;
}

/**
 * The rows of a filtered count: the counted facet's own range walked in value order (no sort), or
 * the narrowest named value's range (countDriver) grouped by the counted facet, a column of every
 * entry for a scalar facet (node, status…) or the guest's rows of a listed one (tag, storage…).
 */
function filteredRows(store: Store, by: CountBy, q: FactQuery, split: boolean): GroupRow[] {
  const values = facetValues(q);
  const clusterKey = (a: string): string => (split ? f(a, 'cluster') : 'NULL');
  // A constant second key still costs a comparison per row in the sort: grouped by cluster only when split.
  const groupBy = split ? 'GROUP BY 1, 2' : 'GROUP BY 1';
  // Only storage rows carry bytes: summing a column of nulls costs a step per entry for nothing.
  const bytesSum = by === 'storage' ? `coalesce(sum(${f('v', 'bytes')}), 0)` : '0';
  const counted = countDriver(store, by, q);
  const driver: Facet = counted ?? by;
  let text: string;
  let bound: ReturnType<typeof facetConditions>;
  if (counted !== undefined && !isListed(by)) return scalarGroupsOfRange(store, by, counted, q, split);
  if (counted !== undefined) {
    bound = facetConditions('d', q, driver);
    text = `SELECT ${f('v', 'value')} AS key, ${clusterKey('d')} AS cluster, count(*) AS guests, ${bytesSum} AS bytes
      FROM "guest_facets" d JOIN "guest_facets" v ON ${f('v', 'cluster')} = ${f('d', 'cluster')} AND ${f('v', 'vmid')} = ${f('d', 'vmid')} AND ${f('v', 'facet')} = '${by}'
      WHERE ${[`${f('d', 'facet')} = '${driver}'`, `${f('d', 'value')} = @driverValue`, ...bound.where].join(' AND ')}
      ${groupBy}`;
  } else {
    // A listed value of the facet itself (by tag, tag=prod) filters guests, not groups: prod guests' every tag counts.
    bound = facetConditions('v', q, isListed(by) ? undefined : by);
    const own = values[by] !== undefined && !isListed(by) ? [`${f('v', 'value')} = @driverValue`] : [];
    // In the index's order (value first): the groups come out without a sort, unless clusters are split.
    text = `SELECT ${f('v', 'value')} AS key, ${clusterKey('v')} AS cluster, count(*) AS guests, ${bytesSum} AS bytes
      FROM "guest_facets" v WHERE ${[`${f('v', 'facet')} = '${by}'`, ...own, ...bound.where].join(' AND ')}
      GROUP BY ${f('v', 'value')}${split ? `, ${f('v', 'cluster')}` : ''}`;
  }
  const walksOwnValue = driver !== by || !isListed(by);
  const shape = `grouped:${by}:${driver}:${walksOwnValue && values[driver] !== undefined}:${split}:${bound.shape.join(',')}`;
  const params = {
    ...bound.params,
    ...(walksOwnValue && values[driver] !== undefined ? { driverValue: values[driver] } : {}),
  };
  return statement(store, shape, () => text).all(params) as GroupRow[];
}

/**
 * A scalar facet's groups among the entries of another facet's named value (pools of the guests
 * on ceph-vm): the range's keys come back as one JSON array and are counted here. Grouped in SQL,
 * the entries of a broad value (5,940 on ceph-vm at 10,000 guests) went through a sorter, SQLite
 * having no hash aggregate: about twice the cost of the walk and the counting in JavaScript.
 */
function scalarGroupsOfRange(
  store: Store,
  by: Exclude<CountBy, (typeof LISTED_FACETS)[number]>,
  driver: Facet,
  q: FactQuery,
  split: boolean,
): GroupRow[] {
  const bound = facetConditions('d', q, driver);
  const query = statement(
    store,
    `grouped-in-js:${by}:${driver}:${split}:${bound.shape.join(',')}`,
    () =>
      `SELECT json_group_array(${valueColumn('d', by)}) AS keys, ${split ? `json_group_array(${f('d', 'cluster')})` : "'[]'"} AS clusters
      FROM "guest_facets" d WHERE ${[`${f('d', 'facet')} = '${driver}'`, `${f('d', 'value')} = @driverValue`, ...bound.where].join(' AND ')}`,
  );
  const found = query.get({ ...bound.params, driverValue: facetValues(q)[driver] }) as {
    keys: string;
    clusters: string;
  };
  const keys = JSON.parse(found.keys) as Array<string | null>;
  const clusters = JSON.parse(found.clusters) as string[];
  // Per cluster (only when split), then per key: null (no pool) is a key of its own.
  const groups = new Map<string | null, Map<string | null, GroupRow>>();
  keys.forEach((key, i) => {
    const cluster = split ? clusters[i]! : null;
    let inCluster = groups.get(cluster);
    if (!inCluster) groups.set(cluster, (inCluster = new Map()));
    const group = inCluster.get(key);
    if (group) group.guests++;
    else inCluster.set(key, { key, cluster, guests: 1, bytes: 0 });
  });
  return [...groups.values()].flatMap((inCluster) => [...inCluster.values()]);
}

function toGroup(by: CountBy, r: GroupRow): CountGroup {
  const key = r.key === null ? null : by === 'vlan' ? Number(r.key) : by === 'template' ? r.key === '1' : r.key;
  const group: CountGroup = { key, guests: r.guests };
  if (r.cluster !== null) group.cluster = r.cluster;
  if (by === 'storage') group.bytes = r.bytes;
  return group;
}

/** Value order, none last: VLAN tags by number, the rest as text; a per-cluster facet by cluster first. */
function byKey(a: CountGroup, b: CountGroup): number {
  if ((a.cluster ?? '') !== (b.cluster ?? '')) return (a.cluster ?? '').localeCompare(b.cluster ?? '');
  if (a.key === null || b.key === null) return a.key === null ? (b.key === null ? 0 : 1) : -1;
  if (typeof a.key === 'number' && typeof b.key === 'number') return a.key - b.key;
  return String(a.key).localeCompare(String(b.key), 'en', { numeric: true });
}

/**
 * Live guests matching `q`, counted per value of `by`. by=node and by=pool group per cluster when
 * more than one is in scope. Without a filter other than the cluster and the status the counts
 * come from guest_facet_counts.
 */
export function countGuestsBy(store: Store, by: CountBy, q: FactQuery = {}): GuestCounts {
  return oneRead(store, () => {
    const split = splitClusters(store, by, q);
    const rows = keptCountsAnswer(q) ? countedRows(store, by, q, split) : filteredRows(store, by, q, split);
    const groups = rows.map((r) => toGroup(by, r)).sort(byKey);
    // A scalar facet puts each guest in one group: the groups sum to the total without a second walk.
    const total = isListed(by) ? countFactGuests(store, q) : groups.reduce((n, g) => n + g.guests, 0);
    return { by, groups, total };
  });
}

export interface ValueCount {
  value: string;
  guests: number;
}

export interface KnownValues {
  /** Lower case, as tags match. */
  tags: ValueCount[];
  /** Every pool, with or without guests; per cluster. */
  pools: Array<ValueCount & { cluster: string }>;
  bridges: ValueCount[];
  vlans: Array<{ value: number; guests: number }>;
  /** Every storage the clusters report, with the guests holding a volume there and their disk bytes on it. */
  storages: Array<ValueCount & { bytes: number }>;
  ostypes: ValueCount[];
}

/**
 * The values filters and counts take, with how many live guests have each: what an agent reads
 * before filtering instead of guessing. From guest_facet_counts and the pool and storage lists.
 */
export function listValues(store: Store, scope: { cluster?: string } = {}): KnownValues {
  return oneRead(store, () => {
    const counted = (by: CountBy): GroupRow[] =>
      countedRows(store, by, scope, false).filter((r): r is GroupRow & { key: string } => r.key !== null);
    const plain = (by: CountBy): ValueCount[] =>
      counted(by)
        .map((r) => ({ value: r.key!, guests: r.guests }))
        .sort((a, b) => a.value.localeCompare(b.value, 'en', { numeric: true }));
    const inScope = scope.cluster !== undefined ? ' WHERE cluster = @cluster' : '';
    const params = scope.cluster !== undefined ? { cluster: scope.cluster } : {};
    const poolRows = statement(
      store,
      `values-pools:${scope.cluster !== undefined}`,
      () => `SELECT "${pools.cluster.name}" AS cluster, "${pools.pool.name}" AS pool FROM "pools"${inScope}`,
    ).all(params) as Array<{ cluster: string; pool: string }>;
    const poolGuests = new Map(
      countedRows(store, 'pool', scope, true).map((r) => [`${r.cluster ?? scope.cluster}\u0000${r.key}`, r.guests]),
    );
    const storageIds = statement(
      store,
      `values-storage:${scope.cluster !== undefined}`,
      () => `SELECT DISTINCT "${storage.storage.name}" AS id FROM "storage"${inScope}`,
    )
      .pluck()
      .all(params) as string[];
    const storageCounts = new Map(counted('storage').map((r) => [r.key!, r]));
    for (const id of storageIds)
      if (!storageCounts.has(id)) storageCounts.set(id, { key: id, cluster: null, guests: 0, bytes: 0 });
    return {
      tags: plain('tag'),
      pools: poolRows
        .map((p) => ({ value: p.pool, cluster: p.cluster, guests: poolGuests.get(`${p.cluster}\u0000${p.pool}`) ?? 0 }))
        .sort((a, b) => a.cluster.localeCompare(b.cluster) || a.value.localeCompare(b.value)),
      bridges: plain('bridge'),
      vlans: counted('vlan')
        .map((r) => ({ value: Number(r.key), guests: r.guests }))
        .sort((a, b) => a.value - b.value),
      storages: [...storageCounts.values()]
        .map((r) => ({ value: r.key!, guests: r.guests, bytes: r.bytes }))
        .sort((a, b) => a.value.localeCompare(b.value)),
      ostypes: plain('ostype'),
    };
  });
}
