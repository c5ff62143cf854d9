/**
 * Guests by filter: the conditions, counts (from guest_stats and guest_tags where they can say), keyset pages, top consumers.
 *
 * A stale guest (its values not confirmed by the last read: node offline, cluster unreachable,
 * missing from the read) has no current status or usage, as Proxmox reports it: its `status` is
 * `unknown` (filters and sorts take it so), its `lastKnownStatus` the status last seen, and its
 * `cpu`, `mem` and `uptime` are null (get_guest's `metrics` keep the last read's, with their time).
 */
import { and, asc, desc, eq, gt, gte, isNotNull, isNull, lte, sql, type SQL } from 'drizzle-orm';
import type { Store } from '../db.js';
import { prepared } from '../prepared.js';
import { STALE_STATUS_PREFIX } from '../guest-stats.js';
import { clusters, guestMetrics, guests, guestStats, guestTags, nodes, pools } from '../schema.js';
import { countFactGuests, drivingFacts, factConditions, type FactFilter } from './facts.js';
import {
  clampLimit,
  iso,
  metricsJoin,
  oneRead,
  P,
  QUERY_LIMITS,
  QueryError,
  stringArray,
  type LimitInfo,
  type Runnable,
} from './shared.js';

// ---- guests: filters ------------------------------------------------------------------------------

/** `*`/`?` glob (anchored) or plain substring, to a LIKE pattern with `\` as the escape character. */
function likePattern(pattern: string): string {
  const escaped = pattern.replace(/[\\%_]/g, (ch) => `\\${ch}`);
  return /[*?]/.test(pattern) ? escaped.replace(/\*/g, '%').replace(/\?/g, '_') : `%${escaped}%`;
}

/**
 * The effective last-seen time of a guest row. A subquery rather than a join of `clusters`: the
 * join makes SQLite sort every matching guest instead of walking the listing index for a page.
 */
const effectiveLastSeen = sql<number>`CASE WHEN ${guests.stale} = 1 OR ${guests.deletedAt} IS NOT NULL OR ${guests.missingCount} > 0
  THEN ${guests.lastSeenAt} ELSE coalesce((SELECT ${clusters.lastSuccessAt} FROM ${clusters} WHERE ${clusters.name} = ${guests.cluster}), ${guests.lastSeenAt}) END`;

/** The status as answered: `unknown` for a stale guest (what Proxmox says of a guest on an offline node). */
export const currentStatus = sql<string>`CASE WHEN ${guests.stale} = 1 THEN 'unknown' ELSE ${guests.status} END`;

/** The config facts (storage, bridge, VLAN, onboot…) are conditions too: store/queries/facts.ts. */
export interface GuestFilter extends FactFilter {
  cluster?: string;
  node?: string;
  type?: 'qemu' | 'lxc';
  /**
   * The status now: `running`, `stopped`, `paused`… of guests the last read confirmed; `unknown`
   * matches every stale guest (node offline, cluster unreachable, missing from the read); `other`
   * every confirmed guest in none of those (a QEMU state such as `io-error` or `prelaunch`).
   */
  status?: string;
  /** Stale guests (status unknown) whose last known status is this. */
  lastKnownStatus?: string;
  /** One tag, matched case-insensitively (as Proxmox does by default). */
  tag?: string;
  pool?: string;
  /** With `*` or `?`: a glob over the whole name; otherwise a substring. Case-insensitive either way. */
  namePattern?: string;
  template?: boolean;
  /** A lock name, or true for any lock, false for none. */
  lock?: string | boolean;
  minMemoryBytes?: number;
  maxMemoryBytes?: number;
  /** Bounds on `maxcpu` (the vCPUs Proxmox counts for the guest). */
  minCores?: number;
  maxCores?: number;
  /** Include tombstoned guests (default false). */
  includeDeleted?: boolean;
}

/** `status: 'other'`: a status now that is none of the common ones. */
export const OTHER_STATUS = 'other';
const COMMON_STATUSES = ['running', 'stopped', 'paused', 'unknown'].map((v) => `'${v}'`).join(', ');

/** Filters guest_facets answers from one value's index range: a tag, pool, ostype, storage, bridge or VLAN, or a config fact. */
const FACET_FILTERS = [
  'tag',
  'pool',
  'ostype',
  'storage',
  'bridge',
  'vlan',
  'onboot',
  'protection',
  'agent',
  'hasSnapshots',
] as const satisfies ReadonlyArray<keyof GuestFilter>;

/**
 * Whether guest_facets answers this filter better than the guest rows: it names one of
 * FACET_FILTERS (without one, a count would walk every guest's facet row, probing the guest row for
 * a lock or a name). Deleted guests and `status: other` are not in guest_facets.
 */
export function namesFacet(f: GuestFilter): boolean {
  return !f.includeDeleted && f.status !== OTHER_STATUS && FACET_FILTERS.some((k) => f[k] !== undefined);
}

/** A filter as SQL conditions with placeholders, their values, and a name for its shape. */
interface BoundFilter {
  where: SQL[];
  params: Record<string, string | number>;
  /** Which conditions are present: the key a prepared query is cached under. */
  shape: string;
}

/**
 * `tagProbe`: test the tag per guest (for a page walking the listing index, which stops after a
 * page) rather than list the tag's guests first (for a count or a sort by anything else).
 */
export function guestConditions(
  f: GuestFilter,
  { tagProbe = false, driving }: { tagProbe?: boolean; driving?: ReadonlySet<string> } = {},
): BoundFilter {
  const where: SQL[] = [];
  const params: Record<string, string | number> = {};
  const shape: string[] = [];
  const fixed = (name: string, condition: SQL): void => {
    where.push(condition);
    shape.push(name);
  };
  const bound = (name: string, value: string | number | undefined, condition: SQL): void => {
    if (value === undefined) return;
    fixed(name, condition);
    params[name] = value;
  };
  if (!f.includeDeleted) fixed('live', isNull(guests.deletedAt));
  bound('cluster', f.cluster, eq(guests.cluster, P('cluster')));
  bound('node', f.node, eq(guests.node, P('node')));
  bound('type', f.type, eq(guests.type, P('type')));
  // Two shapes, so that a status other than unknown is still read from the listing index.
  if (f.status === 'unknown') fixed('unknown', sql`(${guests.stale} = 1 OR ${guests.status} = 'unknown')`);
  else if (f.status === OTHER_STATUS)
    fixed('otherStatus', sql`${guests.stale} = 0 AND ${guests.status} NOT IN (${sql.raw(COMMON_STATUSES)})`);
  else bound('status', f.status, sql`${guests.status} = ${P('status')} AND ${guests.stale} = 0`);
  bound('lastKnown', f.lastKnownStatus, sql`${guests.stale} = 1 AND ${guests.status} = ${P('lastKnown')}`);
  bound('pool', f.pool, eq(guests.pool, P('pool')));
  bound('template', f.template === undefined ? undefined : Number(f.template), eq(guests.template, P('template')));
  bound(
    tagProbe ? 'tagProbe' : 'tag',
    f.tag?.toLowerCase(),
    tagProbe
      ? sql`EXISTS (SELECT 1 FROM ${guestTags} WHERE ${guestTags.tagKey} = ${P('tagProbe')} AND ${guestTags.cluster} = ${guests.cluster} AND ${guestTags.vmid} = ${guests.vmid})`
      : sql`(${guests.cluster}, ${guests.vmid}) IN (SELECT ${guestTags.cluster}, ${guestTags.vmid} FROM ${guestTags} WHERE ${guestTags.tagKey} = ${P('tag')})`,
  );
  bound(
    'name',
    f.namePattern === undefined ? undefined : likePattern(f.namePattern),
    sql`${guests.name} LIKE ${P('name')} ESCAPE '\\'`,
  );
  if (f.lock === true) fixed('locked', isNotNull(guests.lock));
  else if (f.lock === false) fixed('unlocked', isNull(guests.lock));
  else bound('lock', f.lock, eq(guests.lock, P('lock')));
  bound('minMem', f.minMemoryBytes, gte(guests.maxmem, P('minMem')));
  bound('maxMem', f.maxMemoryBytes, lte(guests.maxmem, P('maxMem')));
  bound('minCores', f.minCores, gte(guests.maxcpu, P('minCores')));
  bound('maxCores', f.maxCores, lte(guests.maxcpu, P('maxCores')));
  const facts = factConditions(f, { driving });
  where.push(...facts.where);
  Object.assign(params, facts.params);
  if (facts.shape) shape.push(facts.shape);
  return { where, params, shape: shape.join(',') };
}

// ---- guests: list -----------------------------------------------------------------------------------

export type GuestSort = 'vmid' | 'name' | 'node' | 'status' | 'maxmem' | 'maxcpu' | 'mem' | 'cpu' | 'maxdisk';

export interface ListGuestsOptions {
  sort?: GuestSort;
  order?: 'asc' | 'desc';
  /** Default 50, at most 500. */
  limit?: number;
  /** `nextCursor` of the previous page, with the same filter, sort and order. */
  cursor?: string;
}

export interface GuestSummary {
  cluster: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  node: string;
  name: string | null;
  status: string;
  template: boolean;
  tags: string[];
  lock: string | null;
  pool: string | null;
  hastate: string | null;
  maxcpu: number | null;
  maxmem: number | null;
  maxdisk: number | null;
  /** Live metrics of the last read: null before the first live read, and while the guest is stale. */
  cpu: number | null;
  mem: number | null;
  uptime: number | null;
  /** Not confirmed by the last read: status `unknown`, no live metrics. */
  stale: boolean;
  /** The status last seen, while the guest is stale; null otherwise. */
  lastKnownStatus: string | null;
  lastSeenAt: string | null;
  /** From the config (null until the first config read). */
  cores: number | null;
  sockets: number | null;
  memoryMib: number | null;
  ostype: string | null;
  /** Set on tombstoned guests (listed only with `includeDeleted`). */
  deletedAt: string | null;
}

export type GuestField = keyof GuestSummary;

export interface GuestPage<Item = GuestSummary> extends LimitInfo {
  items: Item[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
  /** Guests matching the filter, on every page. */
  total: number;
  /** How many items of this page are stale (status unknown) and when they were last seen; absent when none is. */
  staleItems?: { count: number; lastSeenFrom: string; lastSeenTo: string };
  /**
   * The page ends inside a run of guests with the same sort value: how many more (on the next
   * pages) have the last row's value, which it is (`sortKey`: -1 for unknown), and by what.
   */
  sameAfter?: { count: number; sort: GuestSort; sortKey: number | string };
}

const SORT_KEYS: Record<GuestSort, { expr: SQL; kind: 'number' | 'string' }> = {
  vmid: { expr: sql`${guests.vmid}`, kind: 'number' },
  name: { expr: sql`lower(coalesce(${guests.name}, ''))`, kind: 'string' },
  node: { expr: sql`${guests.node}`, kind: 'string' },
  status: { expr: sql`${currentStatus}`, kind: 'string' },
  // Unknown sizes and metrics sort as -1: below every real value. A stale guest's usage is unknown.
  maxmem: { expr: sql`coalesce(${guests.maxmem}, -1)`, kind: 'number' },
  maxcpu: { expr: sql`coalesce(${guests.maxcpu}, -1)`, kind: 'number' },
  maxdisk: { expr: sql`coalesce(${guests.maxdisk}, -1)`, kind: 'number' },
  mem: { expr: sql`CASE WHEN ${guests.stale} = 1 THEN -1 ELSE coalesce(${guestMetrics.mem}, -1) END`, kind: 'number' },
  cpu: { expr: sql`CASE WHEN ${guests.stale} = 1 THEN -1 ELSE coalesce(${guestMetrics.cpu}, -1) END`, kind: 'number' },
};

/** Sorts with an index of live guests in their order (guests_live_maxmem, …, each with its descending twin). */
const SORT_INDEXES: ReadonlySet<GuestSort> = new Set(['maxmem', 'maxcpu', 'maxdisk', 'name', 'node']);

interface Cursor {
  sort: GuestSort;
  order: 'asc' | 'desc';
  key: number | string;
  cluster: string;
  vmid: number;
}

/**
 * `sort:order:key:cluster:vmid`, each part URI-encoded (so `:` never occurs inside one): short and
 * cheap in tokens for a model that carries it back, unlike base64 of JSON.
 */
function encodeCursor(c: Cursor): string {
  return [c.sort, c.order, c.key, c.cluster, c.vmid].map((part) => encodeURIComponent(String(part))).join(':');
}

function decodeCursor(text: string, sort: GuestSort, order: 'asc' | 'desc'): Cursor {
  const bad = (why: string): QueryError =>
    new QueryError(
      `malformed cursor (${why}); pass nextCursor from the previous page unchanged, or omit cursor to start again`,
      'bad_cursor',
    );
  const parts = text.split(':');
  if (parts.length !== 5) throw bad('expected 5 parts');
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    throw bad('undecodable');
  }
  const [s, o, k, c, v] = decoded as [string, string, string, string, string];
  if (!Object.hasOwn(SORT_KEYS, s) || (o !== 'asc' && o !== 'desc')) throw bad('no sort order');
  if (s !== sort || o !== order) {
    throw new QueryError(
      `cursor was made for sort=${s} order=${o}, not sort=${sort} order=${order}; keep the same sort while paging, or omit cursor`,
      'bad_cursor',
    );
  }
  const key = SORT_KEYS[sort].kind === 'number' ? Number(k) : k;
  const vmid = Number(v);
  if (
    (typeof key === 'number' && (k === '' || !Number.isFinite(key))) ||
    c === '' ||
    !Number.isInteger(vmid) ||
    v === ''
  )
    throw bad('missing position');
  return { sort, order, key, cluster: c, vmid };
}

export const summaryColumns = {
  cluster: guests.cluster,
  vmid: guests.vmid,
  type: guests.type,
  node: guests.node,
  name: guests.name,
  status: guests.status,
  template: guests.template,
  tags: guests.tags,
  lock: guests.lock,
  pool: guests.pool,
  hastate: guests.hastate,
  maxcpu: guests.maxcpu,
  maxmem: guests.maxmem,
  maxdisk: guests.maxdisk,
  cpu: guestMetrics.cpu,
  mem: guestMetrics.mem,
  uptime: guestMetrics.uptime,
  stale: guests.stale,
  // The stored status; toSummary keeps it only for a stale row (and answers `status` unknown).
  lastKnownStatus: guests.status,
  lastSeenAt: effectiveLastSeen,
  cores: guests.cores,
  sockets: guests.sockets,
  memoryMib: guests.memoryMib,
  ostype: guests.ostype,
  deletedAt: guests.deletedAt,
} satisfies Record<GuestField, unknown>;

const GUEST_FIELDS = Object.keys(summaryColumns) as GuestField[];
const METRIC_FIELDS = new Set<GuestField>(['cpu', 'mem', 'uptime']);

/** A row as selected: JSON text and epoch times still to convert; a page also reads `staleRow` and `seenRow`, whatever the fields. */
type SummaryRow = Record<string, unknown> & { cluster: string; vmid: number; staleRow?: boolean; seenRow?: number };

/** The selected fields of a row, converted (tags parsed, times as ISO; a stale row's status unknown, its usage null). */
export function toSummary(r: SummaryRow): GuestSummary {
  const out: Record<string, unknown> = {};
  const stale = Boolean(r.stale ?? r.staleRow);
  for (const key of GUEST_FIELDS) {
    if (!(key in r)) continue;
    const v = r[key];
    if (key === 'tags') out[key] = stringArray(v as string);
    else if (key === 'lastSeenAt' || key === 'deletedAt') out[key] = iso(v as number | null);
    else if (stale && key === 'status') out[key] = 'unknown';
    else if (key === 'lastKnownStatus') out[key] = stale ? v : null;
    else if (stale && METRIC_FIELDS.has(key)) out[key] = null;
    else out[key] = v;
  }
  return out as unknown as GuestSummary;
}

const SUMMARY_FILTERS = ['cluster', 'node', 'type', 'status', 'lastKnownStatus'] as const;
export type SummaryKey = (typeof SUMMARY_FILTERS)[number];

/**
 * A guest_stats row counts stale guests: its status key says so (`stale:running`, store/guest-stats.ts),
 * or its cluster's last read failed (which marks every guest stale and leaves guest_stats as it was).
 * Queries using it read guest_stats joined with its cluster (`summaryJoin`).
 */
const STALE_LIKE = sql.raw(`'${STALE_STATUS_PREFIX}%'`);
export const summaryStale = sql<boolean>`(${guestStats.status} LIKE ${STALE_LIKE} OR ${clusters.stale} = 1)`;
/** guest_stats with each row's cluster, for `summaryStale` (every row has one: a foreign key). */
export const summaryJoin = eq(clusters.name, guestStats.cluster);
/** The status now (`unknown` for stale guests) and the status last seen, of a guest_stats row. */
export const summaryStatus = sql<string>`CASE WHEN ${summaryStale} THEN 'unknown' ELSE ${guestStats.status} END`;
export const summaryLastKnown = sql<string>`CASE WHEN ${guestStats.status} LIKE ${STALE_LIKE} THEN substr(${guestStats.status}, ${sql.raw(String(STALE_STATUS_PREFIX.length + 1))}) ELSE ${guestStats.status} END`;

/**
 * The structural filters guest_stats answers (live guests by cluster, node, type, status now and
 * last known status), present in `f`; undefined when the filter needs the guest rows themselves.
 */
export function summaryFilter(f: GuestFilter): SummaryKey[] | undefined {
  if (f.status === OTHER_STATUS) return undefined;
  const used = (Object.keys(f) as Array<keyof GuestFilter>).filter(
    (k) => f[k] !== undefined && !(k === 'includeDeleted' && f[k] === false),
  );
  if (used.some((k) => !(SUMMARY_FILTERS as readonly string[]).includes(k))) return undefined;
  return SUMMARY_FILTERS.filter((k) => f[k] !== undefined);
}

export const summaryWhere = (keys: readonly SummaryKey[]): SQL | undefined =>
  and(
    ...keys.map((k) => {
      if (k === 'status') return sql`${summaryStatus} = ${P(k)}`;
      if (k === 'lastKnownStatus') return sql`${summaryStale} AND ${summaryLastKnown} = ${P(k)}`;
      return eq(guestStats[k], P(k));
    }),
  );

/**
 * How many guests match: from guest_stats when it can say; with a tag, from the guests having
 * it; else by counting rows.
 */
export function countGuests(store: Store, f: GuestFilter): number {
  const count = { n: sql<number>`count(*)` };
  const summary = summaryFilter(f);
  if (summary) {
    const query: Runnable<{ n: number }> = prepared(store, `count-summary:${summary.join(',')}`, () =>
      store.db
        .select({ n: sql<number>`total(${guestStats.guests})` })
        .from(guestStats)
        .innerJoin(clusters, summaryJoin)
        .where(summaryWhere(summary))
        .prepare(),
    );
    return query.get(Object.fromEntries(summary.map((k) => [k, f[k]])))?.n ?? 0;
  }
  // A facet value or config fact named: counted on that value's range of guest_facets, no guest row read.
  if (namesFacet(f)) return countFactGuests(store, f);
  if (f.tag === undefined) {
    const bound = guestConditions(f);
    const query: Runnable<{ n: number }> = prepared(store, `count:${bound.shape}`, () =>
      store.db
        .select(count)
        .from(guests)
        .where(and(...bound.where))
        .prepare(),
    );
    return query.get(bound.params)?.n ?? 0;
  }
  const { tag, ...rest } = f;
  const bound = guestConditions(rest);
  const query: Runnable<{ n: number }> = prepared(store, `count-tag:${bound.shape}`, () =>
    store.db
      .select(count)
      .from(guestTags)
      .innerJoin(guests, and(eq(guests.cluster, guestTags.cluster), eq(guests.vmid, guestTags.vmid)))
      .where(and(eq(guestTags.tagKey, P('tag')), ...bound.where))
      .prepare(),
  );
  return query.get({ ...bound.params, tag: tag.toLowerCase() })?.n ?? 0;
}

/**
 * Guests matching `filter`, one page at a time. Paging is keyset: the cursor holds the last
 * item's sort key and its (cluster, vmid), which break ties (always ascending), so a page never
 * repeats or skips a guest even when rows sort equal or change between pages. `fields` selects
 * what each item carries (cluster and vmid always): fewer columns read less.
 */
export function listGuests<F extends GuestField = GuestField>(
  store: Store,
  filter: GuestFilter = {},
  options: ListGuestsOptions & { fields?: readonly F[] } = {},
): GuestPage<Pick<GuestSummary, F | 'cluster' | 'vmid'>> {
  const sort = options.sort ?? 'vmid';
  const order = options.order ?? 'asc';
  const { expr } = SORT_KEYS[sort];
  const limitInfo = clampLimit(options.limit, QUERY_LIMITS.guests.default, QUERY_LIMITS.guests.max);
  // In vmid order a page is read from guest_facets (guest-listing.ts) or walks the listing index, probing.
  const driving =
    sort === 'vmid'
      ? undefined
      : drivingFacts(store, filter, limitInfo.limit + 1, SORT_INDEXES.has(sort) && !filter.includeDeleted);
  const bound = guestConditions(filter, { tagProbe: driving === undefined || !driving.has('tag'), driving });
  const after = options.cursor !== undefined ? decodeCursor(options.cursor, sort, order) : undefined;
  const fields = options.fields
    ? GUEST_FIELDS.filter(
        (f) => f === 'cluster' || f === 'vmid' || (options.fields as readonly GuestField[]).includes(f),
      )
    : GUEST_FIELDS;
  const withMetrics = sort === 'mem' || sort === 'cpu' || fields.some((f) => METRIC_FIELDS.has(f));

  const query: Runnable<SummaryRow & { sortKey: number | string }> = prepared(
    store,
    `page:${bound.shape}:${sort}:${order}:${after ? 'after' : ''}:${fields.join(',')}`,
    () => {
      const seek = sql`(${expr} ${sql.raw(order === 'asc' ? '>' : '<')} ${P('afterKey')}
      OR (${expr} = ${P('afterKey')} AND (${guests.cluster}, ${guests.vmid}) > (${P('afterCluster')}, ${P('afterVmid')})))`;
      const columns = Object.fromEntries(fields.map((f) => [f, summaryColumns[f]]));
      // Staleness and the raw last-seen time (a stale row's own) whatever the fields: toSummary and staleItems need them.
      const base = store.db
        .select({
          ...columns,
          staleRow: guests.stale,
          seenRow: guests.lastSeenAt,
          sortKey: sql<number | string>`${expr}`,
        })
        .from(guests)
        .$dynamic();
      return (
        (withMetrics ? base.leftJoin(guestMetrics, metricsJoin) : base)
          .where(and(...bound.where, after ? seek : undefined))
          // vmid twice in ORDER BY (sort key and tie-break) keeps SQLite from walking the listing index.
          .orderBy(
            order === 'asc' ? asc(expr) : desc(expr),
            asc(guests.cluster),
            ...(sort === 'vmid' ? [] : [asc(guests.vmid)]),
          )
          .limit(P('limit'))
          .prepare() as unknown as Runnable<SummaryRow & { sortKey: number | string }>
      );
    },
  );

  return oneRead(store, () => {
    const total = countGuests(store, filter);
    // Nothing to page through (e.g. status unknown while every node answers): no walk of the index.
    const rows =
      total === 0
        ? []
        : query.all({
            ...bound.params,
            limit: limitInfo.limit + 1,
            ...(after ? { afterKey: after.key, afterCluster: after.cluster, afterVmid: after.vmid } : {}),
          });
    const page = rows.slice(0, limitInfo.limit);
    const last = page.at(-1);
    const result: GuestPage<Pick<GuestSummary, F | 'cluster' | 'vmid'>> = {
      items: page.map(toSummary),
      total,
      ...limitInfo,
    };
    const seen = page
      .filter((r) => r.staleRow)
      .map((r) => r.seenRow ?? 0)
      .sort((a, b) => a - b);
    if (seen.length)
      result.staleItems = { count: seen.length, lastSeenFrom: iso(seen[0])!, lastSeenTo: iso(seen.at(-1))! };
    if (rows.length > limitInfo.limit && last)
      result.nextCursor = encodeCursor({ sort, order, key: last.sortKey, cluster: last.cluster, vmid: last.vmid });
    // vmid is unique within a cluster: only another sort can cut a run of equal values.
    if (last && sort !== 'vmid' && rows[limitInfo.limit]?.sortKey === last.sortKey)
      result.sameAfter = {
        count: countSameAfter(store, bound, sort, last),
        sort,
        sortKey: last.sortKey,
      };
    return result;
  });
}

/** Guests after `last` in the listing order that share its sort value. */
function countSameAfter(
  store: Store,
  bound: BoundFilter,
  sort: GuestSort,
  last: SummaryRow & { sortKey: number | string },
): number {
  const { expr } = SORT_KEYS[sort];
  const joinMetrics = sort === 'mem' || sort === 'cpu';
  const query: Runnable<{ n: number }> = prepared(store, `same-after:${bound.shape}:${sort}`, () => {
    const base = store.db
      .select({ n: sql<number>`count(*)` })
      .from(guests)
      .$dynamic();
    return (joinMetrics ? base.leftJoin(guestMetrics, metricsJoin) : base)
      .where(
        and(
          ...bound.where,
          sql`${expr} = ${P('key')}`,
          // `+`: not a range of the node index, whose row lookups cost three times a scan.
          sql`(+${guests.cluster}, ${guests.vmid}) > (${P('afterCluster')}, ${P('afterVmid')})`,
        ),
      )
      .prepare() as unknown as Runnable<{ n: number }>;
  });
  return query.get({ ...bound.params, key: last.sortKey, afterCluster: last.cluster, afterVmid: last.vmid })?.n ?? 0;
}

export type FilterValueKind = 'node' | 'pool' | 'tag';

/**
 * The values a filter can name that the inventory knows (of one cluster, or all): nodes, pools,
 * tags (lower-cased, as the tag filter matches them). For a miss's hint: read only when a filter
 * matched nothing.
 */
export function knownFilterValues(store: Store, kind: FilterValueKind, cluster?: string): string[] {
  const from =
    kind === 'node'
      ? { value: nodes.node, cluster: nodes.cluster, table: nodes }
      : kind === 'pool'
        ? { value: pools.pool, cluster: pools.cluster, table: pools }
        : { value: guestTags.tagKey, cluster: guestTags.cluster, table: guestTags };
  return store.db
    .selectDistinct({ value: from.value })
    .from(from.table)
    .where(cluster === undefined ? undefined : eq(from.cluster, cluster))
    .orderBy(from.value)
    .all()
    .map((r) => r.value);
}

/** A guest in a top-consumers list. */
export type TopGuest = Pick<
  GuestSummary,
  'cluster' | 'vmid' | 'name' | 'node' | 'type' | 'status' | 'maxcpu' | 'maxmem' | 'cpu' | 'mem'
>;

/**
 * The live guests using the most memory (`mem`) or cpu (`cpu`, a fraction of the guest's own
 * vcpus) at the last read, most first (ties by cluster and vmid). Left out: guests using none
 * (stopped, or without live metrics; paused ones that hold memory stay) and stale ones, whose use
 * now is unknown. Walks the metric's index, so it reads a handful of rows whatever the guest count.
 */
export function topGuests(
  store: Store,
  metric: 'mem' | 'cpu',
  filter: { cluster?: string } = {},
  limit = 5,
): TopGuest[] {
  const inCluster = filter.cluster !== undefined;
  const query: Runnable<TopGuest> = prepared(store, `top:${metric}:${inCluster}`, () => {
    const column = guestMetrics[metric];
    const { cluster, vmid, name, node, type, status, maxcpu, maxmem, cpu, mem } = summaryColumns;
    return store.db
      .select({ cluster, vmid, name, node, type, status, maxcpu, maxmem, cpu, mem })
      .from(guestMetrics)
      .innerJoin(guests, metricsJoin)
      .where(
        and(
          isNull(guests.deletedAt),
          eq(guests.stale, false),
          gt(column, 0),
          inCluster ? eq(guests.cluster, P('cluster')) : undefined,
        ),
      )
      .orderBy(desc(column), asc(guests.cluster), asc(guests.vmid))
      .limit(P('limit'))
      .prepare();
  });
  return oneRead(store, () => query.all({ limit, ...(inCluster ? { cluster: filter.cluster } : {}) }));
}
