/**
 * Standard Webhooks v1 signatures (HMAC-SHA256 over `id.timestamp.body` with the decoded secret).
 * The body must be the exact text sent: re-serialising JSON would change the bytes signed.
 */
import { createHmac } from 'node:crypto';
import type { Secret } from '../secret.js';
import { webhookSecretKey } from './secret.js';

export interface SignedMessage {
  /** The event id (`webhook-id`): the same on every attempt, so receivers can dedupe by it. */
  id: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  body: string;
  /** The current secret first; during a rotation the previous one too, so either verifies. */
  secrets: readonly (string | Secret)[];
}

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** `v1,<base64>` for one key. */
export function signV1(key: Buffer, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three Standard Webhooks headers, one signature per secret, space-separated. */
export function signatureHeaders(message: SignedMessage): WebhookHeaders {
  const { id, timestamp, body, secrets } = message;
  // The signed content is dot-separated: a dot in the id would let one (id, timestamp) pair pass as another.
  if (!id || id.includes('.')) throw new Error('webhook id must be non-empty and contain no dot');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new Error('webhook timestamp must be Unix seconds');
  if (secrets.length === 0) throw new Error('a webhook needs at least one secret to sign with');
  const signatures = secrets.map((secret) => signV1(webhookSecretKey(secret), id, timestamp, body));
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}
