/**
 * One delivery attempt: POST the signed body, read the answer, say what it means. Whether and
 * when to try again is the caller's (schedule.ts); nothing here logs, retries or follows a redirect.
 */
import { readFileSync } from 'node:fs';
import { errors, request, type Dispatcher } from 'undici';
import type { Secret } from '../secret.js';
import { signatureHeaders } from './sign.js';
import { WebhookTargetRefused } from './ssrf.js';

export type DeliveryKind = 'success' | 'retry' | 'gone' | 'too-large' | 'redirect' | 'refused' | 'timeout' | 'error';

export interface DeliveryOutcome {
  kind: DeliveryKind;
  status?: number;
  /** From Retry-After on a 429 or 503, bounded by `maxRetryAfterMs`. */
  retryAfterMs?: number;
  /** The receiver's answer, cut to 2 KB (kept for the operator, never shown to MCP clients). */
  responseText?: string;
  /** What went wrong, in a sentence; never a secret or the URL's path. */
  error?: string;
  durationMs: number;
}

export interface DeliveryRequest {
  url: string;
  /** The envelope's JSON text: these exact bytes are signed and sent. */
  body: string;
  /** The event id, sent as webhook-id on every attempt. */
  id: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  secrets: readonly (string | Secret)[];
  /** The SSRF-guarded dispatcher (createWebhookAgent). */
  agent: Dispatcher;
  /** Whole attempt, connect to last byte read; default 15 s. */
  timeoutMs?: number;
  /** Upper bound on a honoured Retry-After; default 1 h. */
  maxRetryAfterMs?: number;
  userAgent?: string;
  /** Time source for Retry-After dates. */
  now?: () => number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60 * 60_000;
export const RESPONSE_TEXT_BYTES = 2_048;

let cachedUserAgent: string | undefined;

/** `proxmox-inventory/<version>` from package.json (read once). */
export function defaultUserAgent(): string {
  cachedUserAgent ??= `proxmox-inventory/${
    (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  }`;
  return cachedUserAgent;
}

/** Sends one attempt; never throws for anything the receiver or the network does. */
export async function deliver(req: DeliveryRequest): Promise<DeliveryOutcome> {
  const started = Date.now();
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const scrub = secretScrubber(req.secrets);
  try {
    const answer = await post(req, deadline.signal);
    // A receiver that answers and then stalls its body has still answered: the status decides.
    const responseText = scrub(await readCut(answer.body).catch(() => ''));
    return { ...classify(answer.statusCode, answer.headers, req), responseText, durationMs: Date.now() - started };
  } catch (error) {
    const outcome = failure(error, deadline.signal.aborted, timeoutMs, hostOf(req.url));
    return { ...outcome, error: scrub(outcome.error ?? ''), durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

function post(req: DeliveryRequest, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  const headers = {
    'content-type': 'application/json',
    'user-agent': req.userAgent ?? defaultUserAgent(),
    ...signatureHeaders({ id: req.id, timestamp: req.timestamp, body: req.body, secrets: req.secrets }),
  };
  // undici's request() never follows redirects (that takes an interceptor), so a 3xx comes back as is.
  return request(req.url, { method: 'POST', headers, body: req.body, dispatcher: req.agent, signal });
}

type Classified = Pick<DeliveryOutcome, 'kind' | 'status' | 'retryAfterMs' | 'error'>;

function classify(status: number, headers: Dispatcher.ResponseData['headers'], req: DeliveryRequest): Classified {
  if (status >= 200 && status < 300) return { kind: 'success', status };
  if (status >= 300 && status < 400) {
    return {
      kind: 'redirect',
      status,
      error: `the receiver answered ${status} (a redirect, which webhooks never follow)`,
    };
  }
  if (status === 410) return { kind: 'gone', status, error: 'the receiver answered 410 Gone' };
  if (status === 413)
    return { kind: 'too-large', status, error: 'the receiver answered 413: the body is too large for it' };
  const retryAfterMs =
    status === 429 || status === 503
      ? retryAfter(headers['retry-after'], req.now ?? Date.now, req.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS)
      : undefined;
  return { kind: 'retry', status, retryAfterMs, error: `the receiver answered ${status}` };
}

/** Retry-After as seconds or an HTTP date, in [0, max]; undefined when absent or unreadable. */
export function retryAfter(value: string | string[] | undefined, now: () => number, maxMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  // Date.parse reads '-5' as a year; an HTTP date always names its weekday and month.
  const ms = /^\d+$/.test(text) ? Number(text) * 1_000 : /[a-z]/i.test(text) ? Date.parse(text) - now() : NaN;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), maxMs);
}

/** Reads at most 2 KB (and a little more, so a secret cut at the edge is still recognised) and drops the rest. */
async function readCut(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > RESPONSE_TEXT_BYTES * 2) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function failure(error: unknown, timedOut: boolean, timeoutMs: number, host: string): Classified {
  if (timedOut) return { kind: 'timeout', error: `${host} did not answer within ${formatSeconds(timeoutMs)}` };
  if (error instanceof WebhookTargetRefused) return { kind: 'refused', error: error.message };
  if (error instanceof errors.ConnectTimeoutError) {
    return { kind: 'timeout', error: `${host} did not accept a connection in time` };
  }
  return { kind: 'error', error: `${host}: ${networkReason(error)}` };
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the name could not be resolved now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'the connection closed before an answer',
};

function networkReason(error: unknown): string {
  const code = errorCode(error);
  if (code && REASONS[code]) return REASONS[code];
  if (code && /CERT|SSL|TLS|SELF_SIGNED|ALTNAME/.test(code)) return `TLS failed (${code})`;
  return code ? `request failed (${code})` : 'request failed';
}

function errorCode(error: unknown): string | undefined {
  for (let cause = error, depth = 0; cause && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the webhook URL';
  }
}

const formatSeconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

/**
 * Takes every secret (and its base64 part) out of a text, then cuts it to 2 KB: a receiver that
 * echoes what it was configured with must not put a secret into the delivery log.
 */
function secretScrubber(secrets: readonly (string | Secret)[]): (text: string) => string {
  const needles = secrets
    .map((secret) => (typeof secret === 'string' ? secret : secret.reveal()))
    .flatMap((secret) => [secret, secret.replace(/^whsec_/, '')])
    .filter((needle) => needle.length >= 8)
    .sort((a, b) => b.length - a.length);
  return (text) => cutUtf8(needles.reduce((out, needle) => out.split(needle).join('[redacted]'), text));
}

function cutUtf8(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= RESPONSE_TEXT_BYTES) return text;
  // A character cut in half decodes to U+FFFD; it is dropped rather than stored.
  return bytes
    .subarray(0, RESPONSE_TEXT_BYTES)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}
