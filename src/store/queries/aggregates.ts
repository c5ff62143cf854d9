/**
 * Guest counts and allocation per node, pool, tag, status, type or cluster (from guest_stats where it can say).
 * Stale guests (status unknown) count in `guests`, `unknown` and allocation (what their nodes promised),
 * never in `running` or in use: their status and usage now are unknown.
 */
import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { AnySQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { clusters, guestMetrics, guests, guestStats, guestTags, nodes } from '../schema.js';
import {
  currentStatus,
  guestConditions,
  summaryFilter,
  summaryJoin,
  summaryLastKnown,
  summaryStale,
  summaryStatus,
  summaryWhere,
  type GuestFilter,
} from './guests.js';
import { metricsJoin, oneRead, ratio, type Runnable } from './shared.js';

/** `status` is the status now (stale guests under `unknown`); `lastKnownStatus` the status last seen, current or not. */
export type AggregateBy = 'node' | 'pool' | 'tag' | 'status' | 'lastKnownStatus' | 'type' | 'cluster';

export interface GuestStats {
  guests: number;
  /** Running now (confirmed by the last read). */
  running: number;
  /** Status unknown now: stale (node offline, cluster unreachable, missing from the read). */
  unknown: number;
  templates: number;
  /** Sum of `maxcpu` over non-template guests, running or not. */
  allocatedVcpus: number;
  /** Sum of `maxmem` over non-template guests, running or not. */
  allocatedMemoryBytes: number;
  /** The same sums over guests running now only. */
  runningVcpus: number;
  runningMemoryBytes: number;
  /** Sum of live `mem` at the last read, of guests it confirmed (a stale guest's use now is unknown). */
  usedMemoryBytes: number;
}

export interface AggregateGroup extends GuestStats {
  /** The group's value: node, pool, tag, status, last known status, type or cluster name; null for "none" (no pool, no tags). */
  key: string | null;
  /** For by=node and by=pool, which are per cluster. */
  cluster?: string;
  /** by=node: the node's physical size and overcommit (allocated / physical, 3 decimals). */
  physicalCpus?: number | null;
  physicalMemoryBytes?: number | null;
  cpuOvercommit?: number | null;
  memoryOvercommit?: number | null;
}

export interface Aggregate {
  by: AggregateBy;
  groups: AggregateGroup[];
  /** Over every matching guest once (by=tag counts a guest in each of its tags' groups). */
  totals: GuestStats;
}

type StatsRow = { key: string | null; cluster: string | null } & GuestStats;

const runningNow = sql`${guests.stale} = 0 AND ${guests.status} = 'running'`;
const STATS = {
  guests: sql<number>`count(*)`,
  running: sql<number>`total(${runningNow})`,
  unknown: sql<number>`total(${currentStatus} = 'unknown')`,
  templates: sql<number>`total(${guests.template})`,
  allocatedVcpus: sql<number>`total(CASE WHEN ${guests.template} = 0 THEN ${guests.maxcpu} END)`,
  allocatedMemoryBytes: sql<number>`total(CASE WHEN ${guests.template} = 0 THEN ${guests.maxmem} END)`,
  runningVcpus: sql<number>`total(CASE WHEN ${guests.template} = 0 AND ${runningNow} THEN ${guests.maxcpu} END)`,
  runningMemoryBytes: sql<number>`total(CASE WHEN ${guests.template} = 0 AND ${runningNow} THEN ${guests.maxmem} END)`,
  usedMemoryBytes: sql<number>`total(CASE WHEN ${guests.stale} = 0 THEN ${guestMetrics.mem} END)`,
};

/** STATS over guest_stats rows, which are already counted and summed per node, type and status (stale apart). */
const SUMMED_STATS = {
  guests: sql<number>`total(${guestStats.guests})`,
  running: sql<number>`total(CASE WHEN ${summaryStatus} = 'running' THEN ${guestStats.guests} END)`,
  unknown: sql<number>`total(CASE WHEN ${summaryStatus} = 'unknown' THEN ${guestStats.guests} END)`,
  templates: sql<number>`total(${guestStats.templates})`,
  allocatedVcpus: sql<number>`total(${guestStats.allocatedVcpus})`,
  allocatedMemoryBytes: sql<number>`total(${guestStats.allocatedMemoryBytes})`,
  runningVcpus: sql<number>`total(CASE WHEN ${summaryStatus} = 'running' THEN ${guestStats.allocatedVcpus} END)`,
  runningMemoryBytes: sql<number>`total(CASE WHEN ${summaryStatus} = 'running' THEN ${guestStats.allocatedMemoryBytes} END)`,
  usedMemoryBytes: sql<number>`total(CASE WHEN NOT ${summaryStale} THEN ${guestStats.usedMemoryBytes} END)`,
};

/** The group key of a guest_stats row for `by` (node, type and cluster are its own columns). */
function summaryKey(by: Exclude<AggregateBy, 'tag' | 'pool'>): AnySQLiteColumn | SQL {
  return by === 'status' ? summaryStatus : by === 'lastKnownStatus' ? summaryLastKnown : guestStats[by];
}

const NO_KEY = sql<string | null>`NULL`;

/** statsBy from guest_stats, for the groupings and filters it holds; undefined otherwise. */
function summedStatsBy(store: Store, by: AggregateBy | undefined, filter: GuestFilter): StatsRow[] | undefined {
  const keys = summaryFilter(filter);
  if (!keys || by === 'tag' || by === 'pool') return undefined;
  const query: Runnable<StatsRow> = prepared(store, `stats-summed:${by ?? ''}:${keys.join(',')}`, () => {
    const key = by === undefined ? NO_KEY : summaryKey(by);
    const q = store.db
      .select({ key, cluster: by === 'node' ? guestStats.cluster : NO_KEY, ...SUMMED_STATS })
      .from(guestStats)
      .innerJoin(clusters, summaryJoin)
      .where(summaryWhere(keys))
      .$dynamic();
    if (by === 'node') q.groupBy(guestStats.cluster, guestStats.node).orderBy(guestStats.cluster, guestStats.node);
    else if (by !== undefined) q.groupBy(key).orderBy(key);
    return q.prepare() as unknown as Runnable<StatsRow>;
  });
  return query.all(Object.fromEntries(keys.map((k) => [k, filter[k]])));
}

export function statsBy(store: Store, by: AggregateBy | undefined, filter: GuestFilter): StatsRow[] {
  const summed = summedStatsBy(store, by, filter);
  if (summed) return summed;
  const bound = guestConditions({ ...filter, includeDeleted: false });
  const query: Runnable<StatsRow> = prepared(store, `stats:${by ?? ''}:${bound.shape}`, () => {
    const select = (key: AnySQLiteColumn | SQL, cluster: AnySQLiteColumn | SQL) =>
      store.db
        .select({ key, cluster, ...STATS })
        .from(guests)
        .leftJoin(guestMetrics, metricsJoin)
        .$dynamic();
    const where = and(...bound.where);
    let q;
    switch (by) {
      case undefined:
        q = select(NO_KEY, NO_KEY).where(where);
        break;
      case 'tag':
        q = select(sql<string | null>`min(${guestTags.tag})`, NO_KEY)
          .leftJoin(guestTags, and(eq(guestTags.cluster, guests.cluster), eq(guestTags.vmid, guests.vmid)))
          .where(where)
          .groupBy(guestTags.tagKey)
          .orderBy(sql`${guestTags.tagKey} IS NULL`, guestTags.tagKey);
        break;
      case 'node':
      case 'pool': {
        const col = by === 'node' ? guests.node : guests.pool;
        q = select(col, guests.cluster)
          .where(where)
          .groupBy(guests.cluster, col)
          .orderBy(guests.cluster, sql`${col} IS NULL`, col);
        break;
      }
      default: {
        const col = by === 'status' ? currentStatus : by === 'lastKnownStatus' ? guests.status : guests[by];
        q = select(col, NO_KEY).where(where).groupBy(col).orderBy(col);
      }
    }
    return q.prepare() as unknown as Runnable<StatsRow>;
  });
  return query.all(bound.params);
}

const emptyStats = (): GuestStats => ({
  guests: 0,
  running: 0,
  unknown: 0,
  templates: 0,
  allocatedVcpus: 0,
  allocatedMemoryBytes: 0,
  runningVcpus: 0,
  runningMemoryBytes: 0,
  usedMemoryBytes: 0,
});

function sumStats(list: GuestStats[]): GuestStats {
  const total = emptyStats();
  for (const s of list) for (const key of Object.keys(total) as Array<keyof GuestStats>) total[key] += s[key];
  return total;
}

export const toStats = (r: StatsRow | undefined): GuestStats =>
  r
    ? {
        guests: r.guests,
        running: r.running,
        unknown: r.unknown,
        templates: r.templates,
        allocatedVcpus: r.allocatedVcpus,
        allocatedMemoryBytes: r.allocatedMemoryBytes,
        runningVcpus: r.runningVcpus,
        runningMemoryBytes: r.runningMemoryBytes,
        usedMemoryBytes: r.usedMemoryBytes,
      }
    : emptyStats();

/**
 * Guest counts and allocation per node, pool, tag, status, type or cluster, over the guests
 * matching `filter` (deleted guests never count). Templates count in `guests` and `templates`
 * but not in allocation. by=node lists every known node in scope (empty ones with zeros) with its
 * physical size and overcommit ratios.
 */
export function aggregate(store: Store, by: AggregateBy, filter: Omit<GuestFilter, 'includeDeleted'> = {}): Aggregate {
  return oneRead(store, () => {
    const rows = statsBy(store, by, filter);
    // Every guest is in exactly one group, except by tag (a guest has several): only then do the
    // totals need a scan of their own.
    const totals = by === 'tag' ? toStats(statsBy(store, undefined, filter)[0]) : sumStats(rows.map(toStats));
    if (by !== 'node') {
      const groups = rows.map((r): AggregateGroup => ({
        key: r.key,
        ...(by === 'pool' ? { cluster: r.cluster ?? '' } : {}),
        ...toStats(r),
      }));
      return { by, groups, totals };
    }
    const nodeRows = store.db
      .select()
      .from(nodes)
      .where(
        and(
          filter.cluster !== undefined ? eq(nodes.cluster, filter.cluster) : undefined,
          filter.node !== undefined ? eq(nodes.node, filter.node) : undefined,
        ),
      )
      .all();
    const byKey = new Map(rows.map((r) => [`${r.cluster}\u0000${r.key}`, r]));
    const keys = new Map<string, { cluster: string; node: string }>();
    for (const n of nodeRows) keys.set(`${n.cluster}\u0000${n.node}`, { cluster: n.cluster, node: n.node });
    for (const r of rows) keys.set(`${r.cluster}\u0000${r.key}`, { cluster: r.cluster ?? '', node: r.key ?? '' });
    const physical = new Map(nodeRows.map((n) => [`${n.cluster}\u0000${n.node}`, n]));
    const groups = [...keys.entries()]
      .sort(([, a], [, b]) => a.cluster.localeCompare(b.cluster) || a.node.localeCompare(b.node))
      .map(([key, { cluster, node }]): AggregateGroup => {
        const stats = toStats(byKey.get(key));
        const n = physical.get(key);
        return {
          key: node,
          cluster,
          ...stats,
          physicalCpus: n?.maxcpu ?? null,
          physicalMemoryBytes: n?.maxmem ?? null,
          cpuOvercommit: ratio(stats.allocatedVcpus, n?.maxcpu),
          memoryOvercommit: ratio(stats.allocatedMemoryBytes, n?.maxmem),
        };
      });
    return { by, groups, totals };
  });
}
