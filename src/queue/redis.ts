/**
 * Redis for the action queue: the ioredis options BullMQ's queues and workers are built with, the
 * way a Redis is named in logs (never with its password), and the start-up check of a Redis the
 * user points REDIS_URL at. The embedded `redis-server` that `serve` starts when REDIS_URL is
 * unset lives in embedded-redis.ts.
 *
 * A target is either a `redis://` / `rediss://` URL or the absolute path of a unix socket (what
 * the embedded server listens on). A URL with a password may arrive wrapped in a `Secret`.
 */
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import { parseRedisTarget, REDIS_URL_EXPECTED, RedisTargetError, type ParsedRedisTarget } from '../redis-target.js';
import { Secret } from '../secret.js';

import { RedisError } from './redis-error.js';

export { RedisError };
export { startEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './embedded-redis.js';

export type RedisTarget = string | Secret;

/**
 * `queue`: the connection that adds jobs; it fails at once while Redis is down (the action stays
 * queued in SQLite) instead of holding the MCP call in ioredis's offline queue.
 * `worker`: BullMQ's blocking connections, which must retry forever (`maxRetriesPerRequest: null`,
 * BullMQ refuses anything else for them).
 */
export type RedisRole = 'queue' | 'worker';

/** ioredis options that BullMQ's Queue and Worker take too (they refuse ioredis's `retryStrategy: null`). */
export type RedisConnectionOptions = Omit<RedisOptions, 'retryStrategy'>;

const REDIS_URL_FIX = `set REDIS_URL to ${REDIS_URL_EXPECTED}`;

function parse(target: RedisTarget): ParsedRedisTarget {
  try {
    return parseRedisTarget(target instanceof Secret ? target.reveal() : target);
  } catch (err) {
    if (err instanceof RedisTargetError) throw new RedisError(`REDIS_URL ${err.message}: ${REDIS_URL_FIX}.`);
    throw err;
  }
}

/** The target as it may be logged or shown: a URL's password replaced by `***`. */
export function describeRedisTarget(target: RedisTarget): string {
  return parse(target).display;
}

/**
 * The ioredis options for one role (see RedisRole), for `new Queue(name, { connection })` and
 * `new Worker(name, fn, { connection })`. Throws RedisError for a target that is not a Redis URL
 * or socket path. The options hold the password in clear: pass them on, never log them.
 */
export function redisConnection(target: RedisTarget, role: RedisRole): RedisConnectionOptions {
  const { options } = parse(target);
  const roleOptions: RedisConnectionOptions =
    role === 'worker' ? { maxRetriesPerRequest: null } : { enableOfflineQueue: false };
  return { ...options, ...roleOptions, connectionName: `proxmox-inventory-${role}` };
}

/** What `checkRedisSettings` found; `undefined` fields were not readable. */
export interface RedisSettings {
  appendonly?: string;
  maxmemoryPolicy?: string;
  /** Redis refused CONFIG GET (managed services rename or forbid it): nothing could be checked. */
  configRefused?: true;
  /** Redis did not answer within the wait: nothing could be checked. */
  unreachable?: true;
}

/**
 * For a Redis the user gave (REDIS_URL): BullMQ keeps its jobs there, so a Redis without AOF
 * loses the queue on a restart and one that evicts keys drops jobs under memory pressure. Each
 * problem is one warning naming the fix; a Redis that refuses CONFIG gets one info line saying
 * what to make sure of by hand. Waits up to `readyTimeoutMs` for the connection, because a queue
 * connection (no offline queue) refuses commands until it is ready.
 */
export async function checkRedisSettings(
  connection: Redis,
  log: Logger,
  { readyTimeoutMs = 5_000 }: { readyTimeoutMs?: number } = {},
): Promise<RedisSettings> {
  const where = describeConnection(connection);
  const notReady = await untilReady(connection, readyTimeoutMs);
  if (notReady) return unreachable(where, notReady, log);
  let appendonly: string | undefined;
  let maxmemoryPolicy: string | undefined;
  try {
    appendonly = await configGet(connection, 'appendonly');
    maxmemoryPolicy = await configGet(connection, 'maxmemory-policy');
  } catch (err) {
    if (!(err instanceof Error && err.name === 'ReplyError')) return unreachable(where, shortReason(err), log);
    log.info(
      { redis: where, reason: shortReason(err) },
      `Redis at ${where} refused CONFIG GET, so its persistence could not be checked: make sure it has appendonly yes and maxmemory-policy noeviction, or queued jobs can be lost on a restart or evicted`,
    );
    return { configRefused: true };
  }
  warnAboutSettings(where, appendonly, maxmemoryPolicy, log);
  return {
    ...(appendonly !== undefined ? { appendonly } : {}),
    ...(maxmemoryPolicy !== undefined ? { maxmemoryPolicy } : {}),
  };
}

function warnAboutSettings(
  where: string,
  appendonly: string | undefined,
  maxmemoryPolicy: string | undefined,
  log: Logger,
): void {
  if (appendonly !== 'yes') {
    log.warn(
      { redis: where, appendonly },
      `Redis at ${where} has appendonly ${appendonly ?? 'unset'}: a Redis restart loses every queued job; set appendonly yes (CONFIG SET appendonly yes, and in redis.conf)`,
    );
  }
  if (maxmemoryPolicy !== 'noeviction') {
    log.warn(
      { redis: where, maxmemoryPolicy },
      `Redis at ${where} has maxmemory-policy ${maxmemoryPolicy ?? 'unset'}: it may evict queued jobs when memory runs short; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)`,
    );
  }
}

function unreachable(where: string, reason: string, log: Logger): RedisSettings {
  log.warn(
    { redis: where, reason },
    `Redis at ${where} did not answer (${reason}), so its persistence settings were not checked; check REDIS_URL and that Redis runs`,
  );
  return { unreachable: true };
}

/** Resolves when the connection is ready, or with the reason it is not after `timeoutMs`. */
function untilReady(connection: Redis, timeoutMs: number): Promise<string | undefined> {
  if (connection.status === 'ready') return Promise.resolve(undefined);
  if (connection.status === 'wait') connection.connect().catch(() => {}); // lazyConnect: its errors come as events
  return new Promise((resolveReady) => {
    let lastError = 'no answer';
    const onError = (err: Error): void => void (lastError = shortReason(err));
    const finish = (reason: string | undefined): void => {
      clearTimeout(timer);
      connection.off('error', onError);
      connection.off('ready', onReady);
      resolveReady(reason);
    };
    const onReady = (): void => finish(undefined);
    const timer = setTimeout(() => finish(`${lastError}, after ${timeoutMs / 1000} s`), timeoutMs);
    connection.on('error', onError);
    connection.once('ready', onReady);
  });
}

async function configGet(connection: Redis, name: string): Promise<string | undefined> {
  const reply = (await connection.config('GET', name)) as unknown;
  return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
}

/** An ioredis client's server, from its options (which hold no URL, so no password to mask). */
function describeConnection(connection: Redis): string {
  const { path, host, port, tls } = connection.options;
  if (path) return path;
  return `${tls ? 'rediss' : 'redis'}://${host?.includes(':') ? `[${host}]` : host}:${port}`;
}

function shortReason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}
