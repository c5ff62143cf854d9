/**
 * A guest's Proxmox snapshots as get_guest shows them: the list as last read (after a snapshot
 * action, and in the sweep) with when it was read. Never read: the config says whether it has any
 * (`parent`), and the answer says the list is not read yet rather than "none".
 */
import { and, asc, eq } from 'drizzle-orm';
import type { Store } from '../../store/db.js';
import { prepared } from '../../store/prepared.js';
import { P } from '../../store/queries/shared.js';
import { guests, guestSnapshots } from '../../store/schema.js';
import { shortTime, untrusted } from '../render.js';

export interface GuestSnapshotList {
  /** When the list was read (ISO), or null when it never was. */
  readAt: string | null;
  /** Only when `readAt` is null: whether the config names a parent snapshot (so it has some), or null. */
  configSaysSome?: boolean;
  list: Array<{
    name: string;
    parent: string | null;
    description: string | null;
    takenAt: string | null;
    vmstate: boolean;
  }>;
}

export function guestSnapshotList(store: Store, cluster: string, vmid: number): GuestSnapshotList {
  // Prepared once per store: building the two drizzle queries cost more than get_guest's own read.
  const list = prepared(store, 'guest-snapshots', () =>
    store.db
      .select()
      .from(guestSnapshots)
      .where(and(eq(guestSnapshots.cluster, P('cluster')), eq(guestSnapshots.vmid, P('vmid'))))
      .orderBy(asc(guestSnapshots.snaptime), asc(guestSnapshots.name))
      .prepare(),
  );
  const rows = list.all({ cluster, vmid });
  if (!rows.length) {
    const parentOf = prepared(store, 'guest-snapshot-parent', () =>
      store.db
        .select({ parent: guests.snapshotParent })
        .from(guests)
        .where(and(eq(guests.cluster, P('cluster')), eq(guests.vmid, P('vmid'))))
        .prepare(),
    );
    const parent = parentOf.get({ cluster, vmid })?.parent;
    return { readAt: null, configSaysSome: Boolean(parent), list: [] };
  }
  return {
    readAt: new Date(Math.max(...rows.map((r) => r.readAt))).toISOString(),
    list: rows.map((r) => ({
      name: r.name,
      parent: r.parent,
      description: r.description,
      takenAt: r.snaptime === null ? null : new Date(r.snaptime * 1000).toISOString(),
      vmstate: r.vmstate,
    })),
  };
}

/** One line: the names (as data) with when each was taken, and when the list was read. */
export function snapshotLine(s: GuestSnapshotList): string {
  if (s.readAt === null)
    return s.configSaysSome
      ? 'snapshots: not read yet (its config says it has some; the list is read at its next snapshot change or action)'
      : 'snapshots: none known (its config names no parent snapshot)';
  const names = s.list
    .slice(0, 10)
    .map((x) => `${untrusted(x.name, 40)}${x.takenAt ? ` ${shortTime(x.takenAt)}` : ''}${x.vmstate ? ' +ram' : ''}`);
  const more = s.list.length > 10 ? `, +${s.list.length - 10} more` : '';
  return `snapshots (read ${shortTime(s.readAt)}): ${names.join(', ')}${more}`;
}
