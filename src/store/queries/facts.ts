/**
 * Guests by the facts of their parsed config (a volume on a storage, a NIC on a bridge or VLAN,
 * onboot, protection, agent, ostype, snapshots) beside list_guests' own filters, read from the
 * guest_facets read model: a filter naming a facet value walks that value's index range, in
 * listing order (vmid, cluster), and every other filter is tested on the same index entry (the
 * rows carry the guest's filter columns) or, for a second listed value (a tag and a storage), by
 * one probe of the guest's rows.
 *
 * The SQL here is text built from the schema's column names with a named parameter for every
 * value, prepared once per shape: the queries read guest_facets under two aliases at once, which
 * drizzle's `sql` templates do not render.
 */
import { getTableColumns, sql, type SQL, type Table } from 'drizzle-orm';
import type { Store } from '../db.js';
import type { Facet } from '../guest-parts.js';
import { prepared } from '../prepared.js';
import { guestFacetCounts, guestFacets, guests } from '../schema.js';
import type { GuestFilter } from './guests.js';
import { clampLimit, oneRead, P, QUERY_LIMITS, QueryError, type LimitInfo } from './shared.js';

/** Filters on the parsed config; guests whose config was never read match none of the boolean ones. */
export interface FactFilter {
  /** A volume on this storage: a disk, an unused volume or a CD-ROM image. */
  storage?: string;
  /** A NIC on this bridge. */
  bridge?: string;
  /** A NIC with this VLAN tag. */
  vlan?: number;
  onboot?: boolean;
  protection?: boolean;
  /** The QEMU guest agent enabled in the config (containers have none). */
  agent?: boolean;
  ostype?: string;
  /** Has snapshots (the config names the snapshot its state is based on) or none. */
  hasSnapshots?: boolean;
}

/** list_guests' filters and the config facts; counts and fact pages are over live guests only. */
export type FactQuery = Omit<GuestFilter, 'includeDeleted'> & FactFilter;

type Params = Record<string, string | number>;

/** SQL conditions, their named parameters, and the key of their shape (which conditions are present). */
export interface BoundSql {
  where: string[];
  params: Params;
  shape: string[];
}

/** `alias.column` of a table column, by its schema key. */
export function column<T extends Table>(table: T, alias: string, key: keyof T['_']['columns'] & string): string {
  return `${alias}."${getTableColumns(table)[key]!.name}"`;
}
const f = (alias: string, key: keyof typeof guestFacets._.columns & string): string => column(guestFacets, alias, key);
const g = (alias: string, key: keyof typeof guests._.columns & string): string => column(guests, alias, key);

/** The listed facets: a guest has any number of values in each. */
export const LISTED_FACETS = ['tag', 'storage', 'bridge', 'vlan'] as const satisfies readonly Facet[];
/**
 * The facet a page or count walks when the query names several, the likely narrowest first: a
 * VLAN or a tag holds a few guests in a hundred, a storage or a bridge often most of them.
 */
const DRIVERS: readonly Facet[] = [
  'vlan',
  'tag',
  'node',
  'pool',
  'ostype',
  'storage',
  'bridge',
  'status',
  'type',
  'template',
];

/** The facet values a query names, as guest_facets stores them (tags lower case, the template flag as 1/0). */
export function facetValues(q: FactQuery): Partial<Record<Facet, string>> {
  const out: Partial<Record<Facet, string>> = {
    node: q.node,
    type: q.type,
    status: q.status,
    pool: q.pool,
    ostype: q.ostype,
    template: q.template === undefined ? undefined : q.template ? '1' : '0',
    tag: q.tag?.toLowerCase(),
    storage: q.storage,
    bridge: q.bridge,
    vlan: q.vlan === undefined ? undefined : String(q.vlan),
  };
  for (const key of Object.keys(out) as Facet[]) if (out[key] === undefined) delete out[key];
  return out;
}

/** The facet a query's page or count walks (undefined: the query names none). */
export function driverOf(values: Partial<Record<Facet, string>>, exclude?: Facet): Facet | undefined {
  return DRIVERS.find((facet) => facet !== exclude && values[facet] !== undefined);
}

/** `*`/`?` glob (anchored) or plain substring, to a LIKE pattern with `\` as the escape character (as list_guests matches names). */
function likePattern(pattern: string): string {
  const escaped = pattern.replace(/[\\%_]/g, (ch) => `\\${ch}`);
  return /[*?]/.test(pattern) ? escaped.replace(/\*/g, '%').replace(/\?/g, '_') : `%${escaped}%`;
}

function checkQuery(q: FactQuery): void {
  if (q.vlan !== undefined && (!Number.isInteger(q.vlan) || q.vlan < 1 || q.vlan > 4094))
    throw new QueryError(`vlan must be a VLAN tag from 1 to 4094, got ${String(q.vlan)}`);
}

/**
 * The conditions of `q` on the guest_facets rows aliased `a`, except the facet `skip` (the range
 * being walked already holds it): the guest's own columns on the entry itself, a listed value
 * (a tag, a storage…) by one probe of the guest's rows.
 */
export function facetConditions(a: string, q: FactQuery, skip?: Facet): BoundSql {
  const out: BoundSql = { where: [], params: {}, shape: [] };
  const add = (name: string, condition: string, value?: string | number | boolean): void => {
    out.where.push(condition);
    out.shape.push(name);
    if (value !== undefined) out.params[name] = typeof value === 'boolean' ? Number(value) : value;
  };
  const has = <K extends keyof FactQuery>(key: K): boolean => q[key] !== undefined && skip !== key;
  if (q.cluster !== undefined) add('cluster', `${f(a, 'cluster')} = @cluster`, q.cluster);
  if (has('node')) add('node', `${f(a, 'node')} = @node`, q.node);
  if (has('type')) add('type', `${f(a, 'type')} = @type`, q.type);
  if (has('status')) {
    if (q.status === 'unknown') add('unknown', `(${f(a, 'stale')} = 1 OR ${f(a, 'status')} = 'unknown')`);
    else add('status', `${f(a, 'status')} = @status AND ${f(a, 'stale')} = 0`, q.status);
  }
  if (q.lastKnownStatus !== undefined)
    add('lastKnown', `${f(a, 'stale')} = 1 AND ${f(a, 'status')} = @lastKnown`, q.lastKnownStatus);
  if (has('pool')) add('pool', `${f(a, 'pool')} = @pool`, q.pool);
  if (has('template')) add('template', `${f(a, 'template')} = @template`, q.template);
  if (has('ostype')) add('ostype', `${f(a, 'ostype')} = @ostype`, q.ostype);
  // The flags as literals: `protection = 1` lets SQLite use the partial index of protected guests, a parameter would not.
  for (const key of ['onboot', 'protection', 'agent'] as const)
    if (q[key] !== undefined) add(`${key}${Number(q[key])}`, `${f(a, key)} = ${Number(q[key])}`);
  if (q.hasSnapshots !== undefined)
    add(`snapshots${Number(q.hasSnapshots)}`, `${f(a, 'snapshots')} = ${Number(q.hasSnapshots)}`);
  // What facet rows do not carry (the name, the lock, sizes) is read from the guest row, one probe per entry.
  const own = uncarriedConditions('n', q);
  if (own.where.length) {
    out.where.push(
      `EXISTS (SELECT 1 FROM "guests" n WHERE ${g('n', 'cluster')} = ${f(a, 'cluster')} AND ${g('n', 'vmid')} = ${f(a, 'vmid')} AND ${own.where.join(' AND ')})`,
    );
    out.shape.push(`guest(${own.shape.join(',')})`);
    Object.assign(out.params, own.params);
  }
  const values = facetValues(q);
  for (const facet of LISTED_FACETS) {
    if (values[facet] === undefined || facet === skip) continue;
    const p = `p_${facet}`;
    add(
      facet,
      `EXISTS (SELECT 1 FROM "guest_facets" ${p} WHERE ${f(p, 'cluster')} = ${f(a, 'cluster')} AND ${f(p, 'vmid')} = ${f(a, 'vmid')} AND ${f(p, 'facet')} = '${facet}' AND ${f(p, 'value')} = @${facet})`,
      values[facet],
    );
  }
  return out;
}

/** A prepared statement of this store, built once per shape. */
export function statement(store: Store, shape: string, text: () => string): ReturnType<Store['sqlite']['prepare']> {
  return prepared(store, `facts:${shape}`, () => store.sqlite.prepare(text()));
}

/**
 * The index holding every guest's `type` row that `q` needs (naming no facet value): the protected
 * guests' or those with snapshots when it asks for them (a tenth of the guests each), else all.
 */
function listingIndex(q: FactQuery): string {
  if (q.protection === true) return 'guest_facets_protected';
  if (q.hasSnapshots === true) return 'guest_facets_snapshots';
  return 'guest_facets_listing';
}

/** How many live guests match: the named facet's range, or every guest's `type` row when none is named. */
export function countFactGuests(store: Store, q: FactQuery): number {
  checkQuery(q);
  const values = facetValues(q);
  const driver = driverOf(values) ?? 'type';
  const bound = facetConditions('d', q, driver);
  const named = values[driver] !== undefined;
  // One facet value and at most the cluster and the status now: the counts the writer keeps say it.
  if (bound.shape.every((name) => KEPT_SHAPES.has(name)))
    return keptCount(store, driver, values[driver], q.cluster, driver === 'status' ? undefined : q.status);
  // Stale guests asked for (by the status they were last seen in) where the kept counts hold none:
  // the usual answer while every node answers (list_guests asks it beside each status filter).
  if (q.lastKnownStatus !== undefined && keptCount(store, driver, values[driver], q.cluster, 'unknown') === 0) return 0;
  // Naming no facet value, a narrower index of the `type` rows when the flags allow one.
  const index = named ? '' : ` INDEXED BY ${listingIndex(q)}`;
  const query = statement(
    store,
    `count:${driver}:${named}:${bound.shape.join(',')}`,
    () =>
      `SELECT count(*) FROM "guest_facets" d${index} WHERE ${[
        `${f('d', 'facet')} = '${driver}'`,
        ...(named ? [`${f('d', 'value')} = @driverValue`] : []),
        ...bound.where,
      ].join(' AND ')}`,
  );
  return query.pluck().get({ ...bound.params, ...(named ? { driverValue: values[driver]! } : {}) }) as number;
}

/** The conditions (facetConditions' shape names) guest_facet_counts answers beside one facet value: its keys. */
export const KEPT_SHAPES: ReadonlySet<string> = new Set(['cluster', 'status', 'unknown']);

/**
 * Live guests with a facet value (every guest: the `type` facet, any value), in a cluster, with a
 * status now (`unknown` for stale guests, as a status filter means it), from guest_facet_counts.
 */
export function keptCount(
  store: Store,
  facet: Facet,
  value: string | undefined,
  cluster: string | undefined,
  status?: string,
): number {
  const c = (key: keyof typeof guestFacetCounts._.columns & string): string => column(guestFacetCounts, 'c', key);
  const query = statement(
    store,
    `kept-count:${value !== undefined}:${cluster !== undefined}:${status !== undefined}`,
    () =>
      `SELECT coalesce(sum(${c('guests')}), 0) FROM "guest_facet_counts" c WHERE ${[
        `${c('facet')} = @facet`,
        ...(value !== undefined ? [`${c('value')} = @value`] : []),
        ...(cluster !== undefined ? [`${c('cluster')} = @cluster`] : []),
        ...(status !== undefined ? [`${c('status')} = @status`] : []),
      ].join(' AND ')}`,
  );
  return query.pluck().get({
    facet,
    ...(value !== undefined ? { value } : {}),
    ...(cluster !== undefined ? { cluster } : {}),
    ...(status !== undefined ? { status } : {}),
  }) as number;
}

// ---- pages ---------------------------------------------------------------------------------------

/** A guest in a fact page: who it is and its state, and its bytes on the storage the query named. */
export interface FactGuest {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  /** The status now: `unknown` while stale, with the status last seen in `lastKnownStatus`. */
  status: string;
  lastKnownStatus: string | null;
  template: boolean;
  /** With a storage filter: the guest's disk bytes on it (CD-ROM images left out; null when no volume there has a size). */
  storageBytes?: number | null;
}

export interface FactGuestPage extends LimitInfo {
  items: FactGuest[];
  /** Guests matching, on every page. */
  total: number;
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

/** `vmid:cluster`, the last item's place in listing order. */
function decodeCursor(text: string): { vmid: number; cluster: string } {
  const colon = text.indexOf(':');
  const vmid = Number(text.slice(0, colon));
  let cluster = '';
  try {
    cluster = decodeURIComponent(text.slice(colon + 1));
  } catch {
    // reported below
  }
  if (colon < 1 || !Number.isInteger(vmid) || cluster === '')
    throw new QueryError(
      'malformed cursor; pass nextCursor from the previous page unchanged, or omit cursor to start again',
      'bad_cursor',
    );
  return { vmid, cluster };
}

interface PageRow {
  cluster: string;
  vmid: number;
  bytes: number | null;
}

/** The page's guests in listing order, through the named facet's range or, naming none, the listing index. */
function pageRows(
  store: Store,
  q: FactQuery,
  after: { vmid: number; cluster: string } | undefined,
  limit: number,
): PageRow[] {
  const values = facetValues(q);
  const driver = driverOf(values);
  // Past the last item, in listing order (every guest table names these columns alike).
  const seek = (a: string): string =>
    `(${a}."vmid" > @afterVmid OR (${a}."vmid" = @afterVmid AND ${a}."cluster" > @afterCluster))`;
  const position = after ? { afterVmid: after.vmid, afterCluster: after.cluster } : {};
  if (driver) {
    const bound = facetConditions('d', q, driver);
    // The bytes on the named storage are on the guest's storage row, which is the walked one only when the storage drives.
    const bytes =
      q.storage === undefined || driver === 'storage'
        ? f('d', 'bytes')
        : `(SELECT ${f('s', 'bytes')} FROM "guest_facets" s WHERE ${f('s', 'cluster')} = ${f('d', 'cluster')} AND ${f('s', 'vmid')} = ${f('d', 'vmid')} AND ${f('s', 'facet')} = 'storage' AND ${f('s', 'value')} = @storage)`;
    const query = statement(
      store,
      `page:${driver}:${after !== undefined}:${bound.shape.join(',')}`,
      () =>
        `SELECT ${f('d', 'cluster')} AS cluster, ${f('d', 'vmid')} AS vmid, ${bytes} AS bytes FROM "guest_facets" d
        WHERE ${[`${f('d', 'facet')} = '${driver}'`, `${f('d', 'value')} = @driverValue`, ...bound.where, ...(after ? [seek('d')] : [])].join(' AND ')}
        ORDER BY ${f('d', 'vmid')}, ${f('d', 'cluster')} LIMIT @limit`,
    );
    return query.all({ ...bound.params, ...position, driverValue: values[driver]!, limit }) as PageRow[];
  }
  // No facet value named: every guest's `type` row (or a protected or snapshotted guest's), in listing order.
  const bound = facetConditions('d', q);
  const query = statement(
    store,
    `page-all:${after !== undefined}:${bound.shape.join(',')}`,
    () =>
      // Named: the planner, without statistics for it, sorts the facet's whole range instead.
      `SELECT ${f('d', 'cluster')} AS cluster, ${f('d', 'vmid')} AS vmid, NULL AS bytes FROM "guest_facets" d INDEXED BY ${listingIndex(q)}
      WHERE ${[`${f('d', 'facet')} = 'type'`, ...bound.where, ...(after ? [seek('d')] : [])].join(' AND ')}
      ORDER BY ${f('d', 'vmid')}, ${f('d', 'cluster')} LIMIT @limit`,
  );
  return query.all({ ...bound.params, ...position, limit }) as PageRow[];
}

/** The conditions on what facet rows do not carry (the name, the lock, sizes), on guest rows aliased `a`. */
function uncarriedConditions(a: string, q: FactQuery): BoundSql {
  const out: BoundSql = { where: [], params: {}, shape: [] };
  const add = (name: string, condition: string, value?: string | number): void => {
    out.where.push(condition);
    out.shape.push(name);
    if (value !== undefined) out.params[name] = value;
  };
  if (q.lock === true) add('locked', `${g(a, 'lock')} IS NOT NULL`);
  else if (q.lock === false) add('unlocked', `${g(a, 'lock')} IS NULL`);
  else if (q.lock !== undefined) add('lock', `${g(a, 'lock')} = @lock`, q.lock);
  if (q.minMemoryBytes !== undefined) add('minMem', `${g(a, 'maxmem')} >= @minMem`, q.minMemoryBytes);
  if (q.maxMemoryBytes !== undefined) add('maxMem', `${g(a, 'maxmem')} <= @maxMem`, q.maxMemoryBytes);
  if (q.minCores !== undefined) add('minCores', `${g(a, 'maxcpu')} >= @minCores`, q.minCores);
  if (q.maxCores !== undefined) add('maxCores', `${g(a, 'maxcpu')} <= @maxCores`, q.maxCores);
  if (q.namePattern !== undefined) add('name', `${g(a, 'name')} LIKE @name ESCAPE '\\'`, likePattern(q.namePattern));
  return out;
}

interface DetailRow {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  stale: number;
  template: number;
}

/** JSON `[[cluster, vmid], …]`: a list of guests as one parameter, so a statement serves any page size. */
export const refsParam = (refs: ReadonlyArray<{ cluster: string; vmid: number }>): string =>
  JSON.stringify(refs.map((r) => [r.cluster, r.vmid]));
/** Rows of the guests in `@refs` (refsParam), by the `cluster` and `vmid` every guest table keys them by. */
export const inRefs = (a: string): string =>
  `(${a}."cluster", ${a}."vmid") IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(@refs))`;

/** A page of matching guests as places only: who (cluster, vmid) and their bytes on the named storage. */
export interface FactRefPage extends LimitInfo {
  items: Array<{ cluster: string; vmid: number; storageBytes?: number | null }>;
  total: number;
  nextCursor?: string;
}

/**
 * The places of a page of live guests matching `q` in listing order, read from guest_facets alone:
 * for a caller that reads the page's guest rows itself (list_guests, for the fields asked), which
 * would otherwise read them twice.
 */
export function findGuestRefs(
  store: Store,
  q: FactQuery,
  options: { limit?: number; cursor?: string } = {},
): FactRefPage {
  checkQuery(q);
  const limitInfo = clampLimit(options.limit, QUERY_LIMITS.guests.default, QUERY_LIMITS.guests.max);
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  return oneRead(store, () => {
    const total = countFactGuests(store, q);
    const rows = total === 0 ? [] : pageRows(store, q, after, limitInfo.limit + 1);
    const page = rows.slice(0, limitInfo.limit);
    const result: FactRefPage = {
      items: page.map((r) => ({
        cluster: r.cluster,
        vmid: r.vmid,
        ...(q.storage !== undefined ? { storageBytes: r.bytes } : {}),
      })),
      total,
      ...limitInfo,
    };
    const last = page.at(-1);
    if (rows.length > limitInfo.limit && last) result.nextCursor = `${last.vmid}:${encodeURIComponent(last.cluster)}`;
    return result;
  });
}

/**
 * Live guests matching `q` in listing order (vmid, then cluster), a page at a time (keyset: the
 * cursor is the last item's place). With a storage filter each carries its bytes on that storage.
 */
export function findGuests(
  store: Store,
  q: FactQuery,
  options: { limit?: number; cursor?: string } = {},
): FactGuestPage {
  return oneRead(store, () => {
    const refs = findGuestRefs(store, q, options);
    const details = statement(
      store,
      'page-details',
      () =>
        `SELECT ${['cluster', 'vmid', 'name', 'node', 'type', 'status', 'stale', 'template'].map((k) => `${g('g', k as 'cluster')} AS ${k}`).join(', ')}
        FROM "guests" g WHERE ${inRefs('g')}`,
    );
    const byRef = new Map(
      (details.all({ refs: refsParam(refs.items) }) as DetailRow[]).map((r) => [`${r.cluster}\u0000${r.vmid}`, r]),
    );
    const items = refs.items.map((r): FactGuest => {
      const d = byRef.get(`${r.cluster}\u0000${r.vmid}`)!;
      const item: FactGuest = {
        cluster: d.cluster,
        vmid: d.vmid,
        name: d.name,
        node: d.node,
        type: d.type,
        status: d.stale ? 'unknown' : d.status,
        lastKnownStatus: d.stale ? d.status : null,
        template: Boolean(d.template),
      };
      if (q.storage !== undefined) item.storageBytes = r.storageBytes ?? null;
      return item;
    });
    return { ...refs, items };
  });
}

// ---- the same filters for list_guests ------------------------------------------------------------

/** The config facts a guest has any number of values of, filtered through its facet rows. */
export type ListedFact = 'storage' | 'bridge' | 'vlan';

/**
 * The listed fact (or the tag) a page sorted by anything but vmid starts from: the named value
 * fewest guests have, read first and its guests sorted (an IN list), the others probed per guest.
 * When the sort has an index to walk (`walksSortIndex`: memory, cores, disk size, name, node),
 * probing the guests in its order stops after a page, which beats reading the value's k guests
 * unless k is small: reading and
 * sorting a guest costs about three probes (measured at 10,000 guests: 6 µs against 2), and the
 * walk finds a page after about limit × guests / k probes. vlan=20 by memory, 100 guests in
 * 10,000: 12 ms walking the memory index, 0.7 ms from the VLAN's guests; ceph-vm, 5,940: the walk.
 */
export function drivingFacts(
  store: Store,
  f: FactFilter & { cluster?: string; tag?: string },
  limit: number,
  walksSortIndex: boolean,
): Set<ListedFact | 'tag'> {
  const driving = new Set<ListedFact | 'tag'>();
  const values = facetValues(f);
  const named = (['vlan', 'tag', 'bridge', 'storage'] as const).filter((facet) => values[facet] !== undefined);
  if (named.length === 0) return driving;
  // A second list would only add a second read of its guests: the narrowest value drives alone.
  const [narrowest] = named
    .map((facet) => ({ facet, guests: keptCount(store, facet, values[facet], f.cluster) }))
    .sort((a, b) => a.guests - b.guests);
  const everyone = walksSortIndex ? keptCount(store, 'type', undefined, f.cluster) : 0;
  if (!walksSortIndex || narrowest!.guests * narrowest!.guests * 3 < limit * everyone) driving.add(narrowest!.facet);
  return driving;
}

/**
 * The config facts of `f` as conditions on the `guests` table, for list_guests' own query (any
 * sort): a listed value by one probe of the guest's facet rows, the rest on the guest row.
 * Placeholder names start with `fact`; `shape` names the conditions present.
 */
export function factConditions(
  f: FactFilter,
  { driving = new Set() }: { driving?: ReadonlySet<string> } = {},
): {
  where: SQL[];
  params: Record<string, string | number>;
  shape: string;
} {
  checkQuery(f);
  const where: SQL[] = [];
  const params: Record<string, string | number> = {};
  const shape: string[] = [];
  const listed = (facet: ListedFact, value: string | undefined): void => {
    if (value === undefined) return;
    const name = `fact_${facet}`;
    const kind = sql.raw(`'${facet}'`);
    // As a list, SQLite reads the value's guests first and sorts them; as a probe, it tests the
    // guests in the sort's own order and stops after a page (see drivingFacts).
    where.push(
      driving.has(facet)
        ? sql`(${guests.cluster}, ${guests.vmid}) IN (SELECT ${guestFacets.cluster}, ${guestFacets.vmid} FROM ${guestFacets} WHERE ${guestFacets.facet} = ${kind} AND ${guestFacets.value} = ${P(name)})`
        : sql`EXISTS (SELECT 1 FROM ${guestFacets} WHERE ${guestFacets.cluster} = ${guests.cluster} AND ${guestFacets.vmid} = ${guests.vmid} AND ${guestFacets.facet} = ${kind} AND ${guestFacets.value} = ${P(name)})`,
    );
    params[name] = value;
    shape.push(driving.has(facet) ? `${facet}-list` : facet);
  };
  listed('storage', f.storage);
  listed('bridge', f.bridge);
  listed('vlan', f.vlan === undefined ? undefined : String(f.vlan));
  for (const key of ['onboot', 'protection', 'agent'] as const) {
    if (f[key] === undefined) continue;
    where.push(sql`${guests[key]} = ${P(`fact_${key}`)}`);
    params[`fact_${key}`] = Number(f[key]);
    shape.push(key);
  }
  if (f.ostype !== undefined) {
    where.push(sql`${guests.ostype} = ${P('fact_ostype')}`);
    params.fact_ostype = f.ostype;
    shape.push('ostype');
  }
  if (f.hasSnapshots !== undefined) {
    where.push(f.hasSnapshots ? sql`${guests.snapshotParent} IS NOT NULL` : sql`${guests.snapshotParent} IS NULL`);
    shape.push(f.hasSnapshots ? 'snapshots' : 'noSnapshots');
  }
  return { where, params, shape: shape.join(',') };
}

// ---- facts of listed guests ----------------------------------------------------------------------

/** What a guest's config says, as list_guests can show it through `fields`. */
export interface GuestFacts {
  /** Each storage the guest has a volume on: its disk bytes there (null when none is sized) and how many volumes. */
  storages: Array<{ storage: string; bytes: number | null; volumes: number }>;
  /** Sized disk volumes on any storage or device, CD-ROM images left out. */
  diskBytes: number;
  bridges: string[];
  vlans: number[];
  macs: string[];
  /** Static addresses from the config, as configured (`10.0.0.5/24`). */
  ips: string[];
  onboot: boolean | null;
  protection: boolean | null;
  agent: boolean | null;
  ostype: string | null;
  hasSnapshots: boolean;
}

/**
 * Each listed guest's disk bytes on one storage (by `cluster/vmid`; null when no volume there has a
 * size, absent when it has none there): one seek of that storage's range per guest, where
 * guestFacts reads every disk, NIC and address of the page.
 */
export function storageBytesOf(
  store: Store,
  refs: ReadonlyArray<{ cluster: string; vmid: number }>,
  storage: string,
): Map<string, number | null> {
  const rows = statement(
    store,
    'storage-bytes-of',
    () =>
      `SELECT ${f('s', 'cluster')} AS cluster, ${f('s', 'vmid')} AS vmid, ${f('s', 'bytes')} AS bytes
      FROM json_each(@refs) r CROSS JOIN "guest_facets" s
      WHERE ${f('s', 'facet')} = 'storage' AND ${f('s', 'value')} = @storage
        AND ${f('s', 'vmid')} = json_extract(r.value, '$[1]') AND ${f('s', 'cluster')} = json_extract(r.value, '$[0]')`,
  ).all({ refs: refsParam(refs), storage }) as Array<{ cluster: string; vmid: number; bytes: number | null }>;
  return new Map(rows.map((r) => [`${r.cluster}/${r.vmid}`, r.bytes]));
}

/** The facts of each listed guest (by `cluster/vmid`); guests the store does not hold are left out. */
export function guestFacts(
  store: Store,
  refs: ReadonlyArray<{ cluster: string; vmid: number }>,
): Map<string, GuestFacts> {
  const out = new Map<string, GuestFacts>();
  if (refs.length === 0) return out;
  const params = { refs: refsParam(refs) };
  return oneRead(store, () => {
    const own = statement(
      store,
      'facts-guests',
      () =>
        `SELECT ${g('g', 'cluster')} AS cluster, ${g('g', 'vmid')} AS vmid, ${g('g', 'onboot')} AS onboot, ${g('g', 'protection')} AS protection,
        ${g('g', 'agent')} AS agent, ${g('g', 'ostype')} AS ostype, ${g('g', 'snapshotParent')} IS NOT NULL AS snapshots
        FROM "guests" g WHERE ${inRefs('g')}`,
    ).all(params) as Array<{
      cluster: string;
      vmid: number;
      onboot: number | null;
      protection: number | null;
      agent: number | null;
      ostype: string | null;
      snapshots: number;
    }>;
    const bool = (v: number | null): boolean | null => (v === null ? null : Boolean(v));
    for (const r of own)
      out.set(`${r.cluster}/${r.vmid}`, {
        storages: [],
        diskBytes: 0,
        bridges: [],
        vlans: [],
        macs: [],
        ips: [],
        onboot: bool(r.onboot),
        protection: bool(r.protection),
        agent: bool(r.agent),
        ostype: r.ostype,
        hasSnapshots: Boolean(r.snapshots),
      });
    const disks = statement(
      store,
      'facts-disks',
      () =>
        `SELECT cluster, vmid, storage, size_bytes AS sizeBytes, media FROM "guest_disks" d WHERE ${inRefs('d')} ORDER BY cluster, vmid, key`,
    ).all(params) as Array<{
      cluster: string;
      vmid: number;
      storage: string | null;
      sizeBytes: number | null;
      media: string | null;
    }>;
    for (const d of disks) {
      const facts = out.get(`${d.cluster}/${d.vmid}`);
      if (!facts) continue;
      const counted = d.media !== 'cdrom' && d.sizeBytes !== null;
      if (counted) facts.diskBytes += d.sizeBytes!;
      if (d.storage === null) continue;
      let entry = facts.storages.find((s) => s.storage === d.storage);
      if (!entry) facts.storages.push((entry = { storage: d.storage, bytes: null, volumes: 0 }));
      entry.volumes++;
      if (counted) entry.bytes = (entry.bytes ?? 0) + d.sizeBytes!;
    }
    const nics = statement(
      store,
      'facts-nics',
      () =>
        `SELECT cluster, vmid, bridge, vlan, mac FROM "guest_nics" n WHERE ${inRefs('n')} ORDER BY cluster, vmid, key`,
    ).all(params) as Array<{
      cluster: string;
      vmid: number;
      bridge: string | null;
      vlan: number | null;
      mac: string | null;
    }>;
    for (const n of nics) {
      const facts = out.get(`${n.cluster}/${n.vmid}`);
      if (!facts) continue;
      if (n.bridge !== null && !facts.bridges.includes(n.bridge)) facts.bridges.push(n.bridge);
      if (n.vlan !== null && !facts.vlans.includes(n.vlan)) facts.vlans.push(n.vlan);
      if (n.mac !== null) facts.macs.push(n.mac);
    }
    const addresses = statement(
      store,
      'facts-addresses',
      () =>
        `SELECT cluster, vmid, address || coalesce('/' || prefix_length, '') AS ip FROM "guest_addresses" a WHERE ${inRefs('a')}
        ORDER BY cluster, vmid, nic, family`,
    ).all(params) as Array<{ cluster: string; vmid: number; ip: string }>;
    for (const a of addresses) out.get(`${a.cluster}/${a.vmid}`)?.ips.push(a.ip);
    return out;
  });
}
