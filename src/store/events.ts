/**
 * Events: the outbox webhooks deliver from, and the change history MCP tools answer from. They
 * are written in the same transaction as the change they describe.
 */
import { randomUUID } from 'node:crypto';
import { prepareUpsert } from './rows.js';
import type { Store } from './db.js';
import { events } from './schema.js';

export type EventType =
  | 'guest.created'
  | 'guest.deleted'
  | 'guest.status_changed'
  | 'guest.migrated'
  | 'guest.updated'
  | 'node.status_changed'
  | 'cluster.quorum_changed'
  | 'cluster.sync_failed'
  | 'cluster.sync_recovered'
  | 'snapshot.created';

export interface NewEvent {
  type: EventType;
  cluster: string | null;
  subject: { kind: 'guest' | 'node' | 'cluster' | 'snapshot'; id: string };
  data: Record<string, unknown>;
}

/** The envelope as webhooks and MCP tools see it. */
export interface InventoryEvent extends NewEvent {
  id: string;
  seq: number;
  occurred_at: string;
}

/** `evt_` + 32 hex: no `.` (Standard Webhooks signs `id.timestamp.body`). */
export const newEventId = (): string => `evt_${randomUUID().replace(/-/g, '')}`;

/** Inserts events; call inside `store.write`. */
export function insertEvents(store: Store, list: NewEvent[], occurredAt: number): void {
  if (list.length === 0) return;
  const insert = prepareUpsert(store.sqlite, events, ['id']);
  for (const e of list) {
    insert.run({ id: newEventId(), type: e.type, occurredAt, cluster: e.cluster, subjectKind: e.subject.kind, subjectId: e.subject.id, data: JSON.stringify(e.data) });
  }
}
