/**
 * Values for what people type into an MCP client's pickers: cluster and node names, guest vmids and
 * names. Matching is by prefix, ignoring case; the values are ranked shortest first (an exact match
 * leads), then those matching the case typed, then alphabetically, and `total` counts every match.
 * Guests are read through indexes by range (a vmid prefix is a few vmid ranges, a name prefix one
 * range of the lower-cased name index): a substring match would scan every guest, ten times the cost.
 */
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { clusters, guests, nodes } from '../schema.js';
import { P, type Runnable } from './shared.js';

export interface Completion {
  /** At most the limit asked for, best first. */
  values: string[];
  /** Every match, beyond the values returned too. */
  total: number;
}

/** The most values a completion answers with (the MCP limit). */
export const COMPLETION_LIMIT = 100;

/** Proxmox vmids are 100 to 999,999,999: at most nine digits. */
const VMID_DIGITS = 9;

const EMPTY: Completion = { values: [], total: 0 };

/** Names of a small table (clusters, nodes) that start with `typed` in any case, ranked. */
export function rankByPrefix(names: Iterable<string>, typed: string, limit = COMPLETION_LIMIT): Completion {
  const lower = typed.toLowerCase();
  return rank(
    [...names].filter((n) => n.toLowerCase().startsWith(lower)),
    typed,
    limit,
  );
}

/** Matches once each, shortest first (an exact match leads), then in the case typed, then alphabetically. */
function rank(matches: string[], typed: string, limit: number): Completion {
  const unique = [...new Set(matches)];
  const caseDiffers = (n: string): number => (n.startsWith(typed) ? 0 : 1);
  unique.sort((a, b) => a.length - b.length || caseDiffers(a) - caseDiffers(b) || (a < b ? -1 : a > b ? 1 : 0));
  return { values: unique.slice(0, limit), total: unique.length };
}

export function completeClusters(store: Store, typed: string, limit = COMPLETION_LIMIT): Completion {
  const names = prepared(store, 'complete-clusters', () =>
    store.db.select({ name: clusters.name }).from(clusters).prepare(),
  ).all();
  return rankByPrefix(
    names.map((r) => r.name),
    typed,
    limit,
  );
}

/** Node names of one cluster, or of every cluster when none is given (a name two clusters share once). */
export function completeNodes(
  store: Store,
  typed: string,
  cluster: string | undefined,
  limit = COMPLETION_LIMIT,
): Completion {
  const rows =
    cluster === undefined
      ? prepared(store, 'complete-nodes', () => store.db.select({ node: nodes.node }).from(nodes).prepare()).all()
      : prepared(store, 'complete-nodes-of', () =>
          store.db
            .select({ node: nodes.node })
            .from(nodes)
            .where(eq(nodes.cluster, P('cluster')))
            .prepare(),
        ).all({ cluster });
  return rankByPrefix(
    rows.map((r) => r.node),
    typed,
    limit,
  );
}

/**
 * A guest as typed: digits complete live guests' vmids (ascending, which is shortest first),
 * anything else their names. Without a cluster, a vmid or name held in several clusters comes once.
 */
export function completeGuests(
  store: Store,
  typed: string,
  cluster: string | undefined,
  limit = COMPLETION_LIMIT,
): Completion {
  return /^\d*$/.test(typed)
    ? completeVmids(store, typed, cluster, limit)
    : completeGuestNames(store, typed, cluster, limit);
}

/**
 * The vmids that start with `digits`, as ranges: "12" is 12, 120–129, 1200–1299, … up to nine
 * digits. Each range is one index search, in ascending order.
 */
export function vmidRanges(digits: string): Array<[number, number]> {
  if (digits === '') return [[0, 10 ** VMID_DIGITS - 1]];
  if (digits.startsWith('0') || digits.length > VMID_DIGITS) return [];
  const prefix = Number(digits);
  const out: Array<[number, number]> = [];
  for (let width = digits.length; width <= VMID_DIGITS; width++) {
    const scale = 10 ** (width - digits.length);
    out.push([prefix * scale, (prefix + 1) * scale - 1]);
  }
  return out;
}

function completeVmids(store: Store, digits: string, cluster: string | undefined, limit: number): Completion {
  const { page, count } = vmidQueries(store, cluster !== undefined);
  const values: string[] = [];
  let total = 0;
  for (const [from, to] of vmidRanges(digits)) {
    const range = { from, to, cluster };
    if (values.length < limit)
      for (const r of page.all({ ...range, limit: limit - values.length })) values.push(String(r.vmid));
    total += count.get(range)?.n ?? 0;
  }
  return { values, total };
}

/**
 * The partial index of live guests by vmid serves both shapes; the cluster is compared as `+cluster`
 * so SQLite does not choose the primary key (cluster, vmid) instead, which would read every row to
 * check its tombstone (five times slower when a cluster holds most of 10,000 guests).
 */
function vmidQueries(
  store: Store,
  inCluster: boolean,
): { page: Runnable<{ vmid: number }>; count: Runnable<{ n: number }> } {
  const where = and(
    isNull(guests.deletedAt),
    sql`${guests.vmid} BETWEEN ${P('from')} AND ${P('to')}`,
    inCluster ? sql`+${guests.cluster} = ${P('cluster')}` : undefined,
  );
  const shape = inCluster ? 'of' : 'all';
  return {
    page: prepared(store, `complete-vmids-${shape}`, () =>
      store.db
        .selectDistinct({ vmid: guests.vmid })
        .from(guests)
        .where(where)
        .orderBy(asc(guests.vmid))
        .limit(P('limit'))
        .prepare(),
    ),
    count: prepared(store, `complete-vmids-count-${shape}`, () =>
      store.db
        // A vmid is unique within a cluster; across clusters it is counted once, as it is listed once.
        .select({ n: inCluster ? sql<number>`count(*)` : sql<number>`count(DISTINCT ${guests.vmid})` })
        .from(guests)
        .where(where)
        .prepare(),
    ),
  };
}

/**
 * Names starting with `typed` in any case: one range of the lower-cased name index, ranked here
 * (a second query to count them, or a window function, cost more than sorting the matches). The
 * statement is better-sqlite3's own, plucking the one column: drizzle's mapping of each row into
 * an object cost more than the query itself when 2,000 names match (8 ms against 3.5).
 */
function completeGuestNames(store: Store, typed: string, cluster: string | undefined, limit: number): Completion {
  if (typed === '') return EMPTY;
  const inCluster = cluster !== undefined;
  const names = prepared(store, `complete-names-${inCluster ? 'of' : 'all'}`, () =>
    store.sqlite
      .prepare<{ typed: string; cluster?: string }, string>(
        // U+10FFFF sorts after every character that can follow the prefix. `+cluster`: the name
        // range is the narrower search (SQLite would otherwise walk all of the cluster's guests).
        `SELECT name FROM guests WHERE deleted_at IS NULL
           AND lower(name) >= lower(@typed) AND lower(name) < lower(@typed) || char(1114111)
           ${inCluster ? 'AND +cluster = @cluster' : ''}`,
      )
      .pluck(),
  ).all(inCluster ? { typed, cluster } : { typed });
  return rank(names, typed, limit);
}
