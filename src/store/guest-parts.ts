/**
 * The parts of a guest config the store keeps: as JSON on the guest row (guests.disks, guests.nics),
 * written by the sync's config parser, and as the rows of the read models derived from that JSON
 * and the row (guest_disks, guest_nics, guest_addresses, guest_facets), so there is one parse and
 * one source of truth. The sync writes the rows with the guest row; migration 0003 derives the
 * same rows in SQL for databases made before them (test/store/facts-backfill.test.ts holds the two
 * to the same answer).
 */
import type Database from 'better-sqlite3';
import { getTableColumns, getTableName, type Table } from 'drizzle-orm';
import { guestAddresses, guestDisks, guestFacets, guestNics } from './schema.js';

export interface GuestDisk {
  key: string;
  /** Storage id, or undefined for a passthrough/none entry. */
  storage?: string;
  volume: string;
  sizeBytes?: number;
  media?: string;
}

export interface GuestNic {
  key: string;
  model?: string;
  mac?: string;
  bridge?: string;
  vlan?: number;
  firewall: boolean;
  /** Addresses from the config (CIDR), not from the guest agent. */
  ip?: string;
  ip6?: string;
}

export type GuestDiskRow = typeof guestDisks.$inferInsert;
export type GuestNicRow = typeof guestNics.$inferInsert;
export type GuestAddressRow = typeof guestAddresses.$inferInsert;
export type GuestFacetRow = typeof guestFacets.$inferInsert;
export type Facet = GuestFacetRow['facet'];

/** The fields of a guest row its parts are derived from. */
export interface GuestPartSource {
  cluster: string;
  vmid: number;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  stale?: boolean | null;
  template?: boolean | null;
  pool?: string | null;
  ostype?: string | null;
  onboot?: boolean | null;
  protection?: boolean | null;
  agent?: boolean | null;
  snapshotParent?: string | null;
  lock?: string | null;
  maxcpu?: number | null;
  maxmem?: number | null;
  /** JSON text, as on the guest row. */
  tags?: string | null;
  disks?: string | null;
  nics?: string | null;
  deletedAt?: number | null;
}

export interface GuestParts {
  disks: GuestDiskRow[];
  nics: GuestNicRow[];
  addresses: GuestAddressRow[];
  facets: GuestFacetRow[];
}

/** The status a guest has now: `unknown` while its values are not confirmed (as Proxmox says of an offline node's guests). */
export const statusNow = (g: { status: string; stale?: boolean | null }): string => (g.stale ? 'unknown' : g.status);

function jsonList(text: string | null | undefined): unknown[] {
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value : [];
  } catch {
    return [];
  }
}

const objects = <T>(text: string | null | undefined): T[] =>
  jsonList(text).filter((v): v is T => typeof v === 'object' && v !== null);

/** `10.0.0.5/24` → address and prefix length; IPv6 in lower case. */
export function splitCidr(cidr: string): { address: string; prefixLength: number | null; family: 4 | 6 } {
  const slash = cidr.indexOf('/');
  const address = (slash < 0 ? cidr : cidr.slice(0, slash)).toLowerCase();
  const length = slash < 0 ? '' : cidr.slice(slash + 1);
  return {
    address,
    prefixLength: /^\d+$/.test(length) ? Number(length) : null,
    family: address.includes(':') ? 6 : 4,
  };
}

/** The distinct values, or one null when there is none: every guest has a row in each facet. */
const valuesOrNone = (values: Array<string | null | undefined>): Array<string | null> => {
  const set = [...new Set(values.filter((v): v is string => v != null && v !== ''))];
  return set.length ? set : [null];
};

/** A live guest's rows in the read models; a tombstoned guest has none. */
export function guestParts(g: GuestPartSource): GuestParts {
  if (g.deletedAt != null) return { disks: [], nics: [], addresses: [], facets: [] };
  const { cluster, vmid } = g;
  const diskList = objects<GuestDisk>(g.disks);
  const nicList = objects<GuestNic>(g.nics);
  const disks = diskList.map((d): GuestDiskRow => ({
    cluster,
    vmid,
    key: d.key,
    storage: d.storage ?? null,
    volume: d.volume ?? '',
    sizeBytes: d.sizeBytes ?? null,
    media: d.media ?? null,
  }));
  const nics = nicList.map((n): GuestNicRow => ({
    cluster,
    vmid,
    key: n.key,
    bridge: n.bridge ?? null,
    vlan: n.vlan ?? null,
    mac: n.mac ?? null,
    model: n.model ?? null,
    firewall: Boolean(n.firewall),
  }));
  const addresses = nicList.flatMap((n) =>
    [n.ip, n.ip6]
      .filter((ip): ip is string => typeof ip === 'string' && ip !== '')
      .map((ip): GuestAddressRow => ({ cluster, vmid, nic: n.key, ...splitCidr(ip), mac: n.mac ?? null })),
  );
  return { disks, nics, addresses, facets: facetRows(g, diskList, nicList) };
}

function facetRows(g: GuestPartSource, disks: GuestDisk[], nics: GuestNic[]): GuestFacetRow[] {
  const base = {
    cluster: g.cluster,
    vmid: g.vmid,
    node: g.node,
    type: g.type,
    status: g.status,
    stale: Boolean(g.stale),
    template: Boolean(g.template),
    pool: g.pool ?? null,
    ostype: g.ostype ?? null,
    onboot: g.onboot ?? null,
    protection: g.protection ?? null,
    agent: g.agent ?? null,
    snapshots: g.snapshotParent != null,
    lock: g.lock ?? null,
    maxcpu: g.maxcpu ?? null,
    maxmem: g.maxmem ?? null,
  };
  const row = (facet: Facet, value: string | null, bytes: number | null = null): GuestFacetRow => ({
    facet,
    value,
    ...base,
    bytes,
  });
  const tags = jsonList(g.tags).filter((t): t is string => typeof t === 'string');
  return [
    row('node', g.node),
    row('type', g.type),
    row('status', statusNow(g)),
    row('pool', g.pool ?? null),
    row('ostype', g.ostype ?? null),
    row('template', base.template ? '1' : '0'),
    ...valuesOrNone(tags.map((t) => t.toLowerCase())).map((t) => row('tag', t)),
    ...valuesOrNone(disks.map((d) => d.storage)).map((s) => row('storage', s, s === null ? null : bytesOn(disks, s))),
    ...valuesOrNone(nics.map((n) => n.bridge)).map((b) => row('bridge', b)),
    ...valuesOrNone(nics.map((n) => (n.vlan == null ? null : String(n.vlan)))).map((v) => row('vlan', v)),
  ];
}

/** A guest's disk bytes on a storage: sized volumes, CD-ROM images (shared ISOs) left out; null when none is sized. */
function bytesOn(disks: GuestDisk[], storage: string): number | null {
  const sized = disks.filter((d) => d.storage === storage && d.media !== 'cdrom' && typeof d.sizeBytes === 'number');
  return sized.length ? sized.reduce((sum, d) => sum + d.sizeBytes!, 0) : null;
}

const PART_TABLES = [guestDisks, guestNics, guestAddresses, guestFacets] as const;

function prepareInsert<T extends Table>(sqlite: Database.Database, table: T): (row: T['$inferInsert']) => void {
  const columns = Object.entries(getTableColumns(table));
  const statement = sqlite.prepare(
    `INSERT INTO "${getTableName(table)}" (${columns.map(([, c]) => `"${c.name}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
  );
  return (row) => {
    const record = row as Record<string, unknown>;
    statement.run(
      columns.map(([key]) => {
        const v = record[key];
        return v === undefined ? null : typeof v === 'boolean' ? Number(v) : v;
      }),
    );
  };
}

export interface GuestPartsWriter {
  /** Replaces a guest's rows with those of `g` (none when it is tombstoned); call inside a write transaction. */
  replace(g: GuestPartSource): void;
}

export function createGuestPartsWriter(sqlite: Database.Database): GuestPartsWriter {
  const drops = PART_TABLES.map((t) =>
    sqlite.prepare(`DELETE FROM "${getTableName(t)}" WHERE cluster = ? AND vmid = ?`),
  );
  const insertDisk = prepareInsert(sqlite, guestDisks);
  const insertNic = prepareInsert(sqlite, guestNics);
  const insertAddress = prepareInsert(sqlite, guestAddresses);
  const insertFacet = prepareInsert(sqlite, guestFacets);
  return {
    replace(g) {
      for (const drop of drops) drop.run(g.cluster, g.vmid);
      const parts = guestParts(g);
      for (const r of parts.disks) insertDisk(r);
      for (const r of parts.nics) insertNic(r);
      for (const r of parts.addresses) insertAddress(r);
      for (const r of parts.facets) insertFacet(r);
    },
  };
}

/**
 * A failed read leaves a cluster's guests unconfirmed: their facet rows say so as the guest rows
 * do (status now `unknown`). Call inside the failure's write transaction.
 */
export function markFacetsStale(sqlite: Database.Database, cluster: string): void {
  sqlite
    .prepare(
      `UPDATE guest_facets SET stale = 1, value = CASE WHEN facet = 'status' THEN 'unknown' ELSE value END
       WHERE cluster = ? AND stale = 0`,
    )
    .run(cluster);
}

/** Every part row of a cluster's guests (all of them tombstoned at once). */
export function dropClusterParts(sqlite: Database.Database, cluster: string): void {
  for (const t of PART_TABLES) sqlite.prepare(`DELETE FROM "${getTableName(t)}" WHERE cluster = ?`).run(cluster);
}
