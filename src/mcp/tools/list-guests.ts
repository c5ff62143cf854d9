import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '../../store/db.js';
import {
  countGuests,
  knownFilterValues,
  listGuests,
  OTHER_STATUS,
  QUERY_LIMITS,
  type FilterValueKind,
  type GuestFilter,
  type GuestPage,
  type GuestSummary,
} from '../../store/queries.js';
import { COUNT_BY, countGuestsBy } from '../../store/queries/counts.js';
import { listGuestsByFacets, readsFacets } from '../../store/queries/guest-listing.js';
import { bytes, percent, quoted, table, untrusted } from '../render.js';
import { amount, boundsInOrder, count, flag, text } from '../schemas.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import {
  checkFactValues,
  countsText,
  FACT_FIELDS,
  factCell,
  factValues,
  isFactField,
  type FactValues,
} from './guest-facts.js';
import {
  checkCluster,
  closest,
  GiB,
  nameList,
  PROXMOX_STATUSES,
  Rows,
  seenRange,
  STALE_WHY,
  statusCell,
} from './shared.js';

const ROW_FIELDS = [
  'cluster',
  'vmid',
  'type',
  'node',
  'name',
  'status',
  'lastKnownStatus',
  'template',
  'tags',
  'lock',
  'pool',
  'hastate',
  'maxcpu',
  'maxmem',
  'maxdisk',
  'cpu',
  'mem',
  'uptime',
  'stale',
  'lastSeenAt',
  'cores',
  'sockets',
  'memoryMib',
  'ostype',
] as const;
type RowField = (typeof ROW_FIELDS)[number];
const FIELDS = [...ROW_FIELDS, ...FACT_FIELDS] as const;
type Field = (typeof FIELDS)[number];
/** Lean by default, as `kubectl get` is: sizes, tags and metrics are a `fields` away. */
const DEFAULT_FIELDS: Field[] = ['cluster', 'vmid', 'name', 'type', 'node', 'status'];

/** One line per guest in the text: the selected fields in a fixed order, sizes human-readable. */
function cell(g: Partial<GuestSummary>, field: RowField): string {
  const v = g[field];
  if (v == null) return '-';
  if (field === 'maxmem' || field === 'mem' || field === 'maxdisk') return bytes(v as number);
  if (field === 'cpu') return `${Math.round((v as number) * 100)}%`;
  if (field === 'tags') return (v as string[]).length ? untrusted((v as string[]).join(','), 40) : '-';
  // Every text field holds what Proxmox sent (node, status, lock, hastate too): one cell whatever it is.
  if (typeof v === 'string') return untrusted(v, field === 'node' || field === 'cluster' ? 63 : 40);
  return String(v);
}

/**
 * Asked for a status now (`running`), the stale guests last seen in it are not listed (their
 * status is unknown); say how many there are and how to list them.
 */
function hiddenStale(store: Store, filter: GuestFilter): string {
  if (
    filter.status === undefined ||
    filter.status === 'unknown' ||
    filter.status === OTHER_STATUS ||
    filter.lastKnownStatus !== undefined
  )
    return '';
  const n = countGuests(store, { ...filter, status: undefined, lastKnownStatus: filter.status });
  return n
    ? `; not listed: ${n} stale guests last seen ${untrusted(filter.status, 32)} (status unknown now; lastKnownStatus=${untrusted(filter.status, 32)} lists them)`
    : '';
}

/** The filters as the caller gave them, in the input's order: the first line says every one. */
type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string | number | boolean>>;
const FILTER_KEYS = [
  'cluster',
  'node',
  'type',
  'status',
  'lastKnownStatus',
  'tag',
  'pool',
  'name',
  'template',
  'lock',
  'minMemoryGiB',
  'maxMemoryGiB',
  'minCores',
  'maxCores',
  'storage',
  'bridge',
  'vlan',
  'onboot',
  'protection',
  'agent',
  'ostype',
  'hasSnapshots',
] as const;

const appliedFilters = (args: Filters): string =>
  FILTER_KEYS.filter((k) => args[k] !== undefined)
    .map((k) => `${k}=${untrusted(String(args[k]), 63)}`)
    .join(' ');

const NAMED: Record<FilterValueKind, string> = { node: 'node', pool: 'pool', tag: 'guest has the tag' };

/**
 * A filter value that names nothing the inventory knows (a cluster, node, pool or tag, a status
 * Proxmox does not have) is a mistake to say, with the closest known value, not an empty answer.
 * Read only when nothing matched: a value that matched something names something.
 */
function checkNamedValues(store: Store, args: Filters & { cluster?: string }): void {
  checkCluster(store, args.cluster);
  const status = args.lastKnownStatus;
  if (typeof status === 'string' && !PROXMOX_STATUSES.includes(status))
    throw new ToolMiss(
      `lastKnownStatus ${quoted(status)} is not a Proxmox guest status.`,
      `Use running, stopped or paused (or another QEMU state such as io-error).`,
    );
  for (const kind of ['node', 'pool', 'tag'] as const) {
    const value = args[kind];
    if (typeof value !== 'string') continue;
    const known = knownFilterValues(store, kind, args.cluster);
    const wanted = kind === 'tag' ? value.toLowerCase() : value;
    if (known.includes(wanted)) continue;
    const near = closest(wanted, known);
    const where = args.cluster === undefined ? '' : ` in cluster ${args.cluster}`;
    throw new ToolMiss(
      kind === 'tag'
        ? `No guest has the tag ${quoted(value, 64)}${where}.`
        : `No ${NAMED[kind]} ${quoted(value, 64)}${where}.`,
      `${near === undefined ? '' : `Closest: ${untrusted(near, 64)}. `}Known ${kind}s: ${nameList(known) || 'none'}.`,
    );
  }
}

/** A sort value as its column shows it: `16G`, `35%`, a name. */
function sortValue(sort: string, key: number | string): string {
  if (typeof key === 'number' && key < 0) return '-';
  if (sort === 'maxmem' || sort === 'mem' || sort === 'maxdisk') return bytes(key as number);
  if (sort === 'cpu') return percent(key as number);
  return untrusted(String(key), 40);
}

/** A page that ends inside a run of equal values says how many more share the last one. */
function sameAfterNote(page: GuestPage<unknown>): string {
  const same = page.sameAfter;
  if (!same?.count) return '';
  return `; the page ends inside a run: ${same.count} more guests also have ${same.sort} ${sortValue(same.sort, same.sortKey)}`;
}

/** What the filters say about the listing, as list_guests' store queries take it. */
function guestFilter(args: ListGuestsArgs): GuestFilter {
  const lock =
    args.lock === undefined ? undefined : args.lock === 'any' ? true : args.lock === 'none' ? false : args.lock;
  return {
    cluster: args.cluster,
    node: args.node,
    type: args.type,
    status: args.status,
    lastKnownStatus: args.lastKnownStatus,
    tag: args.tag,
    pool: args.pool,
    namePattern: args.name,
    template: args.template,
    lock,
    minMemoryBytes: args.minMemoryGiB === undefined ? undefined : args.minMemoryGiB * GiB,
    maxMemoryBytes: args.maxMemoryGiB === undefined ? undefined : args.maxMemoryGiB * GiB,
    minCores: args.minCores,
    maxCores: args.maxCores,
    storage: args.storage,
    bridge: args.bridge,
    vlan: args.vlan,
    onboot: args.onboot,
    protection: args.protection,
    agent: args.agent,
    ostype: args.ostype,
    hasSnapshots: args.hasSnapshots,
  };
}

/** Nothing matched: a filter value that names nothing is said as a miss with the closest known value. */
function checkFilterValues(store: Store, args: ListGuestsArgs): void {
  checkNamedValues(store, args);
  checkFactValues(store, args);
}

/** `countBy`: live guests matching the filters, counted per value instead of listed. */
function countAnswer(store: Store, args: ListGuestsArgs & { countBy: (typeof COUNT_BY)[number] }) {
  if (args.status === OTHER_STATUS)
    throw new ToolMiss(
      'status=other cannot be combined with countBy.',
      'Ask countBy=status without a status filter: it counts every status, io-error and the like included.',
    );
  const counts = countGuestsBy(store, args.countBy, guestFilter(args));
  if (counts.total === 0) checkFilterValues(store, args);
  return {
    structured: { total: counts.total, by: counts.by, groups: counts.groups.map((g) => ({ ...g })) },
    text: countsText(counts, appliedFilters(args)),
  };
}

/** The default columns: the lean set, the sort key when another, the bytes on the storage filtered by. */
function defaultFields(args: ListGuestsArgs): Field[] {
  return [
    ...DEFAULT_FIELDS,
    ...(args.sort === undefined || DEFAULT_FIELDS.includes(args.sort) ? [] : [args.sort]),
    ...(args.storage === undefined ? [] : (['storageBytes'] as const)),
  ];
}

/**
 * A page's cursor starts with a digest of the filters, sort and order it was made for and of its
 * own position. Without it, a cursor reused with other filters started at its place in another
 * listing and silently left guests out, and a position edited by hand (past the end: "no guest
 * matches") was trusted.
 */
function cursorDigest(filter: GuestFilter, sort: string | undefined, order: string | undefined, at: string): string {
  const made = JSON.stringify([filter, sort ?? 'vmid', order ?? 'asc', at]);
  return createHash('sha256').update(made).digest('base64url').slice(0, 6);
}

const START_AGAIN =
  'Pass nextCursor from the previous page unchanged with the same filters, sort and order, or omit cursor to start again.';

/** The position a cursor holds, once its digest shows it was made by this listing and left unchanged. */
function cursorPosition(cursor: string, made: (at: string) => string): string {
  const dot = cursor.indexOf('.');
  if (dot < 0) throw new ToolMiss('The cursor is malformed.', START_AGAIN);
  const at = cursor.slice(dot + 1);
  if (cursor.slice(0, dot) !== made(at))
    throw new ToolMiss('The cursor was made for other filters, sort or order, or was changed.', START_AGAIN);
  return at;
}

const COUNT_ONLY_CONFLICTS = ['sort', 'order', 'limit', 'cursor', 'fields'] as const;

const input = z
  .object({
    cluster: text(63).optional(),
    node: text(63).optional(),
    type: z.enum(['qemu', 'lxc']).optional(),
    status: z.enum(['running', 'stopped', 'paused', 'unknown', OTHER_STATUS]).optional().describe('other: io-error…'),
    lastKnownStatus: text(32).optional().describe('stale guests by last status'),
    tag: text(64).optional(),
    pool: text(64).optional(),
    name: text(100).optional().describe('substring, or a glob with * and ?; case-insensitive'),
    template: flag().optional(),
    lock: text(32).optional().describe('a lock name (backup, migrate, …), or "any" / "none"'),
    minMemoryGiB: amount().optional(),
    maxMemoryGiB: amount().optional(),
    minCores: count(0, 4096).optional(),
    maxCores: count(0, 4096).optional(),
    storage: text(64).optional().describe('has a volume there; shows storageBytes'),
    bridge: text(64).optional().describe('has a NIC on it'),
    vlan: count(1, 4094).optional().describe('has a NIC with this tag'),
    onboot: flag().optional(),
    protection: flag().optional(),
    agent: flag().optional().describe('QEMU guest agent enabled'),
    ostype: text(32).optional(),
    hasSnapshots: flag().optional(),
    countBy: z.enum(COUNT_BY).optional().describe('count per value (and list the values) instead of rows'),
    sort: z.enum(['vmid', 'name', 'node', 'status', 'maxmem', 'maxcpu', 'mem', 'cpu', 'maxdisk']).optional(),
    order: z.enum(['asc', 'desc']).optional(),
    limit: count(1, QUERY_LIMITS.guests.max).optional(),
    cursor: text(2000).optional(),
    fields: z.array(z.enum(FIELDS)).min(1).optional(),
  })
  .strict()
  .superRefine(boundsInOrder(['minMemoryGiB', 'maxMemoryGiB'], ['minCores', 'maxCores']))
  .superRefine((value, ctx) => {
    if (value.countBy === undefined) return;
    const given = COUNT_ONLY_CONFLICTS.filter((k) => value[k] !== undefined);
    if (given.length)
      ctx.addIssue({
        code: 'custom',
        message: `countBy answers counts, not rows: leave out ${given.join(', ')} (or countBy, to list rows)`,
      });
  });
type ListGuestsArgs = z.infer<typeof input>;

export const listGuestsTool = defineTool({
  name: 'list_guests',
  title: 'List guests',
  description:
    'VMs and containers, filtered (config facts too: storage, bridge, vlan, onboot…), sorted, paged (50; pass nextCursor): vmid name type node status and the sort key; `fields` for more. ' +
    'countBy: counts per node, tag, storage… instead of rows, which also lists the values that exist. Sizes in bytes, cpu 0..1. Status unknown = stale (node or cluster unreachable): no usage; lastKnownStatus = what was seen.',
  input,
  output: z.object({
    guests: Rows.optional().describe('the selected fields of each guest'),
    total: z.number(),
    nextCursor: z.string().optional(),
    by: z.string().optional(),
    groups: Rows.optional().describe('countBy: {key, guests, cluster?, bytes?}'),
  }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    if (args.countBy !== undefined) return countAnswer(store, { ...args, countBy: args.countBy });
    const fields = args.fields ?? defaultFields(args);
    const rowFields = fields.filter((f): f is RowField => !isFactField(f));
    const factFields = fields.filter(isFactField);
    const filter = guestFilter(args);
    const made = (at: string): string => cursorDigest(filter, args.sort, args.order, at);
    const cursor = args.cursor === undefined ? undefined : cursorPosition(args.cursor, made);
    // The last known status is read whatever the fields: it is set on stale rows only, so it says which they are.
    const asked = [...rowFields, 'lastKnownStatus' as const];
    const page: GuestPage<Partial<GuestSummary> & { cluster: string; vmid: number }> & {
      storageBytes?: Map<string, number | null>;
    } = readsFacets(filter, args.sort, args.order)
      ? listGuestsByFacets(store, filter, { limit: args.limit, cursor, fields: asked })
      : listGuests(store, filter, {
          sort: args.sort,
          order: args.order,
          limit: args.limit,
          cursor,
          fields: asked,
        });
    const nextCursor = page.nextCursor && `${made(page.nextCursor)}.${page.nextCursor}`;
    const facts = factValues(store, page.items, factFields, args.storage, page.storageBytes);
    const factsOf = (g: { cluster: string; vmid: number }): FactValues => facts.get(`${g.cluster}/${g.vmid}`) ?? {};
    // A stale row carries its last known status beside `status: unknown`.
    const guests = page.items.map((g) => ({
      ...Object.fromEntries(rowFields.map((f) => [f, g[f]])),
      ...(g.lastKnownStatus != null && fields.includes('status') && !fields.includes('lastKnownStatus')
        ? { lastKnownStatus: g.lastKnownStatus }
        : {}),
      ...factsOf(g),
    }));
    const stale = page.staleItems;
    const allStale = stale !== undefined && stale.count === page.items.length;
    // A column every row has the same value in because of the filter is said once, in the first line.
    const fixed = {
      cluster: args.cluster,
      node: args.node,
      type: args.type,
      status: args.status === OTHER_STATUS ? undefined : args.status,
      lastKnownStatus: args.lastKnownStatus,
      ostype: args.ostype,
      onboot: args.onboot,
      protection: args.protection,
      agent: args.agent,
      hasSnapshots: args.hasSnapshots,
    };
    const isFixed = (f: Field): boolean => f in fixed && fixed[f as keyof typeof fixed] !== undefined;
    // On a page of stale rows only, the status column is their last known status (the header says so once).
    const shownFields =
      allStale && fields.includes('status')
        ? fields.map((f) => (f === 'status' ? 'lastKnownStatus' : f)).filter((f, i, all) => all.indexOf(f) === i)
        : fields;
    const columns = shownFields.filter(
      (f) => !isFixed(f) && (f !== 'cluster' || new Set(page.items.map((g) => g.cluster)).size > 1),
    );
    const where = appliedFilters(args);
    const staleNote = !stale
      ? ''
      : allStale
        ? `; all stale (${STALE_WHY}): status unknown, last seen ${seenRange(stale.lastSeenFrom, stale.lastSeenTo)}`
        : `; ${stale.count} stale${columns.includes('status') ? ': status unknown(last known)' : ' (status unknown)'}`;
    const hidden = hiddenStale(store, filter);
    if (page.total === 0) checkFilterValues(store, args);
    const shown =
      page.items.length === 0
        ? `no guest matches${where ? ` ${where}` : ''}${hidden}`
        : `${page.items.length} of ${page.total} guests${where ? ` with ${where}` : ''}${staleNote}${hidden}${sameAfterNote(page)}${nextCursor ? `; next page: cursor=${nextCursor}` : ''}`;
    const rowCell = (g: GuestSummary, f: Field): string =>
      isFactField(f) ? factCell(f, factsOf(g)[f]) : f === 'status' ? statusCell(g) : cell(g, f);
    return {
      structured: { guests, total: page.total, ...(nextCursor ? { nextCursor } : {}) },
      text: page.items.length
        ? `${shown}\n${table(
            columns.map((f) =>
              f === 'storageBytes' && args.storage !== undefined ? `bytes_on_${untrusted(args.storage, 40)}` : f,
            ),
            page.items.map((g) => columns.map((f) => rowCell(g as GuestSummary, f))),
          )}`
        : shown,
    };
  },
});
