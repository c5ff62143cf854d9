/**
 * The guest_stats read model: live guests counted and summed per node, type and status. The sync
 * computes it from the rows a cycle leaves behind (a pass over objects it already holds, where
 * the same GROUP BY in SQL would add a scan of every guest to each cycle) and writes it in that
 * cycle's transaction.
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
  template?: boolean | null;
  maxcpu?: number | null;
  maxmem?: number | null;
  deletedAt?: number | null;
}

/** One cluster's rows; tombstoned guests are left out, templates count but allocate nothing. */
export function summarizeGuests(cluster: string, guests: Iterable<CountedGuest>, usedMemory: (vmid: number) => number | null | undefined): GuestStatsRow[] {
  const groups = new Map<string, GuestStatsRow>();
  for (const g of guests) {
    if (g.deletedAt != null) continue;
    const key = `${g.node}\u0000${g.type}\u0000${g.status}`;
    let row = groups.get(key);
    if (!row) {
      row = { cluster, node: g.node, type: g.type, status: g.status, guests: 0, templates: 0, allocatedVcpus: 0, allocatedMemoryBytes: 0, usedMemoryBytes: 0 };
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
