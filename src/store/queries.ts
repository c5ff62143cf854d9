/**
 * The read side of the store: the queries MCP tools (and later actions and webhooks) answer from.
 *
 * Conventions, for every function here:
 * - Synchronous, `store` first, and each call reads one consistent snapshot (a deferred read
 *   transaction): a sync cycle that commits meanwhile is seen entirely or not at all.
 * - Results are plain JSON-able objects with camelCase fields.
 * - Times come out as ISO-8601 strings (UTC, `2025-01-02T03:04:05.678Z`) or null; ages and durations
 *   are numbers of milliseconds in fields ending in `Ms`. Time inputs take epoch ms or an ISO string.
 *   (Tasks are stored in Proxmox's epoch seconds and converted.)
 * - Sizes are bytes (Proxmox's `maxmem`, `mem`, `maxdisk`, or fields ending in `Bytes`), except
 *   `memoryMib`/`balloonMib`, which are the config's own MiB values. `cpu` is a fraction (0..1) of `maxcpu`.
 * - Tombstoned (deleted) guests are left out unless a query is asked to include them.
 * - A guest's `lastSeenAt` is its effective time: the cluster's last successful read for a live row,
 *   the row's own `last_seen_at` once it is stale, missing or deleted.
 * - Limits above a query's maximum are clamped, not refused: the result carries the `limit` applied
 *   and `limitClamped: true`. Input the caller can fix (a malformed cursor, a limit below 1, an
 *   unparsable time, an empty search) throws `QueryError`.
 * - SQL is built with drizzle's query builder or `sql` templates: every value is a bound parameter.
 */
import { toInventoryEvent, type InventoryEvent } from './events.js';
import type { GuestDisk, GuestNic } from './guest-parts.js';
import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lte, sql, type SQL } from 'drizzle-orm';
import type { AnySQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { Store } from './db.js';
import { prepared } from './prepared.js';
import { clusters, events, guestMetrics, guests, guestStats, guestTags, nodes, storage, syncRuns, tasks } from './schema.js';

/** Bad query input the caller can fix; `code` says which kind. */
export class QueryError extends Error {
  override readonly name = 'QueryError';
  constructor(message: string, readonly code: 'bad_cursor' | 'bad_argument' = 'bad_argument') {
    super(message);
  }
}

// ---- shared helpers -------------------------------------------------------------------------------

const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());

function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text == null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

const stringArray = (text: string | null | undefined): string[] => {
  const value = parseJson<unknown>(text, []);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
};

export interface LimitInfo {
  /** The limit applied. */
  limit: number;
  /** Present when the requested limit was above the maximum and was lowered to it. */
  limitClamped?: true;
}

/** Default and maximum `limit` of each paged query (for the MCP tools' input schemas). */
export const QUERY_LIMITS = {
  guests: { default: 50, max: 500 },
  events: { default: 100, max: 1_000 },
  tasks: { default: 50, max: 500 },
  search: { default: 20, max: 200 },
} as const;

function clampLimit(requested: number | undefined, fallback: number, max: number): LimitInfo {
  if (requested === undefined) return { limit: fallback };
  if (!Number.isInteger(requested) || requested < 1) throw new QueryError(`limit must be a positive integer, got ${String(requested)}`);
  return requested > max ? { limit: max, limitClamped: true } : { limit: requested };
}

/** Epoch ms from epoch ms or an ISO-8601 string. */
function toEpochMs(value: number | string, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new QueryError(`${what} must be epoch milliseconds or an ISO-8601 time, got ${String(value)}`);
    return value;
  }
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw new QueryError(`${what} must be epoch milliseconds or an ISO-8601 time, got "${value}"`);
  return ms;
}

/**
 * One consistent read: a deferred transaction, or the one a caller already opened. Callers that
 * combine several queries wrap them in it too: a sync committing meanwhile is seen by all or none.
 */
export function oneRead<T>(store: Store, fn: () => T): T {
  return store.sqlite.inTransaction ? fn() : store.sqlite.transaction(fn)();
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;
const ratio = (part: number, whole: number | null | undefined): number | null => (whole ? round3(part / whole) : null);

/** `*`/`?` glob (anchored) or plain substring, to a LIKE pattern with `\` as the escape character. */
function likePattern(pattern: string): string {
  const escaped = pattern.replace(/[\\%_]/g, (ch) => `\\${ch}`);
  return /[*?]/.test(pattern) ? escaped.replace(/\*/g, '%').replace(/\?/g, '_') : `%${escaped}%`;
}

const metricsJoin = and(eq(guestMetrics.cluster, guests.cluster), eq(guestMetrics.vmid, guests.vmid));

/**
 * The effective last-seen time of a guest row. A subquery rather than a join of `clusters`: the
 * join makes SQLite sort every matching guest instead of walking the listing index for a page.
 */
const effectiveLastSeen = sql<number>`CASE WHEN ${guests.stale} = 1 OR ${guests.deletedAt} IS NOT NULL OR ${guests.missingCount} > 0
  THEN ${guests.lastSeenAt} ELSE coalesce((SELECT ${clusters.lastSuccessAt} FROM ${clusters} WHERE ${clusters.name} = ${guests.cluster}), ${guests.lastSeenAt}) END`;

// ---- guests: filters ------------------------------------------------------------------------------

export interface GuestFilter {
  cluster?: string;
  node?: string;
  type?: 'qemu' | 'lxc';
  /** `running`, `stopped`, `paused`, `unknown` (node offline)… */
  status?: string;
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

/** A filter as SQL conditions with placeholders, their values, and a name for its shape. */
interface BoundFilter {
  where: SQL[];
  params: Record<string, string | number>;
  /** Which conditions are present: the key a prepared query is cached under. */
  shape: string;
}

const P = (name: string): ReturnType<typeof sql.placeholder> => sql.placeholder(name);

/**
 * `tagProbe`: test the tag per guest (for a page walking the listing index, which stops after a
 * page) rather than list the tag's guests first (for a count or a sort by anything else).
 */
function guestConditions(f: GuestFilter, { tagProbe = false } = {}): BoundFilter {
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
  bound('status', f.status, eq(guests.status, P('status')));
  bound('pool', f.pool, eq(guests.pool, P('pool')));
  bound('template', f.template === undefined ? undefined : Number(f.template), eq(guests.template, P('template')));
  bound(tagProbe ? 'tagProbe' : 'tag', f.tag?.toLowerCase(), tagProbe
    ? sql`EXISTS (SELECT 1 FROM ${guestTags} WHERE ${guestTags.tagKey} = ${P('tagProbe')} AND ${guestTags.cluster} = ${guests.cluster} AND ${guestTags.vmid} = ${guests.vmid})`
    : sql`(${guests.cluster}, ${guests.vmid}) IN (SELECT ${guestTags.cluster}, ${guestTags.vmid} FROM ${guestTags} WHERE ${guestTags.tagKey} = ${P('tag')})`);
  bound('name', f.namePattern === undefined ? undefined : likePattern(f.namePattern), sql`${guests.name} LIKE ${P('name')} ESCAPE '\\'`);
  if (f.lock === true) fixed('locked', isNotNull(guests.lock));
  else if (f.lock === false) fixed('unlocked', isNull(guests.lock));
  else bound('lock', f.lock, eq(guests.lock, P('lock')));
  bound('minMem', f.minMemoryBytes, gte(guests.maxmem, P('minMem')));
  bound('maxMem', f.maxMemoryBytes, lte(guests.maxmem, P('maxMem')));
  bound('minCores', f.minCores, gte(guests.maxcpu, P('minCores')));
  bound('maxCores', f.maxCores, lte(guests.maxcpu, P('maxCores')));
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
  /** Live metrics of the last read (null before the first live read). */
  cpu: number | null;
  mem: number | null;
  uptime: number | null;
  stale: boolean;
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
}

const SORT_KEYS: Record<GuestSort, { expr: SQL; kind: 'number' | 'string' }> = {
  vmid: { expr: sql`${guests.vmid}`, kind: 'number' },
  name: { expr: sql`lower(coalesce(${guests.name}, ''))`, kind: 'string' },
  node: { expr: sql`${guests.node}`, kind: 'string' },
  status: { expr: sql`${guests.status}`, kind: 'string' },
  // Unknown sizes and metrics sort as -1: below every real value.
  maxmem: { expr: sql`coalesce(${guests.maxmem}, -1)`, kind: 'number' },
  maxcpu: { expr: sql`coalesce(${guests.maxcpu}, -1)`, kind: 'number' },
  maxdisk: { expr: sql`coalesce(${guests.maxdisk}, -1)`, kind: 'number' },
  mem: { expr: sql`coalesce(${guestMetrics.mem}, -1)`, kind: 'number' },
  cpu: { expr: sql`coalesce(${guestMetrics.cpu}, -1)`, kind: 'number' },
};

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
  const bad = (why: string): QueryError => new QueryError(`malformed cursor (${why}); pass nextCursor from the previous page unchanged, or omit cursor to start again`, 'bad_cursor');
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
    throw new QueryError(`cursor was made for sort=${s} order=${o}, not sort=${sort} order=${order}; keep the same sort while paging, or omit cursor`, 'bad_cursor');
  }
  const key = SORT_KEYS[sort].kind === 'number' ? Number(k) : k;
  const vmid = Number(v);
  if ((typeof key === 'number' && (k === '' || !Number.isFinite(key))) || c === '' || !Number.isInteger(vmid) || v === '') throw bad('missing position');
  return { sort, order, key, cluster: c, vmid };
}

const summaryColumns = {
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
  lastSeenAt: effectiveLastSeen,
  cores: guests.cores,
  sockets: guests.sockets,
  memoryMib: guests.memoryMib,
  ostype: guests.ostype,
  deletedAt: guests.deletedAt,
} satisfies Record<GuestField, unknown>;

const GUEST_FIELDS = Object.keys(summaryColumns) as GuestField[];
const METRIC_FIELDS = new Set<GuestField>(['cpu', 'mem', 'uptime']);

/** A row as selected: JSON text and epoch times still to convert. */
type SummaryRow = Record<string, unknown> & { cluster: string; vmid: number };

/** The selected fields of a row, converted (tags parsed, times as ISO). */
function toSummary(r: SummaryRow): GuestSummary {
  const out: Record<string, unknown> = {};
  for (const key of GUEST_FIELDS) {
    if (!(key in r)) continue;
    const v = r[key];
    out[key] = key === 'tags' ? stringArray(v as string) : key === 'lastSeenAt' || key === 'deletedAt' ? iso(v as number | null) : v;
  }
  return out as unknown as GuestSummary;
}

/** Runs a prepared drizzle query with placeholder values. */
interface Runnable<Row> {
  all(values?: Record<string, unknown>): Row[];
  get(values?: Record<string, unknown>): Row | undefined;
}

const SUMMARY_FILTERS = ['cluster', 'node', 'type', 'status'] as const;

/**
 * The structural filters guest_stats answers (live guests by cluster, node, type and status),
 * present in `f`; undefined when the filter needs the guest rows themselves.
 */
function summaryFilter(f: GuestFilter): Array<(typeof SUMMARY_FILTERS)[number]> | undefined {
  const used = (Object.keys(f) as Array<keyof GuestFilter>).filter((k) => f[k] !== undefined && !(k === 'includeDeleted' && f[k] === false));
  if (used.some((k) => !(SUMMARY_FILTERS as readonly string[]).includes(k))) return undefined;
  return SUMMARY_FILTERS.filter((k) => f[k] !== undefined);
}

const summaryWhere = (keys: ReadonlyArray<(typeof SUMMARY_FILTERS)[number]>): SQL | undefined => and(...keys.map((k) => eq(guestStats[k], P(k))));

/**
 * How many guests match: from guest_stats when it can say; with a tag, from the guests having
 * it; else by counting rows.
 */
function countGuests(store: Store, f: GuestFilter): number {
  const count = { n: sql<number>`count(*)` };
  const summary = summaryFilter(f);
  if (summary) {
    const query: Runnable<{ n: number }> = prepared(store, `count-summary:${summary.join(',')}`, () =>
      store.db.select({ n: sql<number>`total(${guestStats.guests})` }).from(guestStats).where(summaryWhere(summary)).prepare());
    return query.get(Object.fromEntries(summary.map((k) => [k, f[k]])))?.n ?? 0;
  }
  if (f.tag === undefined) {
    const bound = guestConditions(f);
    const query: Runnable<{ n: number }> = prepared(store, `count:${bound.shape}`, () => store.db.select(count).from(guests).where(and(...bound.where)).prepare());
    return query.get(bound.params)?.n ?? 0;
  }
  const { tag, ...rest } = f;
  const bound = guestConditions(rest);
  const query: Runnable<{ n: number }> = prepared(store, `count-tag:${bound.shape}`, () => store.db.select(count).from(guestTags)
    .innerJoin(guests, and(eq(guests.cluster, guestTags.cluster), eq(guests.vmid, guestTags.vmid)))
    .where(and(eq(guestTags.tagKey, P('tag')), ...bound.where))
    .prepare());
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
  const bound = guestConditions(filter, { tagProbe: sort === 'vmid' });
  const after = options.cursor !== undefined ? decodeCursor(options.cursor, sort, order) : undefined;
  const fields = options.fields ? GUEST_FIELDS.filter((f) => f === 'cluster' || f === 'vmid' || (options.fields as readonly GuestField[]).includes(f)) : GUEST_FIELDS;
  const withMetrics = sort === 'mem' || sort === 'cpu' || fields.some((f) => METRIC_FIELDS.has(f));

  const query: Runnable<SummaryRow & { sortKey: number | string }> = prepared(store, `page:${bound.shape}:${sort}:${order}:${after ? 'after' : ''}:${fields.join(',')}`, () => {
    const seek = sql`(${expr} ${sql.raw(order === 'asc' ? '>' : '<')} ${P('afterKey')}
      OR (${expr} = ${P('afterKey')} AND (${guests.cluster}, ${guests.vmid}) > (${P('afterCluster')}, ${P('afterVmid')})))`;
    const columns = Object.fromEntries(fields.map((f) => [f, summaryColumns[f]]));
    const base = store.db.select({ ...columns, sortKey: sql<number | string>`${expr}` }).from(guests).$dynamic();
    return (withMetrics ? base.leftJoin(guestMetrics, metricsJoin) : base)
      .where(and(...bound.where, after ? seek : undefined))
      // vmid twice in ORDER BY (sort key and tie-break) keeps SQLite from walking the listing index.
      .orderBy(order === 'asc' ? asc(expr) : desc(expr), asc(guests.cluster), ...(sort === 'vmid' ? [] : [asc(guests.vmid)]))
      .limit(P('limit'))
      .prepare() as unknown as Runnable<SummaryRow & { sortKey: number | string }>;
  });

  return oneRead(store, () => {
    const total = countGuests(store, filter);
    const rows = query.all({ ...bound.params, limit: limitInfo.limit + 1, ...(after ? { afterKey: after.key, afterCluster: after.cluster, afterVmid: after.vmid } : {}) });
    const page = rows.slice(0, limitInfo.limit);
    const last = page.at(-1);
    const result: GuestPage<Pick<GuestSummary, F | 'cluster' | 'vmid'>> = { items: page.map(toSummary), total, ...limitInfo };
    if (rows.length > limitInfo.limit && last) result.nextCursor = encodeCursor({ sort, order, key: last.sortKey, cluster: last.cluster, vmid: last.vmid });
    return result;
  });
}

/** A guest in a top-consumers list. */
export type TopGuest = Pick<GuestSummary, 'cluster' | 'vmid' | 'name' | 'node' | 'type' | 'status' | 'maxcpu' | 'maxmem' | 'cpu' | 'mem'>;

/**
 * The live guests using the most memory (`mem`) or cpu (`cpu`, a fraction of the guest's own
 * vcpus) at the last read, most first (ties by cluster and vmid); guests using none (stopped, or
 * without live metrics) are left out, paused ones that hold memory are not. Walks the metric's
 * index, so it reads a handful of rows whatever the guest count.
 */
export function topGuests(store: Store, metric: 'mem' | 'cpu', filter: { cluster?: string } = {}, limit = 5): TopGuest[] {
  const inCluster = filter.cluster !== undefined;
  const query: Runnable<TopGuest> = prepared(store, `top:${metric}:${inCluster}`, () => {
    const column = guestMetrics[metric];
    const { cluster, vmid, name, node, type, status, maxcpu, maxmem, cpu, mem } = summaryColumns;
    return store.db
      .select({ cluster, vmid, name, node, type, status, maxcpu, maxmem, cpu, mem })
      .from(guestMetrics)
      .innerJoin(guests, metricsJoin)
      .where(and(isNull(guests.deletedAt), gt(column, 0), inCluster ? eq(guests.cluster, P('cluster')) : undefined))
      .orderBy(desc(column), asc(guests.cluster), asc(guests.vmid))
      .limit(P('limit'))
      .prepare();
  });
  return oneRead(store, () => query.all({ limit, ...(inCluster ? { cluster: filter.cluster } : {}) }));
}

// ---- guests: one ---------------------------------------------------------------------------------------

export type GuestRef =
  | { cluster?: string; vmid: number; includeDeleted?: boolean }
  | { cluster?: string; name: string; includeDeleted?: boolean };

/** A guest named in an ambiguity, a suggestion or a tombstone list. */
export interface GuestCandidate {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  deletedAt: string | null;
}

export interface GuestSuggestion extends GuestCandidate {
  /** Why it is suggested. */
  reason: 'other_cluster' | 'similar_name' | 'nearby_vmid';
}

/** As parsed from the config (src/sync/parse-config.ts writes them). */
export type { GuestDisk, GuestNic } from './guest-parts.js';

export interface GuestMetrics {
  cpu: number | null;
  mem: number | null;
  disk: number | null;
  uptime: number | null;
  netin: number | null;
  netout: number | null;
  diskread: number | null;
  diskwrite: number | null;
  updatedAt: string | null;
}

export interface TaskSummary {
  cluster: string;
  upid: string;
  node: string;
  type: string;
  objectId: string;
  vmid: number | null;
  user: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  /** `OK`, `WARNINGS: n` or the error text; null while running. */
  exitstatus: string | null;
  outcome: 'running' | 'ok' | 'warning' | 'error';
}

/** Events are answered in the one envelope webhooks use too (store/events.ts). */
export type EventSummary = InventoryEvent;

export interface GuestDetail extends GuestSummary {
  vcpus: number | null;
  balloonMib: number | null;
  onboot: boolean | null;
  agent: boolean | null;
  description: string | null;
  disks: GuestDisk[];
  nics: GuestNic[];
  /** Every config key as Proxmox returned it (null until the first config read). */
  config: Record<string, string> | null;
  digest: string | null;
  configFetchedAt: string | null;
  /** A config re-read is pending (a change signal arrived that has not been read yet). */
  configDirty: boolean;
  /** Consecutive complete reads the guest was missing from (it is tombstoned at the threshold). */
  missingCount: number;
  firstSeenAt: string;
  updatedAt: string;
  metrics: GuestMetrics | null;
  /** The last 10 tasks on this vmid, newest first. */
  recentTasks: TaskSummary[];
  /** The last 10 events about this guest, newest first. */
  recentEvents: EventSummary[];
}

export type GuestLookup =
  | { kind: 'found'; guest: GuestDetail }
  | { kind: 'ambiguous'; candidates: GuestCandidate[] }
  | { kind: 'not_found'; suggestions: GuestSuggestion[]; deleted: GuestCandidate[] };

const candidateColumns = {
  cluster: guests.cluster, vmid: guests.vmid, name: guests.name, node: guests.node, type: guests.type, status: guests.status, deletedAt: guests.deletedAt,
};

type CandidateRow = { cluster: string; vmid: number; name: string | null; node: string; type: 'qemu' | 'lxc'; status: string; deletedAt: number | null };
const toCandidate = (r: CandidateRow): GuestCandidate => ({ ...r, deletedAt: iso(r.deletedAt) });

function levenshtein(a: string, b: string): number {
  let prev = new Uint16Array(b.length + 1).map((_, i) => i);
  let cur = new Uint16Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** 0..1: edit-distance similarity, raised for one name containing the other. */
export function nameSimilarity(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (!x || !y) return 0;
  const longer = Math.max(x.length, y.length);
  const shorter = Math.min(x.length, y.length);
  const contained = x.includes(y) || y.includes(x) ? 0.5 + (0.5 * shorter) / longer : 0;
  // The edit distance is at least the length difference: skip it when it cannot beat `contained`.
  if (1 - (longer - shorter) / longer <= contained) return contained;
  return Math.max(1 - levenshtein(x, y) / longer, contained);
}

const SUGGESTIONS = 5;

function suggestGuests(store: Store, ref: GuestRef): GuestSuggestion[] {
  const { db } = store;
  const live = isNull(guests.deletedAt);
  const inCluster = ref.cluster !== undefined ? eq(guests.cluster, ref.cluster) : undefined;
  const out: GuestSuggestion[] = [];
  const seen = new Set<string>();
  const add = (rows: CandidateRow[], reason: GuestSuggestion['reason']): void => {
    for (const r of rows) {
      const key = `${r.cluster}/${r.vmid}`;
      if (seen.has(key) || out.length >= SUGGESTIONS) continue;
      seen.add(key);
      out.push({ ...toCandidate(r), reason });
    }
  };
  const exact = 'vmid' in ref ? eq(guests.vmid, ref.vmid) : sql`${guests.name} = ${ref.name} COLLATE NOCASE`;
  // The guest exists, just not in the cluster asked for.
  if (ref.cluster !== undefined) add(db.select(candidateColumns).from(guests).where(and(live, exact)).orderBy(asc(guests.cluster)).all(), 'other_cluster');
  if ('vmid' in ref) {
    const near = db.select(candidateColumns).from(guests).where(and(live, inCluster))
      .orderBy(sql`abs(${guests.vmid} - ${ref.vmid})`, asc(guests.vmid), asc(guests.cluster)).limit(SUGGESTIONS).all();
    add(near, 'nearby_vmid');
  } else {
    const all = db.select(candidateColumns).from(guests).where(and(live, inCluster, isNotNull(guests.name))).all();
    const scored = all.map((r) => ({ r, score: nameSimilarity(ref.name, r.name ?? '') })).filter((s) => s.score >= 0.5);
    scored.sort((p, q) => q.score - p.score || p.r.cluster.localeCompare(q.r.cluster) || p.r.vmid - q.r.vmid);
    add(scored.map((s) => s.r), 'similar_name');
  }
  return out;
}

function taskSummary(t: typeof tasks.$inferSelect): TaskSummary {
  return {
    cluster: t.cluster, upid: t.upid, node: t.node, type: t.type, objectId: t.objectId, vmid: t.vmid, user: t.user,
    startedAt: iso(t.starttime * 1000)!, endedAt: iso(t.endtime == null ? null : t.endtime * 1000),
    durationMs: t.endtime == null ? null : (t.endtime - t.starttime) * 1000, exitstatus: t.exitstatus, outcome: t.outcome,
  };
}

const eventSummary = toInventoryEvent;

const RECENT = 10;

function guestDetail(store: Store, cluster: string, vmid: number): GuestDetail | undefined {
  const { db } = store;
  const row = prepared(store, 'guest-detail', () => db
    .select({
      ...summaryColumns,
      vcpus: guests.vcpus, balloonMib: guests.balloonMib, onboot: guests.onboot, agent: guests.agent, description: guests.description,
      disks: guests.disks, nics: guests.nics, config: guests.config, digest: guests.digest, configFetchedAt: guests.configFetchedAt,
      configDirty: guests.configDirty, missingCount: guests.missingCount, firstSeenAt: guests.firstSeenAt, updatedAt: guests.updatedAt,
      mDisk: guestMetrics.disk, netin: guestMetrics.netin, netout: guestMetrics.netout, diskread: guestMetrics.diskread,
      diskwrite: guestMetrics.diskwrite, metricsAt: guestMetrics.updatedAt,
    })
    .from(guests)
    .leftJoin(guestMetrics, metricsJoin)
    .where(and(eq(guests.cluster, P('cluster')), eq(guests.vmid, P('vmid'))))
    .prepare()).get({ cluster, vmid });
  if (!row) return undefined;
  const recentTasks = prepared(store, 'guest-tasks', () => db.select().from(tasks).where(and(eq(tasks.cluster, P('cluster')), eq(tasks.vmid, P('vmid'))))
    .orderBy(desc(tasks.starttime), desc(tasks.upid)).limit(RECENT).prepare()).all({ cluster, vmid });
  const recentEvents = prepared(store, 'guest-events', () => db.select().from(events).where(and(eq(events.subjectKind, 'guest'), eq(events.subjectId, P('subject'))))
    .orderBy(desc(events.seq)).limit(RECENT).prepare()).all({ subject: `${cluster}/${vmid}` });
  const config = parseJson<unknown>(row.config, null);
  return {
    ...toSummary(row),
    vcpus: row.vcpus, balloonMib: row.balloonMib, onboot: row.onboot, agent: row.agent, description: row.description,
    disks: parseJson<GuestDisk[]>(row.disks, []), nics: parseJson<GuestNic[]>(row.nics, []),
    config: typeof config === 'object' && config !== null ? (config as Record<string, string>) : null,
    digest: row.digest, configFetchedAt: iso(row.configFetchedAt), configDirty: row.configDirty, missingCount: row.missingCount,
    firstSeenAt: iso(row.firstSeenAt)!, updatedAt: iso(row.updatedAt)!,
    metrics: row.metricsAt == null ? null : {
      cpu: row.cpu, mem: row.mem, disk: row.mDisk, uptime: row.uptime, netin: row.netin, netout: row.netout,
      diskread: row.diskread, diskwrite: row.diskwrite, updatedAt: iso(row.metricsAt),
    },
    recentTasks: recentTasks.map(taskSummary),
    recentEvents: recentEvents.map(eventSummary),
  };
}

/**
 * One guest by vmid or name (names compare case-insensitively; an exact-case match wins over
 * others that differ only in case). A vmid or name found in several clusters, or a name several
 * guests share, is ambiguous. A miss comes with suggestions (the same guest in another cluster,
 * similar names or nearby vmids) and any tombstoned guest that matched.
 */
export function getGuest(store: Store, ref: GuestRef): GuestLookup {
  return oneRead(store, () => {
    const { db } = store;
    const byVmid = 'vmid' in ref;
    const inCluster = ref.cluster !== undefined;
    const scope = and(
      byVmid ? eq(guests.vmid, P('ref')) : sql`${guests.name} = ${P('ref')} COLLATE NOCASE`,
      inCluster ? eq(guests.cluster, P('cluster')) : undefined,
    );
    const values = { ref: 'vmid' in ref ? ref.vmid : ref.name, ...(inCluster ? { cluster: ref.cluster } : {}) };
    const candidates = (which: 'live' | 'deleted' | 'any'): GuestCandidate[] => prepared(store, `guest-find:${byVmid}:${inCluster}:${which}`, () =>
      db.select(candidateColumns).from(guests)
        .where(and(scope, which === 'live' ? isNull(guests.deletedAt) : which === 'deleted' ? isNotNull(guests.deletedAt) : undefined))
        .orderBy(asc(guests.cluster), asc(guests.vmid)).prepare())
      .all(values).map(toCandidate);
    let found = candidates(ref.includeDeleted ? 'any' : 'live');
    if (found.length > 1 && 'name' in ref) {
      const exactCase = found.filter((r) => r.name === ref.name);
      if (exactCase.length === 1) found = exactCase;
    }
    if (found.length > 1) return { kind: 'ambiguous', candidates: found };
    const only = found[0];
    if (only) return { kind: 'found', guest: guestDetail(store, only.cluster, only.vmid)! };
    return { kind: 'not_found', suggestions: suggestGuests(store, ref), deleted: ref.includeDeleted ? [] : candidates('deleted') };
  });
}

// ---- aggregates -------------------------------------------------------------------------------------

export type AggregateBy = 'node' | 'pool' | 'tag' | 'status' | 'type' | 'cluster';

export interface GuestStats {
  guests: number;
  running: number;
  templates: number;
  /** Sum of `maxcpu` over non-template guests, running or not. */
  allocatedVcpus: number;
  /** Sum of `maxmem` over non-template guests, running or not. */
  allocatedMemoryBytes: number;
  /** The same sums over running guests only. */
  runningVcpus: number;
  runningMemoryBytes: number;
  /** Sum of live `mem` (last read; stale guests keep their last values). */
  usedMemoryBytes: number;
}

export interface AggregateGroup extends GuestStats {
  /** The group's value: node, pool, tag, status, type or cluster name; null for "none" (no pool, no tags). */
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

type StatsRow = { key: string | null; cluster: string | null; guests: number; running: number; templates: number; allocatedVcpus: number; allocatedMemoryBytes: number; runningVcpus: number; runningMemoryBytes: number; usedMemoryBytes: number };

const STATS = {
  guests: sql<number>`count(*)`,
  running: sql<number>`total(${guests.status} = 'running')`,
  templates: sql<number>`total(${guests.template})`,
  allocatedVcpus: sql<number>`total(CASE WHEN ${guests.template} = 0 THEN ${guests.maxcpu} END)`,
  allocatedMemoryBytes: sql<number>`total(CASE WHEN ${guests.template} = 0 THEN ${guests.maxmem} END)`,
  runningVcpus: sql<number>`total(CASE WHEN ${guests.template} = 0 AND ${guests.status} = 'running' THEN ${guests.maxcpu} END)`,
  runningMemoryBytes: sql<number>`total(CASE WHEN ${guests.template} = 0 AND ${guests.status} = 'running' THEN ${guests.maxmem} END)`,
  usedMemoryBytes: sql<number>`total(${guestMetrics.mem})`,
};

/** STATS over guest_stats rows, which are already counted and summed per node, type and status. */
const SUMMED_STATS = {
  guests: sql<number>`total(${guestStats.guests})`,
  running: sql<number>`total(CASE WHEN ${guestStats.status} = 'running' THEN ${guestStats.guests} END)`,
  templates: sql<number>`total(${guestStats.templates})`,
  allocatedVcpus: sql<number>`total(${guestStats.allocatedVcpus})`,
  allocatedMemoryBytes: sql<number>`total(${guestStats.allocatedMemoryBytes})`,
  runningVcpus: sql<number>`total(CASE WHEN ${guestStats.status} = 'running' THEN ${guestStats.allocatedVcpus} END)`,
  runningMemoryBytes: sql<number>`total(CASE WHEN ${guestStats.status} = 'running' THEN ${guestStats.allocatedMemoryBytes} END)`,
  usedMemoryBytes: sql<number>`total(${guestStats.usedMemoryBytes})`,
};

const NO_KEY = sql<string | null>`NULL`;

/** statsBy from guest_stats, for the groupings and filters it holds; undefined otherwise. */
function summedStatsBy(store: Store, by: AggregateBy | undefined, filter: GuestFilter): StatsRow[] | undefined {
  const keys = summaryFilter(filter);
  if (!keys || by === 'tag' || by === 'pool') return undefined;
  const query: Runnable<StatsRow> = prepared(store, `stats-summed:${by ?? ''}:${keys.join(',')}`, () => {
    const q = store.db.select({ key: by === undefined ? NO_KEY : guestStats[by], cluster: by === 'node' ? guestStats.cluster : NO_KEY, ...SUMMED_STATS })
      .from(guestStats).where(summaryWhere(keys)).$dynamic();
    if (by === 'node') q.groupBy(guestStats.cluster, guestStats.node).orderBy(guestStats.cluster, guestStats.node);
    else if (by !== undefined) q.groupBy(guestStats[by]).orderBy(guestStats[by]);
    return q.prepare() as unknown as Runnable<StatsRow>;
  });
  return query.all(Object.fromEntries(keys.map((k) => [k, filter[k]])));
}

function statsBy(store: Store, by: AggregateBy | undefined, filter: GuestFilter): StatsRow[] {
  const summed = summedStatsBy(store, by, filter);
  if (summed) return summed;
  const bound = guestConditions({ ...filter, includeDeleted: false });
  const query: Runnable<StatsRow> = prepared(store, `stats:${by ?? ''}:${bound.shape}`, () => {
    const select = (key: AnySQLiteColumn | SQL, cluster: AnySQLiteColumn | SQL) =>
      store.db.select({ key, cluster, ...STATS }).from(guests).leftJoin(guestMetrics, metricsJoin).$dynamic();
    const where = and(...bound.where);
    let q;
    switch (by) {
      case undefined:
        q = select(NO_KEY, NO_KEY).where(where);
        break;
      case 'tag':
        q = select(sql<string | null>`min(${guestTags.tag})`, NO_KEY)
          .leftJoin(guestTags, and(eq(guestTags.cluster, guests.cluster), eq(guestTags.vmid, guests.vmid)))
          .where(where).groupBy(guestTags.tagKey).orderBy(sql`${guestTags.tagKey} IS NULL`, guestTags.tagKey);
        break;
      case 'node':
      case 'pool': {
        const col = by === 'node' ? guests.node : guests.pool;
        q = select(col, guests.cluster).where(where).groupBy(guests.cluster, col).orderBy(guests.cluster, sql`${col} IS NULL`, col);
        break;
      }
      default: {
        const col = guests[by];
        q = select(col, NO_KEY).where(where).groupBy(col).orderBy(col);
      }
    }
    return q.prepare() as unknown as Runnable<StatsRow>;
  });
  return query.all(bound.params);
}

const emptyStats = (): GuestStats => ({ guests: 0, running: 0, templates: 0, allocatedVcpus: 0, allocatedMemoryBytes: 0, runningVcpus: 0, runningMemoryBytes: 0, usedMemoryBytes: 0 });

function sumStats(list: GuestStats[]): GuestStats {
  const total = emptyStats();
  for (const s of list) for (const key of Object.keys(total) as Array<keyof GuestStats>) total[key] += s[key];
  return total;
}

const toStats = (r: StatsRow | undefined): GuestStats => (r ? {
  guests: r.guests, running: r.running, templates: r.templates, allocatedVcpus: r.allocatedVcpus, allocatedMemoryBytes: r.allocatedMemoryBytes,
  runningVcpus: r.runningVcpus, runningMemoryBytes: r.runningMemoryBytes, usedMemoryBytes: r.usedMemoryBytes,
} : emptyStats());

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
      const groups = rows.map((r): AggregateGroup => ({ key: r.key, ...(by === 'pool' ? { cluster: r.cluster ?? '' } : {}), ...toStats(r) }));
      return { by, groups, totals };
    }
    const nodeRows = store.db.select().from(nodes)
      .where(and(filter.cluster !== undefined ? eq(nodes.cluster, filter.cluster) : undefined, filter.node !== undefined ? eq(nodes.node, filter.node) : undefined))
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
          key: node, cluster, ...stats,
          physicalCpus: n?.maxcpu ?? null, physicalMemoryBytes: n?.maxmem ?? null,
          cpuOvercommit: ratio(stats.allocatedVcpus, n?.maxcpu), memoryOvercommit: ratio(stats.allocatedMemoryBytes, n?.maxmem),
        };
      });
    return { by, groups, totals };
  });
}

// ---- nodes ---------------------------------------------------------------------------------------

export interface NodeSummary {
  cluster: string;
  node: string;
  /** `online`, `offline`, `unknown`. */
  status: string;
  online: boolean;
  /** Values are the last known (node offline or cluster unreachable). */
  stale: boolean;
  lastSeenAt: string | null;
  ip: string | null;
  uptime: number | null;
  cpu: number | null;
  maxcpu: number | null;
  mem: number | null;
  maxmem: number | null;
  disk: number | null;
  maxdisk: number | null;
  guests: { total: number; running: number; templates: number };
  allocatedVcpus: number;
  allocatedMemoryBytes: number;
  runningVcpus: number;
  runningMemoryBytes: number;
  /** allocated / physical, 3 decimals; null when the physical size is unknown. */
  cpuOvercommit: number | null;
  memoryOvercommit: number | null;
}

export interface StorageEntry {
  cluster: string;
  storage: string;
  shared: boolean;
  /** The node of a local storage; null for a shared one (see `nodes`). */
  node: string | null;
  /** Nodes where the storage is enabled: one for a local storage, all that list it for a shared one. */
  nodes: string[];
  plugintype: string | null;
  content: string[];
  status: string;
  disk: number | null;
  maxdisk: number | null;
  /** disk / maxdisk, 4 decimals; null when unknown. */
  usedFraction: number | null;
  stale: boolean;
  lastSeenAt: string | null;
}

export interface NodeDetail extends NodeSummary {
  /** Storage enabled on this node (shared ones included, with all their nodes). */
  storage: StorageEntry[];
}

export type NodeLookup =
  | { kind: 'found'; node: NodeDetail }
  | { kind: 'ambiguous'; candidates: Array<{ cluster: string; node: string }> }
  | { kind: 'not_found'; suggestions: Array<{ cluster: string; node: string }> };

function nodeSummaries(store: Store, f: { cluster?: string; node?: string }): NodeSummary[] {
  const keys = (['cluster', 'node'] as const).filter((k) => f[k] !== undefined);
  const query: Runnable<typeof nodes.$inferSelect> = prepared(store, `nodes:${keys.join(',')}`, () =>
    store.db.select().from(nodes).where(and(...keys.map((k) => eq(nodes[k], P(k))))).orderBy(asc(nodes.cluster), asc(nodes.node)).prepare());
  const rows = query.all(Object.fromEntries(keys.map((k) => [k, f[k]])));
  const stats = new Map(statsBy(store, 'node', {}).map((r) => [`${r.cluster}\u0000${r.key}`, r]));
  return rows.map((n) => {
    const s = toStats(stats.get(`${n.cluster}\u0000${n.node}`));
    return {
      cluster: n.cluster, node: n.node, status: n.status, online: n.online, stale: n.stale, lastSeenAt: iso(n.lastSeenAt), ip: n.ip,
      uptime: n.uptime, cpu: n.cpu, maxcpu: n.maxcpu, mem: n.mem, maxmem: n.maxmem, disk: n.disk, maxdisk: n.maxdisk,
      guests: { total: s.guests, running: s.running, templates: s.templates },
      allocatedVcpus: s.allocatedVcpus, allocatedMemoryBytes: s.allocatedMemoryBytes, runningVcpus: s.runningVcpus, runningMemoryBytes: s.runningMemoryBytes,
      cpuOvercommit: ratio(s.allocatedVcpus, n.maxcpu), memoryOvercommit: ratio(s.allocatedMemoryBytes, n.maxmem),
    };
  });
}

/** Every node (of one cluster, or all), with guest counts and allocation. */
export function listNodes(store: Store, cluster?: string): { items: NodeSummary[] } {
  return oneRead(store, () => ({ items: nodeSummaries(store, { cluster }) }));
}

/** One node; `cluster` may be left out when the node name is unique across clusters. */
export function getNode(store: Store, cluster: string | undefined, node: string): NodeLookup {
  return oneRead(store, () => {
    const found = nodeSummaries(store, { cluster, node });
    if (found.length > 1) return { kind: 'ambiguous', candidates: found.map((n) => ({ cluster: n.cluster, node: n.node })) };
    const only = found[0];
    if (only) return { kind: 'found', node: { ...only, storage: storageEntries(store, { cluster: only.cluster, node: only.node }) } };
    const all = store.db.select({ cluster: nodes.cluster, node: nodes.node }).from(nodes).orderBy(asc(nodes.cluster), asc(nodes.node)).all();
    const suggestions = all
      .map((n) => ({ n, score: nameSimilarity(node, n.node) + (n.cluster === cluster ? 0.01 : 0) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, SUGGESTIONS)
      .map((s) => s.n);
    return { kind: 'not_found', suggestions };
  });
}

// ---- storage ---------------------------------------------------------------------------------------

export interface StorageFilter {
  cluster?: string;
  /** Storage enabled on this node (a shared one is still reported once, with all its nodes). */
  node?: string;
  shared?: boolean;
}

function storageEntries(store: Store, f: StorageFilter): StorageEntry[] {
  const keys = (['cluster', 'shared'] as const).filter((k) => f[k] !== undefined);
  const query: Runnable<typeof storage.$inferSelect> = prepared(store, `storage:${keys.join(',')}`, () => store.db.select().from(storage)
    .where(and(...keys.map((k) => eq(storage[k], P(k)))))
    .orderBy(asc(storage.cluster), asc(storage.storage), asc(storage.node))
    .prepare());
  const rows = query.all({ ...(f.cluster !== undefined ? { cluster: f.cluster } : {}), ...(f.shared !== undefined ? { shared: Number(f.shared) } : {}) });
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const key = r.shared ? `${r.cluster}\u0000${r.storage}` : `${r.cluster}\u0000${r.storage}\u0000${r.node}`;
    const list = groups.get(key);
    if (list) list.push(r);
    else groups.set(key, [r]);
  }
  const out: StorageEntry[] = [];
  for (const list of groups.values()) {
    if (f.node !== undefined && !list.some((r) => r.node === f.node)) continue;
    // A shared storage is the same volume on every node: take the freshest live view of it.
    const live = list.filter((r) => !r.stale);
    const best = [...(live.length ? live : list)].sort((a, b) => (b.lastSeenAt ?? 0) - (a.lastSeenAt ?? 0))[0]!;
    out.push({
      cluster: best.cluster, storage: best.storage, shared: best.shared, node: best.shared ? null : best.node, nodes: list.map((r) => r.node),
      plugintype: best.plugintype, content: stringArray(best.content),
      status: list.some((r) => r.status === 'available') ? 'available' : best.status,
      disk: best.disk, maxdisk: best.maxdisk,
      usedFraction: best.disk != null && best.maxdisk ? Math.round((best.disk / best.maxdisk) * 10_000) / 10_000 : null,
      stale: live.length === 0, lastSeenAt: iso(best.lastSeenAt),
    });
  }
  return out;
}

/**
 * Storage: a shared storage once per (cluster, storage) with the nodes that list it, stale only
 * when no node sees it live; a local storage once per node.
 */
export function listStorage(store: Store, filter: StorageFilter = {}): { items: StorageEntry[] } {
  return oneRead(store, () => ({ items: storageEntries(store, filter) }));
}

// ---- events --------------------------------------------------------------------------------------

export interface EventQuery {
  /** Events that occurred at or after this time (epoch ms or ISO-8601). */
  since?: number | string;
  /** Events after this seq (the `nextSeq` of a previous answer). */
  afterSeq?: number;
  types?: string[];
  /** A subject id (`lab/101`, `lab/pve2`, `lab`), or a prefix ending in `/` (`lab/`). */
  subject?: string;
  subjectKind?: 'guest' | 'node' | 'cluster' | 'snapshot' | 'action';
  cluster?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface EventPage extends LimitInfo {
  /** Oldest first. */
  events: EventSummary[];
  /** Pass as `afterSeq` to continue: every event up to it has been considered. */
  nextSeq: number;
  /** More matching events follow `nextSeq`. */
  hasMore: boolean;
}

/** Events in seq order. `nextSeq` is safe to poll with: events committed later always have a higher seq. */
export function eventsSince(store: Store, q: EventQuery = {}): EventPage {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.events.default, QUERY_LIMITS.events.max);
  if (q.afterSeq !== undefined && (!Number.isInteger(q.afterSeq) || q.afterSeq < 0)) throw new QueryError(`afterSeq must be a non-negative integer, got ${String(q.afterSeq)}`);
  const since = q.since !== undefined ? toEpochMs(q.since, 'since') : undefined;
  const subject = q.subject === undefined ? undefined
    : q.subject.endsWith('/') ? sql`substr(${events.subjectId}, 1, ${q.subject.length}) = ${q.subject}`
      : eq(events.subjectId, q.subject);
  return oneRead(store, () => {
    // Bound the scan by the newest seq first, so nextSeq never passes an event not yet considered.
    const head = store.db.select({ seq: sql<number | null>`max(${events.seq})` }).from(events).get()?.seq ?? 0;
    const rows = store.db.select().from(events)
      .where(and(
        sql`${events.seq} <= ${head}`,
        q.afterSeq !== undefined ? gt(events.seq, q.afterSeq) : undefined,
        since !== undefined ? gte(events.occurredAt, since) : undefined,
        q.types?.length ? inArray(events.type, q.types) : undefined,
        q.cluster !== undefined ? eq(events.cluster, q.cluster) : undefined,
        q.subjectKind !== undefined ? eq(events.subjectKind, q.subjectKind) : undefined,
        subject,
      ))
      .orderBy(asc(events.seq))
      .limit(limitInfo.limit + 1)
      .all();
    const page = rows.slice(0, limitInfo.limit);
    const hasMore = rows.length > limitInfo.limit;
    const nextSeq = hasMore ? page.at(-1)!.seq : Math.max(head, q.afterSeq ?? 0);
    return { events: page.map(eventSummary), nextSeq, hasMore, ...limitInfo };
  });
}

// ---- tasks ---------------------------------------------------------------------------------------

export interface TaskQuery {
  cluster?: string;
  vmid?: number;
  node?: string;
  /** Failed tasks (outcome `error`) first, then newest first. */
  failedFirst?: boolean;
  onlyFailed?: boolean;
  /** Default 50, at most 500. */
  limit?: number;
}

/** Recent Proxmox tasks the sync has seen (a sliding window per cluster), newest first. */
export function listTasks(store: Store, q: TaskQuery = {}): LimitInfo & { items: TaskSummary[] } {
  const limitInfo = clampLimit(q.limit, QUERY_LIMITS.tasks.default, QUERY_LIMITS.tasks.max);
  const rows = store.db.select().from(tasks)
    .where(and(
      q.cluster !== undefined ? eq(tasks.cluster, q.cluster) : undefined,
      q.vmid !== undefined ? eq(tasks.vmid, q.vmid) : undefined,
      q.node !== undefined ? eq(tasks.node, q.node) : undefined,
      q.onlyFailed ? eq(tasks.outcome, 'error') : undefined,
    ))
    .orderBy(...(q.failedFirst ? [sql`${tasks.outcome} <> 'error'`] : []), desc(tasks.starttime), desc(tasks.upid))
    .limit(limitInfo.limit)
    .all();
  return { items: rows.map(taskSummary), ...limitInfo };
}

// ---- sync status and freshness ---------------------------------------------------------------------

/** What the clusters table says of each cluster, without its sync runs. */
export type ClusterInfo = Omit<ClusterSyncStatus, 'lastRun' | 'lastSuccessfulRun'>;

/**
 * Every cluster's state, by name. `staleAfterMs` is the freshness window: a cluster not even
 * attempted within it is `overdue`, and stale.
 */
export function listClusters(store: Store, now: number = Date.now(), staleAfterMs = Infinity): ClusterInfo[] {
  return prepared(store, 'clusters', () => store.db.select().from(clusters).orderBy(asc(clusters.name)).prepare()).all().map((c) => {
    const ageMs = c.lastSuccessAt == null ? null : now - c.lastSuccessAt;
    // Not even a failed attempt within the window: nothing is syncing (a failing sync is `stale` already).
    const lastTry = c.lastAttemptAt ?? c.lastSuccessAt;
    const overdue = lastTry != null && now - lastTry > staleAfterMs;
    return {
      cluster: c.name, clusterName: c.clusterName, pveVersion: c.pveVersion, quorate: c.quorate, stale: c.stale || overdue, overdue,
      lastSuccessAt: iso(c.lastSuccessAt), lastAttemptAt: iso(c.lastAttemptAt), ageMs,
      consecutiveFailures: c.consecutiveFailures, lastError: c.lastError,
    };
  });
}

export interface ClusterSyncStatus {
  cluster: string;
  /** The corosync cluster name (null for a standalone node). */
  clusterName: string | null;
  pveVersion: string | null;
  quorate: boolean | null;
  /**
   * The rows may be out of date: the last attempt failed (every row shows last-known values), or
   * no sync succeeded within the freshness window (`overdue`).
   */
  stale: boolean;
  /** No sync attempted within the freshness window, not even a failed one: nothing keeps this copy current (is the daemon running?). */
  overdue: boolean;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  /** now - lastSuccessAt; null before the first success. */
  ageMs: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  /** The latest sync run, successful or not. */
  lastRun: { startedAt: string; finishedAt: string; ok: boolean; durationMs: number; callsTotal: number; changes: Record<string, number>; error: string | null } | null;
  /** The latest successful run: its API calls per endpoint are what a cycle costs. */
  lastSuccessfulRun: {
    finishedAt: string; durationMs: number; calls: Record<string, number>; callsTotal: number; changes: Record<string, number>;
    guests: number; nodes: number; configsFetched: number; warnings: number;
  } | null;
}

/** Per cluster: how fresh its copy is, how the last reads went, and what a cycle costs. */
export function syncStatus(store: Store, now: number = Date.now(), staleAfterMs = Infinity): { now: string; clusters: ClusterSyncStatus[] } {
  return oneRead(store, () => {
    const latest = (cluster: string, okOnly: boolean): typeof syncRuns.$inferSelect | undefined =>
      prepared(store, `latest-run:${okOnly}`, () => store.db.select().from(syncRuns)
        .where(and(eq(syncRuns.cluster, P('cluster')), okOnly ? eq(syncRuns.ok, true) : undefined)).orderBy(desc(syncRuns.id)).limit(1).prepare())
        .get({ cluster });
    return {
      now: iso(now)!,
      clusters: listClusters(store, now, staleAfterMs).map((c): ClusterSyncStatus => {
        const last = latest(c.cluster, false);
        const good = last?.ok ? last : latest(c.cluster, true);
        return {
          ...c,
          lastRun: last ? {
            startedAt: iso(last.startedAt)!, finishedAt: iso(last.finishedAt)!, ok: last.ok, durationMs: last.durationMs,
            callsTotal: last.callsTotal, changes: parseJson<Record<string, number>>(last.changes, {}), error: last.error,
          } : null,
          lastSuccessfulRun: good ? {
            finishedAt: iso(good.finishedAt)!, durationMs: good.durationMs, calls: parseJson<Record<string, number>>(good.calls, {}), callsTotal: good.callsTotal,
            changes: parseJson<Record<string, number>>(good.changes, {}), guests: good.guests, nodes: good.nodes, configsFetched: good.configsFetched, warnings: good.warnings,
          } : null,
        };
      }),
    };
  });
}

export interface Freshness {
  /** The oldest last successful read among clusters that have had one: every answer is at least this fresh. */
  asOf: string | null;
  /** now - asOf. */
  ageMs: number | null;
  /** Clusters whose last read failed, that never had a successful one, or whose last one is older than the freshness window. */
  staleClusters: string[];
  /** Some cluster had no sync attempt within the freshness window: is the daemon running? */
  overdue: boolean;
  /** Nodes showing last-known values (offline or unreachable), in clusters that are not stale themselves. */
  staleNodes: Array<{ cluster: string; node: string; lastSeenAt: string | null }>;
}

/** What every MCP answer carries: how old the copy is, and which parts of it are stale. */
export function freshness(store: Store, now: number = Date.now(), staleAfterMs = Infinity): Freshness {
  return oneRead(store, () => {
    const rows = listClusters(store, now, staleAfterMs);
    const ages = rows.flatMap((c) => (c.ageMs == null ? [] : [c.ageMs]));
    const ageMs = ages.length ? Math.max(...ages) : null;
    const staleClusters = rows.filter((c) => c.stale || c.lastSuccessAt == null).map((c) => c.cluster);
    const staleNodes = prepared(store, 'stale-nodes', () => store.db.select({ cluster: nodes.cluster, node: nodes.node, lastSeenAt: nodes.lastSeenAt }).from(nodes)
      .where(eq(nodes.stale, true))
      .orderBy(asc(nodes.cluster), asc(nodes.node))
      .prepare())
      .all()
      .filter((n) => !staleClusters.includes(n.cluster))
      .map((n) => ({ cluster: n.cluster, node: n.node, lastSeenAt: iso(n.lastSeenAt) }));
    return { asOf: iso(ageMs == null ? null : now - ageMs), ageMs, staleClusters, overdue: rows.some((c) => c.overdue), staleNodes };
  });
}

// ---- search --------------------------------------------------------------------------------------

export type SearchField = 'vmid' | 'name' | 'tag' | 'description' | 'mac' | 'ip' | 'node';

export interface SearchMatch {
  field: SearchField;
  /** What matched: the name, the tag, the NIC (`net0 BC:24:11:…`), a snippet of the description… */
  value: string;
}

export type SearchResult =
  | { kind: 'guest'; cluster: string; vmid: number; name: string | null; node: string; type: 'qemu' | 'lxc'; status: string; score: number; matches: SearchMatch[] }
  | { kind: 'node'; cluster: string; node: string; status: string; score: number; matches: SearchMatch[] };

export interface SearchAnswer extends LimitInfo {
  query: string;
  /** Best match first. */
  results: SearchResult[];
  /** Guests and nodes matched in all (results holds at most `limit`). */
  total: number;
}

const SNIPPET = 80;

function snippet(text: string, at: number, length: number): string {
  const start = Math.max(0, at - Math.floor((SNIPPET - length) / 2));
  const cut = text.slice(start, start + SNIPPET).replace(/\s+/g, ' ');
  return `${start > 0 ? '…' : ''}${cut}${start + SNIPPET < text.length ? '…' : ''}`;
}

/** `bc-24-11-aa-bb-cc` / `bc2411aabbcc` → `BC:24:11:AA:BB:CC`; undefined unless the query looks like (part of) a MAC. */
function macQuery(q: string): string | undefined {
  if (/^[0-9a-f]{12}$/i.test(q)) return q.toUpperCase().match(/../g)!.join(':');
  if (/^[0-9a-f]{1,2}([:-][0-9a-f]{1,2})+[:-]?$/i.test(q)) return q.toUpperCase().replace(/-/g, ':');
  return undefined;
}

/** An IPv4/IPv6 address, CIDR or leading octets (`10.20`, `10.20.`); undefined otherwise. */
function ipQuery(q: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){1,3}\.?(\/\d{1,2})?$/.test(q)) return q;
  if (/^[0-9a-f]*:[0-9a-f:]*:[0-9a-f:]*(\/\d{1,3})?$/i.test(q) && !macQuery(q)) return q.toLowerCase();
  return undefined;
}

const SCORES = { vmid: 100, nameExact: 90, macFull: 85, ipExact: 85, tagExact: 70, mac: 60, ipPrefix: 55, name: 50, node: 45, tag: 40, description: 30 } as const;

/**
 * One string against guest names, tags, descriptions, NIC MACs and IPs (from the config), vmids
 * (exact) and node names. Each guest or node appears once, with every field that matched.
 */
export function searchInventory(store: Store, query: string, limit?: number): SearchAnswer {
  const q = query.trim();
  if (!q) throw new QueryError('search query is empty');
  const limitInfo = clampLimit(limit, QUERY_LIMITS.search.default, QUERY_LIMITS.search.max);
  const lower = q.toLowerCase();
  const live = isNull(guests.deletedAt);

  return oneRead(store, () => {
    const { db } = store;
    type Hit = Extract<SearchResult, { kind: 'guest' }>;
    const hits = new Map<string, Hit>();
    const rows = new Map<string, CandidateRow>();
    const hit = (r: CandidateRow, field: SearchField, value: string, score: number): void => {
      const key = `${r.cluster}\u0000${r.vmid}`;
      rows.set(key, r);
      const h = hits.get(key) ?? { kind: 'guest', cluster: r.cluster, vmid: r.vmid, name: r.name, node: r.node, type: r.type, status: r.status, score: 0, matches: [] };
      h.score = Math.max(h.score, score);
      h.matches.push({ field, value });
      hits.set(key, h);
    };

    if (/^\d+$/.test(q)) {
      for (const r of db.select(candidateColumns).from(guests).where(and(live, eq(guests.vmid, Number(q)))).all()) hit(r, 'vmid', q, SCORES.vmid);
    }
    for (const r of db.select(candidateColumns).from(guests).where(and(live, sql`instr(lower(${guests.name}), ${lower}) > 0`)).all()) {
      hit(r, 'name', r.name ?? '', r.name?.toLowerCase() === lower ? SCORES.nameExact : SCORES.name);
    }
    const tagRows = db.all<CandidateRow & { tag: string }>(sql`SELECT ${guests.cluster} AS cluster, ${guests.vmid} AS vmid, ${guests.name} AS name, ${guests.node} AS node,
      ${guests.type} AS type, ${guests.status} AS status, ${guests.deletedAt} AS deletedAt, j.value AS tag
      FROM ${guests}, json_each(${guests.tags}) AS j WHERE ${live} AND instr(lower(j.value), ${lower}) > 0`);
    for (const r of tagRows) hit(r, 'tag', r.tag, r.tag.toLowerCase() === lower ? SCORES.tagExact : SCORES.tag);
    const described = db.select({ ...candidateColumns, description: guests.description }).from(guests)
      .where(and(live, sql`instr(lower(${guests.description}), ${lower}) > 0`)).all();
    for (const r of described) {
      const text = r.description ?? '';
      hit(r, 'description', snippet(text, text.toLowerCase().indexOf(lower), q.length), SCORES.description);
    }

    const mac = macQuery(q);
    const ip = ipQuery(q);
    if (mac !== undefined || ip !== undefined) {
      const address = ip?.split('/')[0] ?? '';
      const ipMatch = (col: SQL): SQL => ip === undefined ? sql`0`
        : ip.includes('/') ? sql`lower(${col}) = ${ip}`
          : ip.endsWith('.') ? sql`substr(${col}, 1, ${ip.length}) = ${ip}`
            : sql`(lower(${col}) = ${address} OR substr(lower(${col}), 1, ${address.length + 1}) IN (${address + '/'}, ${address + '.'}))`;
      const macHit = mac === undefined ? sql`0` : sql`instr(upper(json_extract(j.value, '$.mac')), ${mac}) > 0`;
      const nicRows = db.all<CandidateRow & { nic: string; mac: string | null; ip: string | null; ip6: string | null; macHit: number; ipHit: number; ip6Hit: number }>(sql`
        SELECT * FROM (
          SELECT ${guests.cluster} AS cluster, ${guests.vmid} AS vmid, ${guests.name} AS name, ${guests.node} AS node, ${guests.type} AS type,
            ${guests.status} AS status, ${guests.deletedAt} AS deletedAt, json_extract(j.value, '$.key') AS nic,
            json_extract(j.value, '$.mac') AS mac, json_extract(j.value, '$.ip') AS ip, json_extract(j.value, '$.ip6') AS ip6,
            coalesce(${macHit}, 0) AS macHit,
            coalesce(${ipMatch(sql`json_extract(j.value, '$.ip')`)}, 0) AS ipHit,
            coalesce(${ipMatch(sql`json_extract(j.value, '$.ip6')`)}, 0) AS ip6Hit
          FROM ${guests}, json_each(${guests.nics}) AS j
          WHERE ${live})
        WHERE macHit OR ipHit OR ip6Hit`);
      for (const r of nicRows) {
        if (r.macHit) hit(r, 'mac', `${r.nic} ${r.mac}`, r.mac === mac ? SCORES.macFull : SCORES.mac);
        if (r.ipHit) hit(r, 'ip', `${r.nic} ${r.ip}`, r.ip?.split('/')[0] === address || r.ip === ip ? SCORES.ipExact : SCORES.ipPrefix);
        if (r.ip6Hit) hit(r, 'ip', `${r.nic} ${r.ip6}`, r.ip6?.split('/')[0]?.toLowerCase() === address ? SCORES.ipExact : SCORES.ipPrefix);
      }
    }

    const results: SearchResult[] = [...hits.values()];
    for (const n of db.select({ cluster: nodes.cluster, node: nodes.node, status: nodes.status }).from(nodes).where(sql`instr(lower(${nodes.node}), ${lower}) > 0`).all()) {
      results.push({ kind: 'node', ...n, score: n.node.toLowerCase() === lower ? SCORES.nameExact : SCORES.node, matches: [{ field: 'node', value: n.node }] });
    }
    const id = (r: SearchResult): number => (r.kind === 'guest' ? r.vmid : -1);
    results.sort((a, b) => b.score - a.score || a.cluster.localeCompare(b.cluster) || id(a) - id(b) || (a.kind === 'node' && b.kind === 'node' ? a.node.localeCompare(b.node) : 0));
    return { query: q, results: results.slice(0, limitInfo.limit), total: results.length, ...limitInfo };
  });
}
