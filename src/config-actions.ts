/**
 * The settings of the action queue, its Redis, the optional Proxmox token for actions, and the
 * HTTP bearer tokens with their scopes: read by config.ts with the rest, problems reported with
 * the others, secrets wrapped in `Secret` at once.
 */
import { isAbsolute, resolve } from 'node:path';
import { ACTION_KINDS, parseEnabledKinds, type ActionKindName } from './actions/catalogue.js';
import type { ReadWholeNumber, WholeNumberSpec } from './config.js';
import { quoteValue, withValue } from './config-value.js';
import { parseRedisTarget, REDIS_URL_EXPECTED, RedisTargetError } from './redis-target.js';
import { Secret } from './secret.js';

export interface ActionsConfig {
  /** Kinds enabled (ACTIONS / actions.enabled); empty: read-only, no worker, no Redis. */
  kinds: ActionKindName[];
  ttlMs: number;
  perMinute: number;
  concurrency: number;
  perNode: number;
  waitMaxSeconds: number;
}

export interface RedisConfig {
  /** REDIS_URL (or REDIS_URL_FILE; may hold a password); unset: `serve` starts its own redis-server. */
  url: Secret | undefined;
}

export interface HttpTokenConfig {
  label: string;
  token: Secret;
  /** Kinds this token may ask for, within ACTIONS; empty: read-only. */
  kinds: ActionKindName[];
}

export const ACTIONS_ENV = {
  enabled: 'ACTIONS',
  ttlSeconds: 'ACTIONS_TTL_SECONDS',
  perMinute: 'ACTIONS_PER_MINUTE',
  concurrency: 'ACTIONS_CONCURRENCY',
  perNode: 'ACTIONS_PER_NODE',
  waitMaxSeconds: 'ACTIONS_WAIT_MAX_SECONDS',
} as const;

type Where = (key: string) => string;

const WHOLE: Record<Exclude<keyof typeof ACTIONS_ENV, 'enabled'>, WholeNumberSpec> = {
  ttlSeconds: { min: 10, max: 86_400, example: 300, unit: 'seconds' },
  perMinute: { min: 1, max: 100_000, example: 120, unit: 'actions' },
  concurrency: { min: 1, max: 256, example: 16, unit: 'actions' },
  perNode: { min: 1, max: 64, example: 4, unit: 'actions' },
  waitMaxSeconds: { min: 0, max: 600, example: 60, unit: 'seconds' },
};

const KNOWN_ACTION_KEYS = Object.keys(ACTIONS_ENV);

/** The `actions` section: file values, then the environment's. */
export function actionsConfig(
  file: Record<string, unknown> | undefined,
  env: Record<string, string | undefined>,
  problems: string[],
  unknownKey: (key: string, valid: readonly string[]) => string,
  // config.ts's reader, passed in rather than imported (config.ts imports this file)
  readWholeNumber: ReadWholeNumber,
): ActionsConfig {
  const raw: Record<string, unknown> = { ...file };
  const fromEnv = new Set<string>();
  for (const [key, variable] of Object.entries(ACTIONS_ENV))
    if (env[variable] !== undefined && env[variable] !== '') {
      raw[key] = env[variable];
      fromEnv.add(key);
    }
  const where: Where = (key) => (fromEnv.has(key) ? ACTIONS_ENV[key as keyof typeof ACTIONS_ENV] : `actions.${key}`);
  for (const key of Object.keys(file ?? {}))
    if (!KNOWN_ACTION_KEYS.includes(key)) problems.push(`actions: ${unknownKey(key, KNOWN_ACTION_KEYS)}`);
  let kinds: ActionKindName[] = [];
  if (raw.enabled !== undefined && raw.enabled !== null) {
    const given = Array.isArray(raw.enabled) ? raw.enabled.map(String) : raw.enabled;
    const parsed =
      typeof given === 'string' || Array.isArray(given)
        ? parseEnabledKinds(given)
        : {
            problem: withValue(
              'enabled',
              given,
              `expected action kinds or groups, e.g. "power,snapshot" (kinds: ${ACTION_KINDS.join(', ')})`,
            ),
          };
    if ('problem' in parsed) problems.push(`${where('enabled')}: ${parsed.problem}`);
    else kinds = parsed.kinds;
  }
  const whole = (key: keyof typeof WHOLE): number => readWholeNumber(raw[key], WHOLE[key], where(key), problems);
  return {
    kinds,
    ttlMs: whole('ttlSeconds') * 1000,
    perMinute: whole('perMinute'),
    concurrency: whole('concurrency'),
    perNode: whole('perNode'),
    waitMaxSeconds: whole('waitMaxSeconds'),
  };
}

const REDIS_KEYS = ['url', 'urlFile'];

/** REDIS_URL / REDIS_URL_FILE, or the file's redis.url / redis.urlFile. A URL is quoted back with its password masked. */
export function redisConfig(
  file: Record<string, unknown> | undefined,
  env: Record<string, string | undefined>,
  dirs: { cwd: string; baseDir: string },
  problems: string[],
  readSecretFile: (path: string, label: string, problems: string[]) => string | undefined,
  unknownKey: (key: string, valid: readonly string[]) => string,
): RedisConfig {
  for (const key of Object.keys(file ?? {}))
    if (!REDIS_KEYS.includes(key)) problems.push(`redis: ${unknownKey(key, REDIS_KEYS)}`);
  for (const key of REDIS_KEYS)
    if (file?.[key] !== undefined && file[key] !== null && typeof file[key] !== 'string')
      problems.push(
        `redis.${key}: ${withValue(key, file[key], `expected ${key === 'url' ? 'a redis:// URL or the path of a unix socket' : 'the path of a file holding the Redis URL'}`)}`,
      );
  const url = env.REDIS_URL || (typeof file?.url === 'string' ? file.url : undefined);
  const fileEnv = env.REDIS_URL_FILE;
  const urlFile = fileEnv || (typeof file?.urlFile === 'string' ? file.urlFile : undefined);
  if (url && urlFile) {
    problems.push('REDIS_URL and REDIS_URL_FILE (redis.url / redis.urlFile): set only one');
    return { url: undefined };
  }
  if (urlFile) {
    const label = fileEnv ? 'REDIS_URL_FILE' : 'redis.urlFile';
    const path = isAbsolute(urlFile) ? urlFile : resolve(fileEnv ? dirs.cwd : dirs.baseDir, urlFile);
    const text = readSecretFile(path, label, problems);
    // The file holds a secret: what is wrong with it is said, the text is not quoted.
    const problem = text && redisTargetProblem(text);
    if (problem) problems.push(`${label}: the URL in ${path} ${problem}; expected ${REDIS_URL_EXPECTED}`);
    return { url: text && !problem ? new Secret(text) : undefined };
  }
  const problem = url && redisTargetProblem(url);
  if (problem) {
    const quoted = quoteValue('url', url) ?? 'the value';
    problems.push(`${env.REDIS_URL ? 'REDIS_URL' : 'redis.url'}: ${quoted} ${problem}; expected ${REDIS_URL_EXPECTED}`);
    return { url: undefined };
  }
  return { url: url ? new Secret(url.trim()) : undefined };
}

/** What the queue's own parser finds wrong with a Redis URL or socket path; undefined when it would connect. */
function redisTargetProblem(text: string): string | undefined {
  try {
    parseRedisTarget(text);
    return undefined;
  } catch (err) {
    if (err instanceof RedisTargetError) return err.message;
    throw err;
  }
}

const LABEL_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const TOKEN_KEYS = ['label', 'token', 'tokenFile', 'actions'];

/**
 * `mcp.http.tokens` (config file only): several bearer tokens, each with a label (what action rows
 * and logs name) and the action kinds it may ask for (`actions: [power]`; none: read-only).
 * Kinds outside ACTIONS are refused here rather than silently dropped.
 */
export function httpTokens(
  raw: unknown,
  enabled: readonly ActionKindName[],
  dirs: { baseDir: string },
  problems: string[],
  checkToken: (token: string, label: string, problems: string[]) => string | undefined,
  readSecretFile: (path: string, label: string, problems: string[]) => string | undefined,
  unknownKey: (key: string, valid: readonly string[]) => string,
): HttpTokenConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('mcp.http.tokens: expected a list of { label, tokenFile, actions }');
    return [];
  }
  const out: HttpTokenConfig[] = [];
  raw.forEach((entry: unknown, i) => {
    const at = `mcp.http.tokens[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${at}: expected a mapping { label, tokenFile, actions }`);
      return;
    }
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e))
      if (!TOKEN_KEYS.includes(key)) problems.push(`${at}: ${unknownKey(key, TOKEN_KEYS)}`);
    const label = typeof e.label === 'string' ? e.label : '';
    if (!LABEL_RE.test(label))
      problems.push(
        `${at}.label: ${withValue('label', e.label, 'expected letters, digits, ".", "-" or "_" (max 63), e.g. "ci-bot"')}`,
      );
    if (out.some((t) => t.label === label)) problems.push(`${at}.label: ${quoteValue('label', label)} is used twice`);
    if (e.token !== undefined && e.tokenFile !== undefined) problems.push(`${at}: set token or tokenFile, not both`);
    const path =
      typeof e.tokenFile === 'string'
        ? isAbsolute(e.tokenFile)
          ? e.tokenFile
          : resolve(dirs.baseDir, e.tokenFile)
        : undefined;
    const text = path
      ? readSecretFile(path, `${at}.tokenFile`, problems)
      : typeof e.token === 'string'
        ? e.token
        : (problems.push(
            `${at}: missing tokenFile (a file holding the token; e.g. \`openssl rand -hex 32 > ci-bot.token\`)`,
          ),
          undefined);
    const token = text === undefined ? undefined : checkToken(text, `${at}.${path ? 'tokenFile' : 'token'}`, problems);
    let kinds: ActionKindName[] = [];
    if (e.actions !== undefined && e.actions !== null && e.actions !== 'none') {
      const parsed = parseEnabledKinds(Array.isArray(e.actions) ? e.actions.map(String) : String(e.actions));
      if ('problem' in parsed) problems.push(`${at}.actions: ${parsed.problem}`);
      else {
        const outside = parsed.kinds.filter((k) => !enabled.includes(k));
        if (outside.length)
          problems.push(
            `${at}.actions: ${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} not enabled in ACTIONS (actions.enabled${enabled.length ? `: ${enabled.join(', ')}` : ' is empty'}); enable ${outside.length > 1 ? 'them' : 'it'} there or leave ${outside.length > 1 ? 'them' : 'it'} out`,
          );
        kinds = parsed.kinds.filter((k) => enabled.includes(k));
      }
    }
    if (token && LABEL_RE.test(label)) out.push({ label, token: new Secret(token), kinds });
  });
  return out;
}

export { ACTION_KINDS };
