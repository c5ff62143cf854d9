/**
 * The body a subscriber receives: the event envelope, versioned (`version: 1`; a breaking change
 * gets a new version and subscriptions choose theirs), with the event's position in the history
 * (`seq`) so a receiver can order and dedupe. Thin: at most 20 KB; a bigger `data` (a long config
 * diff) keeps its scalar fields and says `truncated: true`.
 */
import { toInventoryEvent } from '../store/events.js';
import type { EventRow } from '../store/webhooks.js';

export const ENVELOPE_VERSION = 1;
export const MAX_BODY_BYTES = 20 * 1024;

export interface EnvelopeV1 {
  version: 1;
  id: string;
  seq: number;
  type: string;
  occurred_at: string;
  cluster: string | null;
  subject: { kind: string; id: string };
  data: Record<string, unknown>;
}

/** The JSON text sent for an event: these exact bytes are signed, and sent on every attempt. */
export function envelopeBody(e: EventRow): string {
  const { seq, id, type, occurred_at, cluster, subject, data } = toInventoryEvent(e);
  const envelope: EnvelopeV1 = { version: ENVELOPE_VERSION, id, seq, type, occurred_at, cluster, subject, data };
  const body = JSON.stringify(envelope);
  if (Buffer.byteLength(body) <= MAX_BODY_BYTES) return body;
  const scalars = Object.fromEntries(
    Object.entries(envelope.data).filter(([, v]) => v === null || typeof v !== 'object'),
  );
  return JSON.stringify({ ...envelope, data: { ...scalars, truncated: true } });
}
