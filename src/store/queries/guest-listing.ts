/**
 * list_guests' page in listing order (vmid, then cluster) when the filter names a facet value (a
 * tag, pool, ostype, storage, bridge or VLAN) or a config fact (onboot, protection, agent,
 * snapshots): the guests come from that value's range of guest_facets (findGuestRefs), and only the
 * page's own rows are read from `guests`, for the fields asked. Walking the guest rows' listing
 * index instead tests guest after guest until a page is full: for a VLAN one guest in a hundred
 * has, that is 5,000 wide rows read for a page of 50.
 */
import { sql } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { guestMetrics, guests } from '../schema.js';
import { findGuestRefs, refsParam } from './facts.js';
import {
  namesFacet,
  summaryColumns,
  toSummary,
  type GuestField,
  type GuestFilter,
  type GuestPage,
  type GuestSort,
  type GuestSummary,
} from './guests.js';
import { iso, metricsJoin, oneRead, P, type Runnable } from './shared.js';

/**
 * Whether a page is read through guest_facets: in listing order (vmid ascending, the order of its
 * ranges) and naming a facet value or config fact (namesFacet).
 */
export function readsFacets(filter: GuestFilter, sort: GuestSort = 'vmid', order: 'asc' | 'desc' = 'asc'): boolean {
  return sort === 'vmid' && order === 'asc' && namesFacet(filter);
}

const METRIC_FIELDS = new Set<GuestField>(['cpu', 'mem', 'uptime']);

type Row = Record<string, unknown> & { cluster: string; vmid: number; staleRow: boolean; seenRow?: number };

/** The rows of these guests with the fields asked (cluster and vmid always), in no particular order. */
function rowsOf(store: Store, refs: ReadonlyArray<{ cluster: string; vmid: number }>, fields: GuestField[]): Row[] {
  const withMetrics = fields.some((f) => METRIC_FIELDS.has(f));
  const query: Runnable<Row> = prepared(store, `listing-rows:${fields.join(',')}`, () => {
    const base = store.db
      .select({
        ...Object.fromEntries(fields.map((f) => [f, summaryColumns[f]])),
        staleRow: guests.stale,
        seenRow: guests.lastSeenAt,
      })
      .from(guests)
      .$dynamic();
    return (withMetrics ? base.leftJoin(guestMetrics, metricsJoin) : base)
      .where(
        sql`(${guests.cluster}, ${guests.vmid}) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(${P('refs')}))`,
      )
      .prepare() as unknown as Runnable<Row>;
  });
  return query.all({ refs: refsParam(refs) });
}

/** A page as listGuests answers it; with a storage filter, each guest's disk bytes there, keyed `cluster/vmid`. */
export type FacetPage<F extends GuestField> = GuestPage<Pick<GuestSummary, F | 'cluster' | 'vmid'>> & {
  storageBytes?: Map<string, number | null>;
};

/**
 * A page of guests matching `filter` in listing order through guest_facets, shaped as listGuests
 * answers (the same fields, stale items, total); the cursor is the last item's place (`vmid:cluster`).
 */
export function listGuestsByFacets<F extends GuestField = GuestField>(
  store: Store,
  filter: GuestFilter,
  options: { limit?: number; cursor?: string; fields: readonly F[] },
): FacetPage<F> {
  const fields = (Object.keys(summaryColumns) as GuestField[]).filter(
    (f) => f === 'cluster' || f === 'vmid' || (options.fields as readonly GuestField[]).includes(f),
  );
  return oneRead(store, () => {
    const found = findGuestRefs(store, filter, { limit: options.limit, cursor: options.cursor });
    const byRef = new Map(rowsOf(store, found.items, fields).map((r) => [`${r.cluster}\u0000${r.vmid}`, r]));
    const rows = found.items.map((g) => byRef.get(`${g.cluster}\u0000${g.vmid}`)!);
    const page: FacetPage<F> = {
      items: rows.map((r) => toSummary(r)),
      total: found.total,
      limit: found.limit,
      ...(found.limitClamped ? { limitClamped: found.limitClamped } : {}),
      ...(found.nextCursor ? { nextCursor: found.nextCursor } : {}),
    };
    if (filter.storage !== undefined)
      page.storageBytes = new Map(found.items.map((g) => [`${g.cluster}/${g.vmid}`, g.storageBytes ?? null]));
    const seen = rows
      .filter((r) => r.staleRow)
      .map((r) => r.seenRow ?? 0)
      .sort((a, b) => a - b);
    if (seen.length)
      page.staleItems = { count: seen.length, lastSeenFrom: iso(seen[0])!, lastSeenTo: iso(seen.at(-1))! };
    return page;
  });
}
