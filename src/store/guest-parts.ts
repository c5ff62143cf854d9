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
import { guestAddresses, guestDisks, guestFacetCounts, guestFacets, guestNics } from './schema.js';

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

type SqlValue = string | number | null;
const toSql = (v: unknown): SqlValue =>
  v === undefined || v === null ? null : typeof v === 'boolean' ? Number(v) : (v as SqlValue);

/** The fields of a guest row the listed facets and the part rows come from (JSON text). */
const LISTED_INPUTS = ['tags', 'disks', 'nics'] as const;
/** The fields of a guest row every facet row carries, and the scalar facets' values. */
const SCALAR_INPUTS = [
  'node',
  'type',
  'status',
  'stale',
  'template',
  'pool',
  'ostype',
  'onboot',
  'protection',
  'agent',
  'snapshotParent',
] as const;

const differ = (a: GuestPartSource, b: GuestPartSource, keys: ReadonlyArray<keyof GuestPartSource>): boolean =>
  keys.some((k) => toSql(a[k]) !== toSql(b[k]));

/** Prepared multi-row inserts of one table, one statement per row count. */
function inserter<T extends Table>(sqlite: Database.Database, table: T): (rows: Array<T['$inferInsert']>) => void {
  const columns = Object.entries(getTableColumns(table));
  const names = columns.map(([, c]) => `"${c.name}"`).join(', ');
  const row = `(${columns.map(() => '?').join(', ')})`;
  const statements = new Map<number, Database.Statement>();
  return (rows) => {
    if (rows.length === 0) return;
    let statement = statements.get(rows.length);
    if (!statement) {
      statement = sqlite.prepare(
        `INSERT INTO "${getTableName(table)}" (${names}) VALUES ${Array(rows.length).fill(row).join(', ')}`,
      );
      statements.set(rows.length, statement);
    }
    statement.run(rows.flatMap((r) => columns.map(([key]) => toSql((r as Record<string, unknown>)[key]))));
  };
}

/** A facet row as it counts: its value and the status now of its guest (from the row's own columns). */
type CountedRow = Pick<GuestFacetRow, 'cluster' | 'facet' | 'value' | 'bytes' | 'status' | 'stale'>;

/** Live guests per facet value and status now, as changed by this transaction's writes so far: applied once, at the end. */
class CountChanges {
  private readonly changes = new Map<
    string,
    { cluster: string; facet: Facet; value: string; status: string; guests: number; bytes: number }
  >();
  add(rows: CountedRow[], sign: 1 | -1): void {
    for (const r of rows) {
      const value = r.value ?? '';
      const status = statusNow(r);
      const key = `${r.cluster}\u0000${r.facet}\u0000${value}\u0000${status}`;
      const c = this.changes.get(key) ?? { cluster: r.cluster, facet: r.facet, value, status, guests: 0, bytes: 0 };
      c.guests += sign;
      c.bytes += sign * (r.bytes ?? 0);
      this.changes.set(key, c);
    }
  }
  apply(sqlite: Database.Database): void {
    const upsert = sqlite.prepare(
      `INSERT INTO guest_facet_counts (cluster, facet, value, status, guests, bytes) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (cluster, facet, value, status) DO UPDATE SET guests = guests + excluded.guests, bytes = bytes + excluded.bytes`,
    );
    const emptied = sqlite.prepare(
      'DELETE FROM guest_facet_counts WHERE cluster = ? AND facet = ? AND value = ? AND status = ? AND guests <= 0',
    );
    for (const c of this.changes.values()) {
      if (c.guests === 0 && c.bytes === 0) continue;
      upsert.run(c.cluster, c.facet, c.value, c.status, c.guests, c.bytes);
      if (c.guests < 0) emptied.run(c.cluster, c.facet, c.value, c.status);
    }
    this.changes.clear();
  }
}

export interface GuestPartsWriter {
  /** The guest row as stored now (before this write), or undefined for a guest not stored yet. */
  stored(cluster: string, vmid: number): GuestPartSource | undefined;
  /**
   * Brings the guest's part rows from those of `prev` (the row stored before, whose part rows the
   * store holds) to those of `next`: all rewritten when its tags, disks or NICs changed (or it was
   * tombstoned or revived), one UPDATE of its facet rows when only the columns they carry changed
   * (status, node, pool…), nothing when neither did (a sweep's re-read config, a new name, a lock).
   */
  write(prev: GuestPartSource | undefined, next: GuestPartSource): void;
  /** Applies the changed counts (guest_facet_counts); call once, after the last write of the transaction. */
  finish(): void;
}

const INSERT_CHUNK = 64;

/** The order of guest_facets_value: facet, value (none first), vmid, cluster. */
function byFacetIndex(a: GuestFacetRow, b: GuestFacetRow): number {
  if (a.facet !== b.facet) return a.facet < b.facet ? -1 : 1;
  const [av, bv] = [a.value ?? null, b.value ?? null];
  if (av !== bv) return av === null ? -1 : bv === null ? 1 : av < bv ? -1 : 1;
  if (a.vmid !== b.vmid) return a.vmid - b.vmid;
  return a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0;
}

/** The scalar facets' values of a guest, as its facet rows hold them. */
function scalarFacetValues(g: GuestPartSource): Array<[Facet, string | null]> {
  return [
    ['node', g.node],
    ['type', g.type],
    ['status', statusNow(g)],
    ['pool', g.pool ?? null],
    ['ostype', g.ostype ?? null],
    ['template', g.template ? '1' : '0'],
  ];
}

export function createGuestPartsWriter(sqlite: Database.Database): GuestPartsWriter {
  const select = sqlite.prepare(
    `SELECT cluster, vmid, tags, disks, nics, node, type, status, stale, template, pool, ostype, onboot, protection, agent,
      snapshot_parent AS snapshotParent, deleted_at AS deletedAt FROM guests WHERE cluster = ? AND vmid = ?`,
  );
  const storedFacets = sqlite.prepare(
    'SELECT cluster, facet, value, bytes, status, stale FROM guest_facets WHERE cluster = ? AND vmid = ?',
  );
  const drops = PART_TABLES.map((t) =>
    sqlite.prepare(`DELETE FROM "${getTableName(t)}" WHERE cluster = ? AND vmid = ?`),
  );
  const insertDisks = inserter(sqlite, guestDisks);
  const insertNics = inserter(sqlite, guestNics);
  const insertAddresses = inserter(sqlite, guestAddresses);
  const insertFacets = inserter(sqlite, guestFacets);
  const carried = SCALAR_INPUTS.filter((k) => k !== 'snapshotParent');
  // The columns every row carries; the value only of the facet whose value changed (the other rows' index entries stay).
  const updateColumns = sqlite.prepare(
    `UPDATE guest_facets SET ${carried.map((k) => `"${k}" = @${k}`).join(', ')}, snapshots = @snapshots
    WHERE cluster = @cluster AND vmid = @vmid`,
  );
  const updateValue = sqlite.prepare('UPDATE guest_facets SET value = ? WHERE cluster = ? AND vmid = ? AND facet = ?');
  const counts = new CountChanges();
  // Inserted at the end in the covering index's order: appending to each value's range costs a
  // third of inserting guest by guest all over the index (10,000 guests into an empty table: 2.4 s,
  // not 6, on the loaded test VM).
  const newFacets: GuestFacetRow[] = [];
  const live = (g: GuestPartSource | undefined): g is GuestPartSource => g !== undefined && g.deletedAt == null;

  function rewrite(prev: GuestPartSource | undefined, next: GuestPartSource): void {
    if (prev !== undefined) {
      counts.add(storedFacets.all(next.cluster, next.vmid) as CountedRow[], -1);
      for (const drop of drops) drop.run(next.cluster, next.vmid);
    }
    const parts = guestParts(next);
    counts.add(parts.facets, 1);
    insertDisks(parts.disks);
    insertNics(parts.nics);
    insertAddresses(parts.addresses);
    newFacets.push(...parts.facets);
  }

  function updateScalars(prev: GuestPartSource, next: GuestPartSource): void {
    const before = new Map(scalarFacetValues(prev));
    const changed = scalarFacetValues(next).filter(([facet, value]) => (before.get(facet) ?? null) !== value);
    // A new status now moves every facet row's count (running guests per tag…), not only the status facet's.
    const recount = changed.length > 0;
    if (recount) counts.add(storedFacets.all(next.cluster, next.vmid) as CountedRow[], -1);
    const params: Record<string, SqlValue> = { cluster: next.cluster, vmid: next.vmid };
    for (const k of carried) params[k] = toSql(next[k]);
    params.snapshots = Number(next.snapshotParent != null);
    updateColumns.run(params);
    for (const [facet, value] of changed) updateValue.run(value, next.cluster, next.vmid, facet);
    if (recount) counts.add(storedFacets.all(next.cluster, next.vmid) as CountedRow[], 1);
  }

  return {
    stored: (cluster, vmid) => select.get(cluster, vmid) as GuestPartSource | undefined,
    write(prev, next) {
      if (!live(next)) {
        if (live(prev)) rewrite(prev, next);
      } else if (!live(prev) || differ(prev, next, LISTED_INPUTS)) rewrite(prev, next);
      else if (differ(prev, next, SCALAR_INPUTS)) updateScalars(prev, next);
    },
    finish() {
      newFacets.sort(byFacetIndex);
      for (let i = 0; i < newFacets.length; i += INSERT_CHUNK) insertFacets(newFacets.slice(i, i + INSERT_CHUNK));
      newFacets.length = 0;
      counts.apply(sqlite);
    },
  };
}

/**
 * A failed read leaves a cluster's guests unconfirmed: their facet rows say so as the guest rows
 * do (status now `unknown`), and their counts move to status `unknown` (the status facet's to its
 * value `unknown`). Call inside the failure's write transaction.
 */
export function markFacetsStale(sqlite: Database.Database, cluster: string): void {
  const changed = sqlite
    .prepare(
      `UPDATE guest_facets SET stale = 1, value = CASE WHEN facet = 'status' THEN 'unknown' ELSE value END
       WHERE cluster = ? AND stale = 0`,
    )
    .run(cluster).changes;
  if (changed === 0) return;
  // Every live guest of the cluster is now stale: the counts fold into `unknown` (a few hundred rows, no facet row read).
  sqlite
    .prepare(
      `INSERT INTO guest_facet_counts (cluster, facet, value, status, guests, bytes)
      SELECT cluster, facet, CASE WHEN facet = 'status' THEN 'unknown' ELSE value END, 'unknown', sum(guests), sum(bytes)
      FROM guest_facet_counts WHERE cluster = ? AND status <> 'unknown' GROUP BY 2, 3
      ON CONFLICT (cluster, facet, value, status) DO UPDATE SET guests = guests + excluded.guests, bytes = bytes + excluded.bytes`,
    )
    .run(cluster);
  sqlite.prepare("DELETE FROM guest_facet_counts WHERE cluster = ? AND status <> 'unknown'").run(cluster);
}

/** Every part row of a cluster's guests (all of them tombstoned at once), and their counts. */
export function dropClusterParts(sqlite: Database.Database, cluster: string): void {
  for (const t of [...PART_TABLES, guestFacetCounts])
    sqlite.prepare(`DELETE FROM "${getTableName(t)}" WHERE cluster = ?`).run(cluster);
}
