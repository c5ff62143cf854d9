/**
 * Inventory snapshots: the whole inventory at a moment, compressed, to answer "what changed since
 * yesterday" by diffing two of them (or one and now) even after the event history was pruned.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { desc, eq, isNull, lt, notInArray } from 'drizzle-orm';
import { StoreError, type Store } from './db.js';
import { insertEvents } from './events.js';
import { clusters, guests, inventorySnapshots, nodes } from './schema.js';

export interface SnapshotGuest {
  cluster: string;
  vmid: number;
  type: string;
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
  cores: number | null;
  memoryMib: number | null;
  digest: string | null;
  stale: boolean;
  /** Which guest holds the vmid (absent in snapshots taken before it was recorded: 1). */
  incarnation?: number;
}

export interface SnapshotNode {
  cluster: string;
  node: string;
  status: string;
  maxcpu: number | null;
  maxmem: number | null;
}

export interface SnapshotBody {
  takenAt: number;
  clusters: Array<{ name: string; lastSuccessAt: number | null; stale: boolean }>;
  guests: SnapshotGuest[];
  nodes: SnapshotNode[];
}

export interface SnapshotInfo {
  id: number;
  takenAt: number;
  label: string | null;
  guests: number;
  nodes: number;
}

/** The inventory as it stands: what a snapshot would hold if taken now. */
export function currentInventory(store: Store, at = Date.now()): SnapshotBody {
  const { db } = store;
  const guestRows = db
    .select({
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
      cores: guests.cores,
      memoryMib: guests.memoryMib,
      digest: guests.digest,
      stale: guests.stale,
      incarnation: guests.incarnation,
    })
    .from(guests)
    .where(isNull(guests.deletedAt))
    .orderBy(guests.cluster, guests.vmid)
    .all();
  return {
    takenAt: at,
    clusters: db
      .select({ name: clusters.name, lastSuccessAt: clusters.lastSuccessAt, stale: clusters.stale })
      .from(clusters)
      .orderBy(clusters.name)
      .all(),
    guests: guestRows.map((g) => ({ ...g, tags: JSON.parse(g.tags) as string[] })),
    nodes: db
      .select({
        cluster: nodes.cluster,
        node: nodes.node,
        status: nodes.status,
        maxcpu: nodes.maxcpu,
        maxmem: nodes.maxmem,
      })
      .from(nodes)
      .orderBy(nodes.cluster, nodes.node)
      .all(),
  };
}

/** Longest label, in characters: a label names a snapshot in one table cell, it is not a note. */
export const LABEL_MAX = 200;

/**
 * Characters a label may not hold: controls (a newline would break the line it is shown on), line
 * and paragraph separators, and bidirectional controls (they make text read differently than it is).
 */
const LABEL_FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** Refuses a label no table could show on one line, with what to change. */
export function checkSnapshotLabel(label: string): void {
  const length = [...label].length;
  if (length > LABEL_MAX)
    throw new StoreError(`The snapshot label has ${length} characters; give one of at most ${LABEL_MAX}.`);
  const bad = LABEL_FORBIDDEN.exec(label);
  if (bad) {
    const code = `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new StoreError(
      `The snapshot label holds a control character (${code} at character ${[...label.slice(0, bad.index)].length + 1}); give one line of plain text.`,
    );
  }
}

export function takeSnapshot(
  store: Store,
  { label, at = Date.now() }: { label?: string; at?: number } = {},
): SnapshotInfo {
  if (label !== undefined) checkSnapshotLabel(label);
  return store.write(() => {
    const body = currentInventory(store, at);
    const row = store.db
      .insert(inventorySnapshots)
      .values({
        takenAt: at,
        label: label ?? null,
        guestCount: body.guests.length,
        nodeCount: body.nodes.length,
        body: gzipSync(JSON.stringify(body)),
      })
      .returning({ id: inventorySnapshots.id })
      .get();
    const info = {
      id: row.id,
      takenAt: at,
      label: label ?? null,
      guests: body.guests.length,
      nodes: body.nodes.length,
    };
    insertEvents(
      store,
      [
        {
          type: 'snapshot.created',
          cluster: null,
          subject: { kind: 'snapshot', id: String(row.id) },
          data: { ...info, takenAt: new Date(at).toISOString() },
        },
      ],
      at,
    );
    return info;
  });
}

export function listSnapshots(store: Store): SnapshotInfo[] {
  return store.db
    .select({
      id: inventorySnapshots.id,
      takenAt: inventorySnapshots.takenAt,
      label: inventorySnapshots.label,
      guests: inventorySnapshots.guestCount,
      nodes: inventorySnapshots.nodeCount,
    })
    .from(inventorySnapshots)
    .orderBy(desc(inventorySnapshots.id))
    .all();
}

export function readSnapshot(store: Store, id: number): SnapshotBody | undefined {
  const row = store.db
    .select({ body: inventorySnapshots.body })
    .from(inventorySnapshots)
    .where(eq(inventorySnapshots.id, id))
    .get();
  return row ? (JSON.parse(gunzipSync(row.body).toString('utf8')) as SnapshotBody) : undefined;
}

/** Keeps at most `keep` snapshots (0: no count limit) and none older than `maxAgeMs` (0: no age limit). */
export function pruneSnapshots(
  store: Store,
  { keep, maxAgeMs, now = Date.now() }: { keep: number; maxAgeMs: number; now?: number },
): number {
  return store.write(() => {
    let removed = 0;
    if (keep > 0) {
      const kept = store.db
        .select({ id: inventorySnapshots.id })
        .from(inventorySnapshots)
        .orderBy(desc(inventorySnapshots.id))
        .limit(keep)
        .all()
        .map((r) => r.id);
      removed += store.db
        .delete(inventorySnapshots)
        .where(kept.length ? notInArray(inventorySnapshots.id, kept) : undefined)
        .run().changes;
    }
    if (maxAgeMs > 0)
      removed += store.db
        .delete(inventorySnapshots)
        .where(lt(inventorySnapshots.takenAt, now - maxAgeMs))
        .run().changes;
    return removed;
  });
}

/** Takes a snapshot, then applies the retention policy (a scheduled snapshot or `snapshot` from the CLI). */
export function takeSnapshotWithRetention(
  store: Store,
  label: string | undefined,
  retention: { keep: number; maxAgeDays: number },
): { info: SnapshotInfo; pruned: number } {
  const info = takeSnapshot(store, { label });
  const pruned = pruneSnapshots(store, { keep: retention.keep, maxAgeMs: retention.maxAgeDays * 86_400_000 });
  store.sqlite.pragma('optimize'); // hourly by default: keeps the planner's statistics current
  return { info, pruned };
}

const COMPARED: Array<keyof SnapshotGuest> = [
  'type',
  'node',
  'name',
  'status',
  'template',
  'tags',
  'lock',
  'pool',
  'hastate',
  'maxcpu',
  'maxmem',
  'maxdisk',
  'cores',
  'memoryMib',
  'digest',
];

export interface SnapshotDiff {
  from: number;
  to: number;
  added: SnapshotGuest[];
  removed: SnapshotGuest[];
  changed: Array<{
    cluster: string;
    vmid: number;
    name: string | null;
    changes: Record<string, { from: unknown; to: unknown }>;
  }>;
  nodes: {
    added: SnapshotNode[];
    removed: SnapshotNode[];
    changed: Array<{ cluster: string; node: string; changes: Record<string, { from: unknown; to: unknown }> }>;
  };
}

const same = (a: unknown, b: unknown): boolean =>
  Array.isArray(a) && Array.isArray(b) ? a.join('\u0000') === b.join('\u0000') : a === b;

export function diffSnapshots(a: SnapshotBody, b: SnapshotBody): SnapshotDiff {
  // A vmid held by another guest than before is one guest removed and another added, not a change.
  const key = (g: SnapshotGuest): string => `${g.cluster}/${g.vmid}/${g.incarnation ?? 1}`;
  const before = new Map(a.guests.map((g) => [key(g), g]));
  const after = new Map(b.guests.map((g) => [key(g), g]));
  const diff: SnapshotDiff = {
    from: a.takenAt,
    to: b.takenAt,
    added: [],
    removed: [],
    changed: [],
    nodes: { added: [], removed: [], changed: [] },
  };
  for (const [k, g] of after) {
    const old = before.get(k);
    if (!old) {
      diff.added.push(g);
      continue;
    }
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    for (const field of COMPARED) if (!same(old[field], g[field])) changes[field] = { from: old[field], to: g[field] };
    if (Object.keys(changes).length) diff.changed.push({ cluster: g.cluster, vmid: g.vmid, name: g.name, changes });
  }
  for (const [k, g] of before) if (!after.has(k)) diff.removed.push(g);

  const nodeKey = (n: SnapshotNode): string => `${n.cluster}/${n.node}`;
  const nodesBefore = new Map(a.nodes.map((n) => [nodeKey(n), n]));
  const nodesAfter = new Map(b.nodes.map((n) => [nodeKey(n), n]));
  for (const [k, n] of nodesAfter) {
    const old = nodesBefore.get(k);
    if (!old) diff.nodes.added.push(n);
    else {
      const changes: Record<string, { from: unknown; to: unknown }> = {};
      for (const field of ['status', 'maxcpu', 'maxmem'] as const)
        if (old[field] !== n[field]) changes[field] = { from: old[field], to: n[field] };
      if (Object.keys(changes).length) diff.nodes.changed.push({ cluster: n.cluster, node: n.node, changes });
    }
  }
  for (const [k, n] of nodesBefore) if (!nodesAfter.has(k)) diff.nodes.removed.push(n);
  return diff;
}
