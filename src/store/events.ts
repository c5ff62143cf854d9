/**
 * Events: the outbox webhooks deliver from, and the change history MCP tools answer from. They
 * are written in the same transaction as the change they describe.
 */
import { randomUUID } from 'node:crypto';
import { prepared } from './prepared.js';
import { prepareUpsert } from './rows.js';
import type { Store } from './db.js';
import { events } from './schema.js';

export const EVENT_TYPES = [
  'guest.created',
  'guest.deleted',
  'guest.status_changed',
  'guest.migrated',
  'guest.updated',
  'node.status_changed',
  'cluster.quorum_changed',
  'cluster.sync_failed',
  'cluster.sync_recovered',
  'cluster.identity_changed',
  'cluster.reset',
  'cluster.imported',
  'snapshot.created',
  'action.queued',
  'action.started',
  'action.succeeded',
  'action.failed',
  'action.expired',
  'action.cancelled',
  'webhook.disabled',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface NewEvent {
  type: EventType;
  cluster: string | null;
  subject: { kind: 'guest' | 'node' | 'cluster' | 'snapshot' | 'action' | 'webhook'; id: string };
  data: Record<string, unknown>;
}

/**
 * The envelope (DESIGN.md "Events") as webhooks and MCP tools see it, plus `seq`, the position in
 * the history that "events since" pages by.
 */
export interface InventoryEvent {
  seq: number;
  id: string;
  type: string;
  occurred_at: string;
  cluster: string | null;
  subject: { kind: string; id: string };
  data: Record<string, unknown>;
}

export function toInventoryEvent(row: typeof events.$inferSelect): InventoryEvent {
  let data: unknown;
  try {
    data = JSON.parse(row.data);
  } catch {
    data = { value: row.data };
  }
  return {
    seq: row.seq,
    id: row.id,
    type: row.type,
    occurred_at: new Date(row.occurredAt).toISOString(),
    cluster: row.cluster,
    subject: { kind: row.subjectKind, id: row.subjectId },
    data: typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : { value: data },
  };
}

/** `evt_` + 32 hex: no `.` (Standard Webhooks signs `id.timestamp.body`). */
export const newEventId = (): string => `evt_${randomUUID().replace(/-/g, '')}`;

/** Inserts events; call inside `store.write`. */
export function insertEvents(store: Store, list: NewEvent[], occurredAt: number): void {
  if (list.length === 0) return;
  const insert = prepared(store, 'events.insert', () => prepareUpsert(store.sqlite, events, ['id']));
  for (const e of list) {
    insert.run({
      id: newEventId(),
      type: e.type,
      occurredAt,
      cluster: e.cluster,
      subjectKind: e.subject.kind,
      subjectId: e.subject.id,
      data: JSON.stringify(e.data),
    });
  }
}
