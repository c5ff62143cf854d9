import { z } from 'zod';
import type { Store } from '../../store/db.js';
import { countGuests, listGuests, QUERY_LIMITS, type GuestFilter, type GuestSummary } from '../../store/queries.js';
import { bytes, table, untrusted } from '../render.js';
import { amount, boundsInOrder, count, flag, text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { GiB, seenRange, STALE_WHY, statusCell } from './shared.js';

const FIELDS = [
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
type Field = (typeof FIELDS)[number];
/** Lean by default, as `kubectl get` is: sizes, tags and metrics are a `fields` away. */
const DEFAULT_FIELDS: Field[] = ['cluster', 'vmid', 'name', 'type', 'node', 'status'];

/** One line per guest in the text: the selected fields in a fixed order, sizes human-readable. */
function cell(g: Partial<GuestSummary>, field: Field): string {
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
  if (filter.status === undefined || filter.status === 'unknown' || filter.lastKnownStatus !== undefined) return '';
  const n = countGuests(store, { ...filter, status: undefined, lastKnownStatus: filter.status });
  return n
    ? `; not listed: ${n} stale guests last seen ${untrusted(filter.status, 32)} (status unknown now; lastKnownStatus=${untrusted(filter.status, 32)} lists them)`
    : '';
}

export const listGuestsTool = defineTool({
  name: 'list_guests',
  title: 'List guests',
  description:
    'VMs and containers, filtered, sorted, paged (50; pass nextCursor). Shows vmid name type node status and the sort key; `fields` for more. Sizes in bytes; cpu a 0..1 fraction. Status unknown = stale (node or cluster unreachable): no usage, lastKnownStatus says what was seen.',
  input: z
    .object({
      cluster: text(63).optional(),
      node: text(63).optional(),
      type: z.enum(['qemu', 'lxc']).optional(),
      status: text(32).optional().describe('running, stopped, paused, unknown'),
      lastKnownStatus: text(32).optional().describe('stale guests by the status last seen'),
      tag: text(64).optional(),
      pool: text(64).optional(),
      name: text(100).optional().describe('substring, or a glob with * and ?; case-insensitive'),
      template: flag().optional(),
      lock: text(32).optional().describe('a lock name (backup, migrate, …), or "any" / "none"'),
      minMemoryGiB: amount().optional(),
      maxMemoryGiB: amount().optional(),
      minCores: count(0, 4096).optional(),
      maxCores: count(0, 4096).optional(),
      sort: z.enum(['vmid', 'name', 'node', 'status', 'maxmem', 'maxcpu', 'mem', 'cpu', 'maxdisk']).optional(),
      order: z.enum(['asc', 'desc']).optional(),
      limit: count(1, QUERY_LIMITS.guests.max).optional(),
      cursor: text(2000).optional(),
      fields: z.array(z.enum(FIELDS)).min(1).optional(),
    })
    .strict()
    .superRefine(boundsInOrder(['minMemoryGiB', 'maxMemoryGiB'], ['minCores', 'maxCores'])),
  output: z.object({
    guests: z.array(z.looseObject({})).describe('the selected fields of each guest'),
    total: z.number().describe('guests matching the filter'),
    nextCursor: z.string().optional(),
  }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    // The default columns show what the page is sorted by.
    const fields =
      args.fields ??
      (args.sort === undefined || DEFAULT_FIELDS.includes(args.sort) ? DEFAULT_FIELDS : [...DEFAULT_FIELDS, args.sort]);
    const lock =
      args.lock === undefined ? undefined : args.lock === 'any' ? true : args.lock === 'none' ? false : args.lock;
    const filter: GuestFilter = {
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
    };
    // The last known status is read whatever the fields: it is set on stale rows only, so it says which they are.
    const page = listGuests(store, filter, {
      sort: args.sort,
      order: args.order,
      limit: args.limit,
      cursor: args.cursor,
      fields: [...fields, 'lastKnownStatus'],
    });
    // A stale row carries its last known status beside `status: unknown`.
    const guests = page.items.map(
      (g) =>
        ({
          ...Object.fromEntries(fields.map((f) => [f, g[f]])),
          ...(g.lastKnownStatus != null && fields.includes('status') && !fields.includes('lastKnownStatus')
            ? { lastKnownStatus: g.lastKnownStatus }
            : {}),
        }) as Partial<GuestSummary>,
    );
    const stale = page.staleItems;
    const allStale = stale !== undefined && stale.count === page.items.length;
    // A column every row has the same value in because of the filter is said once, in the first line.
    const fixed = {
      cluster: args.cluster,
      node: args.node,
      type: args.type,
      status: args.status,
      lastKnownStatus: args.lastKnownStatus,
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
    const where = fields
      .filter(isFixed)
      .map((f) => `${f}=${untrusted(fixed[f as keyof typeof fixed], 63)}`)
      .join(' ');
    const staleNote = !stale
      ? ''
      : allStale
        ? `; all stale (${STALE_WHY}): status unknown, last seen ${seenRange(stale.lastSeenFrom, stale.lastSeenTo)}`
        : `; ${stale.count} stale${columns.includes('status') ? ': status unknown(last known)' : ' (status unknown)'}`;
    const hidden = hiddenStale(store, filter);
    const shown =
      page.items.length === 0
        ? `no guest matches${hidden}`
        : `${page.items.length} of ${page.total} guests${where ? ` with ${where}` : ''}${staleNote}${hidden}${page.nextCursor ? `; next page: cursor=${page.nextCursor}` : ''}`;
    const rowCell = (g: GuestSummary, f: Field): string => (f === 'status' ? statusCell(g) : cell(g, f));
    return {
      structured: { guests, total: page.total, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) },
      text: page.items.length
        ? `${shown}\n${table(
            columns,
            page.items.map((g) => columns.map((f) => rowCell(g as GuestSummary, f))),
          )}`
        : shown,
    };
  },
});
