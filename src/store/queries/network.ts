/**
 * Guests by a MAC or an IP address of their config, exactly or by the leading part, through the
 * indexes on guest_nics(mac) and guest_addresses(address): a prefix is a range of the index, so a
 * lookup reads the matching entries only (about 1 ms at 10,000 guests where a scan of every
 * guest's NIC JSON took 22).
 */
import type { Store } from '../db.js';
import { guestAddresses, guestNics, guests } from '../schema.js';
import { column, statement } from './facts.js';
import { clampLimit, oneRead, QUERY_LIMITS, QueryError, type LimitInfo } from './shared.js';

export interface NetworkMatch {
  cluster: string;
  vmid: number;
  name: string | null;
  node: string;
  type: 'qemu' | 'lxc';
  /** The status now: `unknown` while stale. */
  status: string;
  nic: string;
  mac: string | null;
  /** Address lookups: the address, its prefix length and family, as the config gives them. */
  address?: string;
  prefixLength?: number | null;
  family?: 4 | 6;
}

export interface NetworkAnswer extends LimitInfo {
  items: NetworkMatch[];
  /** Matches in all (items holds at most `limit`). */
  total: number;
}

export interface LookupOptions {
  /** Match the leading part (`BC:24:11`, `10.20.`) instead of the whole value. */
  prefix?: boolean;
  limit?: number;
}

/** `bc-24-11-aa-bb-cc`, `bc2411aabbcc`, `BC:24:11:AA:BB:CC` → upper case with colons, as the store keeps MACs. */
export function normalizeMac(text: string, prefix: boolean): string {
  const t = text.trim().toUpperCase().replace(/-/g, ':');
  const mac = /^[0-9A-F]{12}$/.test(t) ? t.match(/../g)!.join(':') : t;
  const valid = prefix ? /^[0-9A-F]{1,2}(:[0-9A-F]{2})*(:[0-9A-F]{0,2})?$/ : /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/;
  if (!valid.test(mac))
    throw new QueryError(
      prefix
        ? `"${text}" is not the start of a MAC address; give its leading bytes, e.g. BC:24:11`
        : `"${text}" is not a MAC address; give six bytes such as BC:24:11:AA:BB:CC, or search by prefix`,
    );
  return mac;
}

/** An IPv4/IPv6 address (or its start) in the store's form: lower case, a `/length` apart. */
export function normalizeAddress(text: string, prefix: boolean): { address: string; prefixLength?: number } {
  const t = text.trim().toLowerCase();
  const slash = t.indexOf('/');
  const address = slash < 0 ? t : t.slice(0, slash);
  const length = slash < 0 ? undefined : t.slice(slash + 1);
  const v4 = prefix ? /^\d{1,3}(\.\d{0,3}){0,3}$/ : /^\d{1,3}(\.\d{1,3}){3}$/;
  const v6 = /^[0-9a-f:.]*:[0-9a-f:.]*$/;
  if (
    !address ||
    !(v4.test(address) || v6.test(address)) ||
    (length !== undefined && (prefix || !/^\d{1,3}$/.test(length)))
  )
    throw new QueryError(
      prefix
        ? `"${text}" is not the start of an IP address; give its leading part, e.g. 10.20. or 2001:db8:`
        : `"${text}" is not an IP address; give one such as 10.20.0.5, 10.20.0.5/24 or 2001:db8::5, or search by prefix`,
    );
  return length === undefined ? { address } : { address, prefixLength: Number(length) };
}

/** The first value past every text starting with `prefix` (in the index's binary order). */
const pastPrefix = (prefix: string): string =>
  prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

const gcol = (key: keyof typeof guests._.columns & string): string => column(guests, 'g', key);
const GUEST_COLUMNS = `${gcol('cluster')} AS cluster, ${gcol('vmid')} AS vmid, ${gcol('name')} AS name, ${gcol('node')} AS node,
  ${gcol('type')} AS type, CASE WHEN ${gcol('stale')} = 1 THEN 'unknown' ELSE ${gcol('status')} END AS status`;

function lookup(
  store: Store,
  kind: 'mac' | 'address',
  value: string,
  options: LookupOptions & { prefixLength?: number },
): NetworkAnswer {
  const limitInfo = clampLimit(options.limit, QUERY_LIMITS.search.max, QUERY_LIMITS.search.max);
  const prefix = options.prefix ?? false;
  const withLength = options.prefixLength !== undefined;
  const table = kind === 'mac' ? 'guest_nics' : 'guest_addresses';
  const keyed = kind === 'mac' ? column(guestNics, 'a', 'mac') : column(guestAddresses, 'a', 'address');
  const match = prefix
    ? `${keyed} >= @from AND ${keyed} < @to`
    : `${keyed} = @value${withLength ? ` AND ${column(guestAddresses, 'a', 'prefixLength')} = @length` : ''}`;
  const params = prefix
    ? { from: value, to: pastPrefix(value) }
    : { value, ...(withLength ? { length: options.prefixLength } : {}) };
  const picked =
    kind === 'mac'
      ? `${column(guestNics, 'a', 'key')} AS nic, ${column(guestNics, 'a', 'mac')} AS mac`
      : `${column(guestAddresses, 'a', 'nic')} AS nic, ${column(guestAddresses, 'a', 'mac')} AS mac, ${column(guestAddresses, 'a', 'address')} AS address,
        ${column(guestAddresses, 'a', 'prefixLength')} AS prefixLength, ${column(guestAddresses, 'a', 'family')} AS family`;
  const join = `JOIN "guests" g ON ${gcol('cluster')} = a."cluster" AND ${gcol('vmid')} = a."vmid"`;
  return oneRead(store, () => {
    const total = statement(
      store,
      `net-count:${kind}:${prefix}:${withLength}`,
      () => `SELECT count(*) FROM "${table}" a WHERE ${match}`,
    )
      .pluck()
      .get(params) as number;
    const items =
      total === 0
        ? []
        : (statement(
            store,
            `net:${kind}:${prefix}:${withLength}`,
            () =>
              `SELECT ${GUEST_COLUMNS}, ${picked} FROM "${table}" a ${join} WHERE ${match}
              ORDER BY ${keyed}, a."cluster", a."vmid", nic LIMIT @limit`,
          ).all({ ...params, limit: limitInfo.limit }) as NetworkMatch[]);
    return { items, total, ...limitInfo };
  });
}

/** Guests with a NIC of this MAC (any separator or case), or whose MAC starts so with `prefix`. */
export function findByMac(store: Store, mac: string, options: LookupOptions = {}): NetworkAnswer {
  return lookup(store, 'mac', normalizeMac(mac, options.prefix ?? false), options);
}

/**
 * Guests whose config gives a NIC this address (with `/length`, that prefix length too), or an
 * address starting so with `prefix` (`10.20.` for 10.20.x.x; `10.2` also matches 10.20–29).
 */
export function findByAddress(store: Store, address: string, options: LookupOptions = {}): NetworkAnswer {
  const { address: value, prefixLength } = normalizeAddress(address, options.prefix ?? false);
  return lookup(store, 'address', value, { ...options, ...(prefixLength !== undefined ? { prefixLength } : {}) });
}
