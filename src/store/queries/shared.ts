/** Pieces every query module uses: errors, limits, time and JSON conversions, the consistent read, placeholders. */
import { and, eq, sql } from 'drizzle-orm';
import type { Store } from '../db.js';
import { guestMetrics, guests } from '../schema.js';

/** Bad query input the caller can fix; `code` says which kind. */
export class QueryError extends Error {
  override readonly name = 'QueryError';
  constructor(
    message: string,
    readonly code: 'bad_cursor' | 'bad_argument' = 'bad_argument',
  ) {
    super(message);
  }
}

export const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text == null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export const stringArray = (text: string | null | undefined): string[] => {
  const value = parseJson<unknown>(text, []);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
};

export interface LimitInfo {
  /** The limit applied. */
  limit: number;
  /** Present when the requested limit was above the maximum and was lowered to it. */
  limitClamped?: true;
}

/** Default and maximum `limit` of each paged query (for the MCP tools' input schemas). */
export const QUERY_LIMITS = {
  guests: { default: 50, max: 500 },
  events: { default: 100, max: 1_000 },
  tasks: { default: 50, max: 500 },
  search: { default: 20, max: 200 },
} as const;

export function clampLimit(requested: number | undefined, fallback: number, max: number): LimitInfo {
  if (requested === undefined) return { limit: fallback };
  if (!Number.isInteger(requested) || requested < 1)
    throw new QueryError(`limit must be a positive integer, got ${String(requested)}`);
  return requested > max ? { limit: max, limitClamped: true } : { limit: requested };
}

/** Epoch ms from epoch ms or an ISO-8601 string. */
export function toEpochMs(value: number | string, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new QueryError(`${what} must be epoch milliseconds or an ISO-8601 time, got ${String(value)}`);
    return value;
  }
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms))
    throw new QueryError(`${what} must be epoch milliseconds or an ISO-8601 time, got "${value}"`);
  return ms;
}

/**
 * One consistent read: a deferred transaction, or the one a caller already opened. Callers that
 * combine several queries wrap them in it too: a sync committing meanwhile is seen by all or none.
 */
export function oneRead<T>(store: Store, fn: () => T): T {
  return store.sqlite.inTransaction ? fn() : store.sqlite.transaction(fn)();
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;
export const ratio = (part: number, whole: number | null | undefined): number | null =>
  whole ? round3(part / whole) : null;

export const metricsJoin = and(eq(guestMetrics.cluster, guests.cluster), eq(guestMetrics.vmid, guests.vmid));

/** A placeholder of a prepared query (store/prepared.ts). */
export const P = (name: string): ReturnType<typeof sql.placeholder> => sql.placeholder(name);

/** Runs a prepared drizzle query with placeholder values. */
export interface Runnable<Row> {
  all(values?: Record<string, unknown>): Row[];
  get(values?: Record<string, unknown>): Row | undefined;
}
