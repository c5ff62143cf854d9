/**
 * Webhook signing secrets in the Standard Webhooks form: `whsec_` + base64 of random bytes. The
 * HMAC key is the decoded bytes, not the text (an implementation that HMACs the literal `whsec_…`
 * string cannot be verified by any Standard Webhooks receiver).
 */
import { randomBytes } from 'node:crypto';
import type { Secret } from '../secret.js';

const PREFIX = 'whsec_';
/** The spec asks for at least 24 bytes; 64 bounds what a pasted value may be. */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
const GENERATED_BYTES = 32;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Refused secret text; the message says what is wrong with it and never contains it. */
export class WebhookSecretError extends Error {
  override readonly name = 'WebhookSecretError';
}

/** A fresh secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return PREFIX + randomBytes(GENERATED_BYTES).toString('base64');
}

/** The HMAC key a secret stands for; throws WebhookSecretError for anything not `whsec_` + base64 of 24–64 bytes. */
export function webhookSecretKey(secret: string | Secret): Buffer {
  const text = typeof secret === 'string' ? secret : secret.reveal();
  if (!text.startsWith(PREFIX)) throw invalid('does not start with whsec_');
  const encoded = text.slice(PREFIX.length);
  if (!isCanonicalBase64(encoded)) throw invalid('is not base64 after whsec_');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < SECRET_MIN_BYTES || key.length > SECRET_MAX_BYTES) throw invalid(`decodes to ${key.length} bytes`);
  return key;
}

/** Checks a secret given by an operator; returns it unchanged. */
export function parseWebhookSecret(secret: string): string {
  webhookSecretKey(secret);
  return secret;
}

// Buffer.from(…, 'base64') skips characters it does not know, so a typo would silently give a
// different key than the receiver derives; only text that encodes back to itself is accepted.
function isCanonicalBase64(encoded: string): boolean {
  return (
    encoded.length % 4 === 0 && BASE64_RE.test(encoded) && Buffer.from(encoded, 'base64').toString('base64') === encoded
  );
}

function invalid(reason: string): WebhookSecretError {
  return new WebhookSecretError(
    `The webhook secret ${reason}; give whsec_ followed by base64 of ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} random bytes, or leave it out to have one generated.`,
  );
}

/**
 * The secrets a subscription signs with at `now`: its own, and during a rotation's grace window
 * the previous one too, so a receiver still holding the old secret keeps verifying.
 */
export function signingSecrets(
  s: { secret: string; previousSecret: string | null; previousSecretUntil: number | null },
  now: number,
): string[] {
  return s.previousSecret !== null && (s.previousSecretUntil ?? 0) > now ? [s.secret, s.previousSecret] : [s.secret];
}
