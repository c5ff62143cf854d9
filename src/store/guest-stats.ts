/**
 * The guest_stats read model: live guests counted and summed per node, type and status. The sync
 * computes it from the rows a cycle leaves behind (a pass over objects it already holds, where
 * the same GROUP BY in SQL would add a scan of every guest to each cycle) and writes it in that
 * cycle's transaction.
 *
 * A stale guest (its values not confirmed by the cycle's read: node offline, missing from the
 * read) is counted under `stale:<last known status>` (`stale:running`), apart from the current
 * `running`: its status now is unknown, as Proxmox says, and the queries count it so
 * (store/queries/aggregates.ts) without scanning the guests. A failed read marks every guest of
 * the cluster stale without rewriting these rows; the cluster row says so (`clusters.stale`), and
 * readers count every row of a stale cluster as stale.
 */
import { eq } from 'drizzle-orm';
import type { Store } from './db.js';
import { guestStats } from './schema.js';

export type GuestStatsRow = typeof guestStats.$inferInsert;

/** The fields of a guest row the summary reads. */
export interface CountedGuest {
  vmid: number;
  node: string;
  type: 'qemu' | 'lxc';
  status: string;
  /** Not confirmed by the read: counted under `stale:<status>`. */
  stale?: boolean | null;
  template?: boolean | null;
  maxcpu?: number | null;
  maxmem?: number | null;
  deletedAt?: number | null;
}

/** The status key of a stale guest's group: this prefix and its last known status. */
export const STALE_STATUS_PREFIX = 'stale:';

/** One cluster's rows; tombstoned guests are left out, templates count but allocate nothing. */
export function summarizeGuests(
  cluster: string,
  guests: Iterable<CountedGuest>,
  usedMemory: (vmid: number) => number | null | undefined,
): GuestStatsRow[] {
  const groups = new Map<string, GuestStatsRow>();
  for (const g of guests) {
    if (g.deletedAt != null) continue;
    const status = g.stale ? `${STALE_STATUS_PREFIX}${g.status}` : g.status;
    const key = `${g.node}\u0000${g.type}\u0000${status}`;
    let row = groups.get(key);
    if (!row) {
      row = {
        cluster,
        node: g.node,
        type: g.type,
        status,
        guests: 0,
        templates: 0,
        allocatedVcpus: 0,
        allocatedMemoryBytes: 0,
        usedMemoryBytes: 0,
      };
      groups.set(key, row);
    }
    row.guests++;
    if (g.template) row.templates++;
    else {
      row.allocatedVcpus += g.maxcpu ?? 0;
      row.allocatedMemoryBytes += g.maxmem ?? 0;
    }
    row.usedMemoryBytes += usedMemory(g.vmid) ?? 0;
  }
  return [...groups.values()];
}

/** Replaces a cluster's rows; call inside the cycle's write transaction. */
export function replaceGuestStats(store: Store, cluster: string, rows: GuestStatsRow[]): void {
  store.db.delete(guestStats).where(eq(guestStats.cluster, cluster)).run();
  if (rows.length) store.db.insert(guestStats).values(rows).run();
}
