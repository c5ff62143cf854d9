/**
 * list_guests' config facts: the fields it shows through `fields` (from guestFacts, one read for
 * the page), the grouped counts of `countBy`, and the misses of a storage, bridge, VLAN or ostype
 * no guest has, which name the closest known value.
 */
import type { Store } from '../../store/db.js';
import { nameSimilarity } from '../../store/queries.js';
import { listValues, type CountGroup, type GuestCounts } from '../../store/queries/counts.js';
import { guestFacts, storageBytesOf, type GuestFacts } from '../../store/queries/facts.js';
import { bytes, quoted, table, untrusted } from '../render.js';
import { ToolMiss } from '../tool.js';
import { closest, nameList } from './shared.js';

/** The fields read from the parsed config's read models rather than the guest row. */
export const FACT_FIELDS = [
  'onboot',
  'protection',
  'agent',
  'hasSnapshots',
  'storages',
  'diskBytes',
  'storageBytes',
  'bridges',
  'vlans',
  'macs',
  'ips',
] as const;
export type FactField = (typeof FACT_FIELDS)[number];

export const isFactField = (field: string): field is FactField => (FACT_FIELDS as readonly string[]).includes(field);

export type FactValues = Partial<Record<FactField, unknown>>;

/**
 * The selected fact fields of each listed guest, keyed `cluster/vmid`; `storage` is the filter's,
 * for storageBytes, which the page may already hold (`known`): then nothing more is read for it.
 */
export function factValues(
  store: Store,
  refs: ReadonlyArray<{ cluster: string; vmid: number }>,
  fields: readonly FactField[],
  storage: string | undefined,
  known?: Map<string, number | null>,
): Map<string, FactValues> {
  const out = new Map<string, FactValues>();
  if (!fields.length || !refs.length) return out;
  if (storage !== undefined && fields.every((f) => f === 'storageBytes')) {
    const bytes = known ?? storageBytesOf(store, refs, storage);
    for (const r of refs)
      out.set(`${r.cluster}/${r.vmid}`, { storageBytes: bytes.get(`${r.cluster}/${r.vmid}`) ?? null });
    return out;
  }
  for (const [key, facts] of guestFacts(store, refs)) out.set(key, pick(facts, fields, storage));
  return out;
}

function pick(facts: GuestFacts, fields: readonly FactField[], storage: string | undefined): FactValues {
  const all: Record<FactField, unknown> = {
    onboot: facts.onboot,
    protection: facts.protection,
    agent: facts.agent,
    hasSnapshots: facts.hasSnapshots,
    storages: facts.storages.map((s) => ({ storage: s.storage, bytes: s.bytes })),
    diskBytes: facts.diskBytes,
    storageBytes: storage === undefined ? null : (facts.storages.find((s) => s.storage === storage)?.bytes ?? null),
    bridges: facts.bridges,
    vlans: facts.vlans,
    macs: facts.macs,
    ips: facts.ips,
  };
  return Object.fromEntries(fields.map((f) => [f, all[f]]));
}

const yesNo = (v: unknown): string => (v == null ? '-' : v ? 'yes' : 'no');
const list = (items: string[]): string => (items.length ? untrusted(items.join(','), 80) : '-');

/** A fact field as one text cell. */
export function factCell(field: FactField, v: unknown): string {
  switch (field) {
    case 'onboot':
    case 'protection':
    case 'agent':
    case 'hasSnapshots':
      return yesNo(v);
    case 'diskBytes':
    case 'storageBytes':
      return bytes(v as number | null);
    case 'storages':
      return list((v as Array<{ storage: string; bytes: number | null }>).map((s) => `${s.storage}:${bytes(s.bytes)}`));
    case 'vlans':
      return list((v as number[]).map(String));
    default:
      return list(v as string[]);
  }
}

// ---- misses ---------------------------------------------------------------------------------------

export interface FactNames {
  cluster?: string;
  storage?: string;
  bridge?: string;
  vlan?: number;
  ostype?: string;
}

/** The VLAN tags nearest to `vlan`, nearest first. */
const nearestVlans = (vlan: number, known: number[]): number[] =>
  [...known].sort((a, b) => Math.abs(a - vlan) - Math.abs(b - vlan) || a - b).slice(0, 5);

/**
 * A storage, bridge, VLAN or ostype that no guest has is a miss that names the closest known
 * value; read only when nothing matched. A storage the cluster has but no guest uses is not one.
 */
export function checkFactValues(store: Store, args: FactNames): void {
  if (args.storage === undefined && args.bridge === undefined && args.vlan === undefined && args.ostype === undefined)
    return;
  const known = listValues(store, args.cluster === undefined ? {} : { cluster: args.cluster });
  const where = args.cluster === undefined ? '' : ` in cluster ${args.cluster}`;
  const named = (kind: string, value: string, values: string[], what: string): void => {
    if (values.includes(value)) return;
    const near = closest(value, values) ?? bestGuess(value, values);
    throw new ToolMiss(
      `${what} ${quoted(value, 64)}${where}.`,
      `${near === undefined ? '' : `Closest: ${untrusted(near, 64)}. `}Known ${kind}: ${nameList(values) || 'none'}.`,
    );
  };
  if (args.storage !== undefined)
    named(
      'storages',
      args.storage,
      known.storages.map((s) => s.value),
      'No storage',
    );
  if (args.bridge !== undefined)
    named(
      'bridges',
      args.bridge,
      known.bridges.map((b) => b.value),
      'No guest has a NIC on bridge',
    );
  if (args.ostype !== undefined)
    named(
      'ostypes',
      args.ostype,
      known.ostypes.map((o) => o.value),
      'No guest has ostype',
    );
  if (args.vlan !== undefined) {
    const vlans = known.vlans.map((v) => v.value);
    if (!vlans.includes(args.vlan)) {
      const near = nearestVlans(args.vlan, vlans);
      throw new ToolMiss(
        `No guest has a NIC with VLAN tag ${args.vlan}${where}.`,
        near.length
          ? `Closest: ${near.join(', ')} (of ${vlans.length} VLAN tags in use; list_guests countBy=vlan lists them).`
          : 'No NIC has a VLAN tag.',
      );
    }
  }
}

/** The most similar value even when closest() finds none similar enough, for short lists (ostypes). */
function bestGuess(value: string, values: string[]): string | undefined {
  if (values.length > 12) return undefined;
  return [...values].sort((a, b) => nameSimilarity(value, b) - nameSimilarity(value, a))[0];
}

// ---- grouped counts -------------------------------------------------------------------------------

const LISTED = new Set(['tag', 'storage', 'bridge', 'vlan']);

/** A group's value as a cell: `(none)` for guests without one, yes/no for the template flag. */
function keyCell(by: string, key: CountGroup['key']): string {
  if (key === null) return '(none)';
  if (typeof key === 'boolean') return yesNo(key);
  return untrusted(String(key), 64);
}

/** The text of a countBy answer: a header with the filters, then one line per group. */
export function countsText(counts: GuestCounts, where: string): string {
  const withCluster = counts.groups.some((g) => g.cluster !== undefined);
  const head = `${counts.total} guests${where ? ` with ${where}` : ''} by ${counts.by}: ${counts.groups.length} groups${
    LISTED.has(counts.by) ? ` (a guest counts once per ${counts.by} it has)` : ''
  }`;
  if (!counts.groups.length) return head;
  const columns = [
    ...(withCluster ? ['cluster'] : []),
    counts.by,
    'guests',
    ...(counts.by === 'storage' ? ['bytes'] : []),
  ];
  const rows = counts.groups.map((g) => [
    ...(withCluster ? [untrusted(g.cluster, 63)] : []),
    keyCell(counts.by, g.key),
    String(g.guests),
    ...(counts.by === 'storage' ? [bytes(g.bytes)] : []),
  ]);
  return `${head}\n${table(columns, rows)}`;
}
