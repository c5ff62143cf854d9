/**
 * How a Redis is named in the settings: a `redis://` / `rediss://` URL or the absolute path of a
 * unix socket. One parser for the configuration, which refuses a bad REDIS_URL before anything
 * starts, and for the queue, which connects with what it returns: the two never disagree on what
 * is valid. Its messages never quote the text, which may hold a password.
 */
import type { RedisOptions } from 'ioredis';

export const REDIS_URL_EXPECTED =
  'redis://[user:password@]host[:port][/db], rediss://… for TLS, or the absolute path of a unix socket';

export interface ParsedRedisTarget {
  /** What ioredis connects with; holds the password in clear. */
  options: RedisOptions;
  /** The target as logs and messages show it: the password masked. */
  display: string;
}

/** What is wrong with the text, phrased to follow "REDIS_URL " (or the file's name). */
export class RedisTargetError extends Error {}

const MASK = '***';

export function parseRedisTarget(text: string): ParsedRedisTarget {
  const trimmed = text.trim();
  if (trimmed.startsWith('/')) return { options: { path: trimmed }, display: trimmed };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new RedisTargetError('is not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new RedisTargetError(`has the scheme ${url.protocol.slice(0, 20)} that Redis does not speak`);
  return { options: urlOptions(url), display: maskedUrl(url) };
}

function urlOptions(url: URL): RedisOptions {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 literal loses its brackets for net.connect
  const options: RedisOptions = { host: host || 'localhost', port: url.port ? Number(url.port) : 6379 };
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  const db = url.pathname.replace(/^\//, '');
  if (db) {
    if (!/^\d{1,5}$/.test(db))
      throw new RedisTargetError(`names the database "${db.slice(0, 40)}", which is not a number`);
    options.db = Number(db);
  }
  if (url.protocol === 'rediss:') options.tls = { servername: host };
  return options;
}

function maskedUrl(url: URL): string {
  const shown = new URL(url.href);
  if (shown.password) shown.password = MASK;
  shown.search = '';
  return shown.href.replace(/\/$/, '');
}
