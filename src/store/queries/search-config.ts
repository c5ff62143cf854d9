/**
 * search_inventory's matches in the parsed config, through the read models' indexes: a MAC or an
 * IP address (whole, or its leading part) by a range of guest_nics(mac) or
 * guest_addresses(address), a bridge or `vlan N` by guest_facets' range for that value, and a
 * disk volume's name (`vm-101-disk-0`) by a scan of guest_disks, which holds a few short columns
 * per volume. The JSON scan of every guest's NICs these replace took about 22 ms at 10,000 guests.
 */
import type { Store } from '../db.js';
import { guestAddresses, guestDisks, guestFacets, guestNics, guests } from '../schema.js';
import { column, statement } from './facts.js';
import type { CandidateRow } from './guest.js';
import { normalizeAddress, normalizeMac } from './network.js';

export type ConfigField = 'mac' | 'ip' | 'volume' | 'bridge' | 'vlan';

/** The columns of guest_text (migration 0006), the trigram index of each guest row's words and volume names. */
export type TextColumn = 'name' | 'tags' | 'description' | 'volumes';

/**
 * The MATCH text finding `text` in one column of guest_text; undefined (the caller scans) under 3
 * characters, which a trigram index finds nothing by, and for text holding a NUL, where FTS5 stops
 * reading the phrase and fails the statement ("unterminated string").
 */
export function textPhrase(column: TextColumn, text: string): string | undefined {
  if ([...text].length < 3 || text.includes('\u0000')) return undefined;
  return `{${column}} : "${text.replace(/"/g, '""')}"`;
}

export interface ConfigHit {
  guest: CandidateRow & { stale: number };
  field: ConfigField;
  /** What matched: `net0 BC:24:11:…`, `net0 10.20.0.5/24`, `scsi0 ceph-vm:vm-101-disk-0`, `net1 vmbr1`, `net0 vlan 20`. */
  value: string;
  /** The whole value was given (a full MAC, an address, a volume's whole name), not a part of it. */
  exact: boolean;
}

const g = (key: keyof typeof guests._.columns & string): string => column(guests, 'g', key);
const GUEST = `${g('cluster')} AS cluster, ${g('vmid')} AS vmid, ${g('name')} AS name, ${g('node')} AS node, ${g('type')} AS type,
  ${g('status')} AS status, ${g('stale')} AS stale, ${g('deletedAt')} AS deletedAt`;
const joinGuest = (a: string): string =>
  `JOIN "guests" g ON ${g('cluster')} = ${a}."cluster" AND ${g('vmid')} = ${a}."vmid" AND ${g('deletedAt')} IS NULL`;

type Row = CandidateRow & { stale: number; what: string; matched: string };

const hits = (rows: Row[], field: ConfigField, exact: (r: Row) => boolean): ConfigHit[] =>
  rows.map(({ what, matched, ...guest }) => ({
    guest,
    field,
    value: `${what} ${matched}`,
    exact: exact({ what, matched, ...guest }),
  }));

/** The first value past every text starting with `prefix` (in the index's binary order). */
const pastPrefix = (prefix: string): string =>
  prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

/** A whole MAC or its leading bytes (`bc:24:11`, `BC-24-11-AA`, `bc2411aabbcc`); undefined when the text is neither. */
function macOf(q: string): { mac: string; whole: boolean } | undefined {
  if (!/^[0-9a-f]{12}$/i.test(q) && !/^[0-9a-f]{1,2}([:-][0-9a-f]{1,2})+[:-]?$/i.test(q)) return undefined;
  const whole = /^[0-9a-f]{12}$/i.test(q) || /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(q);
  try {
    return { mac: normalizeMac(q, !whole), whole };
  } catch {
    return undefined;
  }
}

function byMac(store: Store, q: string): ConfigHit[] {
  const found = macOf(q);
  if (!found) return [];
  const mac = column(guestNics, 'a', 'mac');
  const rows = statement(
    store,
    `search-mac:${found.whole}`,
    () =>
      `SELECT ${GUEST}, ${column(guestNics, 'a', 'key')} AS what, ${mac} AS matched FROM "guest_nics" a ${joinGuest('a')}
      WHERE ${found.whole ? `${mac} = @from` : `${mac} >= @from AND ${mac} < @to`}`,
  ).all(found.whole ? { from: found.mac } : { from: found.mac, to: pastPrefix(found.mac) }) as Row[];
  return hits(rows, 'mac', () => found.whole);
}

/**
 * An address, with or without its `/length`, or its leading part: four IPv4 octets are an address
 * (`10.20.0.5` is not `10.20.0.50`), fewer are the start of one (`10.20` finds 10.20.x.x, not
 * 10.200.x.x); an IPv6 text ending in `:` is a start, else an address.
 */
function addressOf(q: string): { from: string; to?: string; length?: number } | undefined {
  const v4 = /^\d{1,3}(\.\d{1,3}){1,3}\.?(\/\d{1,2})?$/.test(q);
  const v6 = !v4 && /^[0-9a-f]*:[0-9a-f:]*:[0-9a-f:]*(\/\d{1,3})?$/i.test(q) && !macOf(q);
  if (!v4 && !v6) return undefined;
  const whole = v4 ? /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(q) : !q.endsWith(':');
  try {
    if (whole) {
      const { address, prefixLength } = normalizeAddress(q, false);
      return { from: address, ...(prefixLength !== undefined ? { length: prefixLength } : {}) };
    }
    const start = normalizeAddress(v4 && !q.endsWith('.') ? `${q}.` : q, true).address;
    return { from: start, to: pastPrefix(start) };
  } catch {
    return undefined;
  }
}

function byAddress(store: Store, q: string): ConfigHit[] {
  const found = addressOf(q);
  if (!found) return [];
  const address = column(guestAddresses, 'a', 'address');
  const length = column(guestAddresses, 'a', 'prefixLength');
  const match =
    found.to !== undefined
      ? `${address} >= @from AND ${address} < @to`
      : `${address} = @from${found.length !== undefined ? ` AND ${length} = @length` : ''}`;
  const rows = statement(
    store,
    `search-address:${found.to !== undefined}:${found.length !== undefined}`,
    () =>
      `SELECT ${GUEST}, ${column(guestAddresses, 'a', 'nic')} AS what, ${address} || coalesce('/' || ${length}, '') AS matched
      FROM "guest_addresses" a ${joinGuest('a')} WHERE ${match}`,
  ).all(found) as Row[];
  return hits(rows, 'ip', () => found.to === undefined);
}

/** `vmbr1` (as typed, or in lower case) or `vlan 20`: the guests with a NIC there, one hit per guest. */
function byNetwork(store: Store, q: string): ConfigHit[] {
  const vlan = /^vlan\s*(\d{1,4})$/i.exec(q)?.[1];
  const facet = vlan !== undefined ? 'vlan' : 'bridge';
  if (facet === 'bridge' && !/^[\w.-]{1,64}$/.test(q)) return [];
  const value = column(guestFacets, 'f', 'value');
  const rows = statement(
    store,
    `search-${facet}`,
    () =>
      `SELECT ${GUEST}, '${facet}' AS what, ${value} AS matched FROM "guest_facets" f ${joinGuest('f')}
      WHERE ${column(guestFacets, 'f', 'facet')} = '${facet}' AND ${value} IN (@value, @lower)`,
  ).all(
    vlan !== undefined
      ? { value: String(Number(vlan)), lower: String(Number(vlan)) }
      : { value: q, lower: q.toLowerCase() },
  ) as Row[];
  return rows.map(({ what: _what, matched, ...guest }) => ({
    guest,
    field: facet,
    value: matched,
    exact: true,
  }));
}

/**
 * Volume names containing the text (case-insensitive): `vm-101-disk`, `base-9000`, an ISO's name.
 * A word without a digit or a separator (`dns`, `web`) is taken for a name or a tag, and a volume
 * name holds no space: either skips this. The volumes of the guests guest_text finds for the text
 * are tested, not every volume (a scan of guest_disks: 4 ms at 10,000 guests on a quiet VM, 30
 * under load).
 */
function byVolume(store: Store, q: string): ConfigHit[] {
  if (q.length < 3 || !/[\d:/._-]/.test(q) || /\s/.test(q)) return [];
  const volume = column(guestDisks, 'a', 'volume');
  const phrase = textPhrase('volumes', q);
  const candidates =
    phrase === undefined ? '' : ` AND g.rowid IN (SELECT rowid FROM guest_text WHERE guest_text MATCH @phrase)`;
  const rows = statement(
    store,
    `search-volume:${phrase !== undefined}`,
    () =>
      `SELECT ${GUEST}, ${column(guestDisks, 'a', 'key')} AS what, ${volume} AS matched FROM "guest_disks" a ${joinGuest('a')}
      WHERE instr(lower(${volume}), @q) > 0${candidates}`,
  ).all({ q: q.toLowerCase(), ...(phrase !== undefined ? { phrase } : {}) }) as Row[];
  const lower = q.toLowerCase();
  return hits(rows, 'volume', (r) => {
    const name = r.matched.toLowerCase();
    return name === lower || name.slice(name.indexOf(':') + 1) === lower;
  });
}

/** Every match of `q` in the guests' parsed config (live guests only), in no particular order. */
export function configMatches(store: Store, q: string): ConfigHit[] {
  // A MAC or an address is no bridge and no part of a volume's name: its index lookup is all.
  if (macOf(q) || addressOf(q)) return [...byMac(store, q), ...byAddress(store, q)];
  // Nor is a bridge's name or `vlan N` part of a volume's.
  const network = byNetwork(store, q);
  return network.length ? network : byVolume(store, q);
}
