/**
 * Configuration, parsed once at the edge. Sources, later wins: schema defaults < config file
 * (YAML or JSON, `PROXMOX_INVENTORY_CONFIG` or `--config`) < environment. A single cluster can be
 * configured from the environment alone (`PVE_URL`, `PVE_TOKEN_ID`, `PVE_TOKEN_SECRET[_FILE]`…);
 * several need the file. Every problem is collected and reported at once, naming the key (and
 * the environment variable, where one sets it) and the fix. Secrets are wrapped in `Secret`.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Cron } from 'croner';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { normalizeFingerprint } from './proxmox/tls.js';
import { Secret } from './secret.js';
import { ConfigError } from './config-error.js';
import { quoteValue, withValue } from './config-value.js';
import {
  actionsConfig,
  httpTokens,
  redisConfig,
  type ActionsConfig,
  type HttpTokenConfig,
  type RedisConfig,
} from './config-actions.js';
import { webhooksConfig, type WebhooksConfig } from './config-webhooks.js';
import { isLoopbackHost } from './net.js';
import { DEFAULT_TOOLSETS, parseToolsets, type ToolsetName } from './mcp/toolsets.js';
import { nearestWord } from './words.js';

export { ConfigError };

export type Env = Record<string, string | undefined>;

const TOKEN_ID_RE = /^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

/** A whole-number setting: its range, its unit and its default, so that every message says what to write. */
export interface WholeNumberSpec {
  min: number;
  max: number;
  /** "seconds", "days"…; none for a plain count. */
  unit?: string;
  /** The default, shown as the example. */
  example: number;
  /** What 0 means where it means something of its own ("turns the schedule off"). */
  zero?: string;
}

/** "a whole number of seconds from 0 to 86400 (0 turns the schedule off), e.g. 15, the default" */
function describeWholeNumber({ min, max, unit, example, zero }: WholeNumberSpec): string {
  const range = `from ${min} to ${max}${zero ? ` (0 ${zero})` : ''}`;
  return `a whole number${unit ? ` of ${unit}` : ''} ${range}, e.g. ${example}, the default`;
}

/**
 * A whole number given as a number or digits (environment values are text); nothing else is
 * coerced. Every failure, whatever zod would have called it, gets the one sentence of the spec.
 */
const wholeNumber = (spec: WholeNumberSpec) => {
  const fix = `expected ${describeWholeNumber(spec)}`;
  return z
    .union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)], { error: fix })
    .pipe(z.number().int(fix).min(spec.min, fix).max(spec.max, fix))
    .default(spec.example);
};

/**
 * A whole-number setting read outside a section schema (the actions and webhooks sections build
 * their values by hand): the same coercion and sentence as `wholeNumber`. Unset or empty gives
 * the default; a bad value records the problem under `where` and gives the default too.
 */
export function readWholeNumber(value: unknown, spec: WholeNumberSpec, where: string, problems: string[]): number {
  if (value === undefined || value === null || value === '') return spec.example;
  const parsed = wholeNumber(spec).safeParse(value);
  if (parsed.success) return parsed.data;
  problems.push(`${where}: ${withValue(where, value, parsed.error.issues[0]!.message)}`);
  return spec.example;
}

export type ReadWholeNumber = typeof readWholeNumber;

const FLAG_WORDS = { true: ['true', '1', 'yes', 'on'], false: ['false', '0', 'no', 'off'] };
const FLAG_EXPECTED = 'true or false (also 1/0, yes/no, on/off, in any case)';

/** A yes/no setting as people write it in YAML and environment files; undefined when it is neither. */
function parseFlag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const word = String(value).trim().toLowerCase();
  if (FLAG_WORDS.true.includes(word)) return true;
  if (FLAG_WORDS.false.includes(word)) return false;
  return undefined;
}

const flag = (fallback: boolean) =>
  z
    .unknown()
    .transform((value, ctx) => {
      const parsed = parseFlag(value);
      if (parsed === undefined) ctx.addIssue({ code: 'custom', message: `expected ${FLAG_EXPECTED}` });
      return parsed ?? fallback;
    })
    .default(fallback);

const listWords = (words: readonly string[]): string =>
  words.length > 1 ? `${words.slice(0, -1).join(', ')} and ${words.at(-1)}` : (words[0] ?? '');

/** `unknown key "tokenid"; did you mean "tokenId"?`, or the keys there are when nothing is close. */
function unknownKey(key: string, valid: readonly string[]): string {
  const near = nearestWord(key, valid);
  return near
    ? `unknown key "${key}"; did you mean "${near}"?`
    : `unknown key "${key}"; ${valid.length === 1 ? `the only key is ${valid[0]}` : `the keys are ${listWords(valid)}`}`;
}

const TIMEOUT_MS: WholeNumberSpec = { min: 100, max: 600_000, unit: 'milliseconds', example: 15_000 };
const CONCURRENCY: WholeNumberSpec = { min: 1, max: 64, example: 8 };

/** What each key expects, for error messages that never echo the (possibly secret) value given. */
const EXPECTED: Record<string, string> = {
  name: 'letters, digits, "-" or "_" (max 63), e.g. "prod"',
  url: 'the API address, e.g. https://pve1.example.com:8006',
  tokenId: 'an API token id "user@realm!tokenid", e.g. inventory@pve!sync',
  tokenSecret: 'the API token secret (text)',
  tokenSecretFile: 'the path of a file holding the token secret',
  caFile: 'the path of a PEM CA file, e.g. a copy of /etc/pve/pve-root-ca.pem',
  fingerprint: 'the SHA-256 fingerprint as 32 colon-separated hex bytes (`pvenode cert info`)',
  insecure: FLAG_EXPECTED,
  timeoutMs: describeWholeNumber(TIMEOUT_MS),
  concurrency: describeWholeNumber(CONCURRENCY),
  actionTokenId: 'an API token id "user@realm!tokenid" for actions, e.g. inventory@pve!actions',
  actionTokenSecret: "the action token's secret (text)",
  actionTokenSecretFile: "the path of a file holding the action token's secret",
};

const ClusterSchema = z
  .object({
    name: z.string().regex(NAME_RE, 'use letters, digits, "-" or "_" (max 63), e.g. "prod"'),
    url: z.url({ protocol: /^https?$/, error: 'expected the API address, e.g. https://pve1.example.com:8006' }),
    tokenId: z.string().regex(TOKEN_ID_RE, 'expected an API token id "user@realm!tokenid", e.g. inventory@pve!sync'),
    tokenSecret: z.string().min(1).optional(),
    tokenSecretFile: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    fingerprint: z.string().optional(),
    insecure: flag(false),
    timeoutMs: wholeNumber(TIMEOUT_MS),
    concurrency: wholeNumber(CONCURRENCY),
    /** A second token for actions only (optional): the sync's token can stay audit-only. */
    actionTokenId: z
      .string()
      .regex(TOKEN_ID_RE, 'expected an API token id "user@realm!tokenid", e.g. inventory@pve!actions')
      .optional(),
    actionTokenSecret: z.string().min(1).optional(),
    actionTokenSecretFile: z.string().min(1).optional(),
  })
  .strict();

const CRON_EXPECTED = 'expected a cron pattern such as "0 * * * *" (hourly), or "off"';
const cronPattern = z.string({ error: CRON_EXPECTED }).refine((p) => {
  if (p === 'off') return true;
  try {
    new Cron(p, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}, CRON_EXPECTED);

const SyncSchema = z
  .object({
    /** Seconds between cycles per cluster; 0 turns the schedule off. */
    intervalSeconds: wholeNumber({ min: 0, max: 86_400, unit: 'seconds', example: 15, zero: 'turns the schedule off' }),
    missingThreshold: wholeNumber({ min: 1, max: 100, example: 2 }),
    configConcurrency: wholeNumber({ min: 1, max: 64, example: 8 }),
    configBudget: wholeNumber({ min: 1, max: 100_000, example: 200 }),
    /** Every config re-read at least this often (6 h: README, How the inventory stays current, says what it costs). */
    sweepPeriodMinutes: wholeNumber({ min: 1, max: 10_080, unit: 'minutes', example: 360 }),
    /** Seconds between sweep batches; 0 turns the sweep off. */
    sweepEverySeconds: wholeNumber({ min: 0, max: 86_400, unit: 'seconds', example: 60, zero: 'turns the sweep off' }),
    clusterLog: flag(true),
    /** Minutes between reads of each online node's /nodes/{node}/status (load, kernel, version, KSM, swap); 0: never. */
    nodeStatusMinutes: wholeNumber({
      min: 0,
      max: 1_440,
      unit: 'minutes',
      example: 5,
      zero: 'never reads node status',
    }),
    /** A cycle still running after this long fails as such (each request also has its own deadline). */
    cycleTimeoutSeconds: wholeNumber({ min: 10, max: 86_400, unit: 'seconds', example: 300 }),
  })
  .strict();

const SnapshotsSchema = z
  .object({
    schedule: cronPattern.default('0 * * * *'),
    /** Most snapshots kept; 0 = no count limit. */
    keep: wholeNumber({ min: 0, max: 1_000_000, unit: 'snapshots', example: 48, zero: 'keeps any number' }),
    /** Oldest kept, in days; 0 = no age limit. */
    maxAgeDays: wholeNumber({ min: 0, max: 36_500, unit: 'days', example: 7, zero: 'keeps them at any age' }),
  })
  .strict();

/** Days of history kept, 0 keeping it forever. */
const retentionDays = (example: number) =>
  wholeNumber({ min: 0, max: 36_500, unit: 'days', example, zero: 'keeps it forever' });

/** History retention (store/retention.ts), run by `serve` a minute after start and then hourly. */
const RetentionSchema = z
  .object({
    /** sync_runs older than this are deleted, except each cluster's latest and latest successful run. */
    syncRunsDays: retentionDays(7),
    /** events (the change history and the webhook outbox) older than this are deleted. */
    eventsDays: retentionDays(90),
  })
  .strict();

/** A comma-separated list (environment) or a YAML list, each entry checked and normalized by `entry`. */
const listOf = (expected: string, entry: (text: string) => string | undefined) =>
  z.unknown().transform((value, ctx) => {
    const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
    if (!items) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
      return [];
    }
    const out: string[] = [];
    for (const item of items) {
      const text = typeof item === 'string' ? item.trim() : '';
      if (typeof item === 'string' && !text) continue;
      const normalized = entry(text);
      if (normalized === undefined)
        ctx.addIssue({ code: 'custom', message: `${quoteValue('entry', text)} is not valid: expected ${expected}` });
      else out.push(normalized);
    }
    return out;
  });

/** A browser origin as browsers send it (scheme, host, port; no path), normalized the same way. */
function browserOrigin(text: string): string | undefined {
  if (!URL.canParse(text)) return undefined;
  const url = new URL(text);
  const bare = (url.pathname === '/' || url.pathname === '') && !url.search && !url.hash && !url.username;
  return bare && /^https?:$/.test(url.protocol) ? url.origin : undefined;
}

/** A Host header value: a name or address, optionally with a port (no scheme, no path). */
const hostHeader = (text: string): string | undefined =>
  /^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(text) ? text.toLowerCase() : undefined;

const McpHttpSchema = z
  .object({
    /** `false`: `serve` runs no HTTP endpoint. */
    enabled: flag(true),
    /** `false`: no Prometheus /metrics on the HTTP endpoint. */
    metrics: flag(true),
    host: z
      .string({ error: 'expected the address to listen on, e.g. 127.0.0.1' })
      .min(1, 'expected the address to listen on, e.g. 127.0.0.1')
      .default('127.0.0.1'),
    port: wholeNumber({ min: 0, max: 65_535, example: 8765, zero: 'picks a free port' }),
    /** Required whenever `host` is not loopback; its rules (length, characters) are checked in `mcpHttp`. */
    token: z.string({ error: 'expected the bearer token as text' }).optional(),
    tokenFile: z.string({ error: 'expected the path of a file holding the bearer token' }).min(1).optional(),
    /** Several tokens with labels and scopes (config file only): checked in config-actions.ts. */
    tokens: z.unknown().optional(),
    /** Browser origins allowed to call /mcp (besides none); non-browser clients send no Origin. */
    allowedOrigins: listOf('origins like https://app.example.com, separated by commas', browserOrigin).default([]),
    /** Host header values accepted besides the bind address itself (e.g. a reverse proxy's name). */
    allowedHosts: listOf('host names like inventory.example.com or inventory.example.com:8443', hostHeader).default([]),
    maxBodyBytes: wholeNumber({ min: 1_024, max: 16 * 2 ** 20, unit: 'bytes', example: 2 ** 20 }),
    /** /readyz fails when a cluster's last successful sync is older than this (0: 4 sync intervals, at least 60 s). */
    readyMaxAgeSeconds: wholeNumber({
      min: 0,
      max: 86_400,
      unit: 'seconds',
      example: 0,
      zero: 'means 4 sync intervals, at least 60 s',
    }),
  })
  .strict();

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** The config file's parts, each taken on its own so that a problem in one never hides another's. */
interface FileParts {
  dataDir?: string;
  logLevel?: unknown;
  clusters: Array<{ raw: Record<string, unknown>; index: number }>;
  sync?: Record<string, unknown>;
  snapshots?: Record<string, unknown>;
  retention?: Record<string, unknown>;
  mcpHttp?: Record<string, unknown>;
  mcpToolsets?: unknown;
  actions?: Record<string, unknown>;
  redis?: Record<string, unknown>;
  webhooks?: Record<string, unknown>;
}

const FILE_KEYS = [
  'dataDir',
  'log',
  'clusters',
  'sync',
  'snapshots',
  'retention',
  'mcp',
  'actions',
  'redis',
  'webhooks',
];

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const kindOf = (v: unknown): string =>
  Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;

/** Environment variables for the `sync` and `snapshots` sections. */
const SECTION_ENV = {
  sync: {
    intervalSeconds: 'SYNC_INTERVAL_SECONDS',
    cycleTimeoutSeconds: 'SYNC_CYCLE_TIMEOUT_SECONDS',
    sweepPeriodMinutes: 'SYNC_SWEEP_PERIOD_MINUTES',
    sweepEverySeconds: 'SYNC_SWEEP_EVERY_SECONDS',
    nodeStatusMinutes: 'SYNC_NODE_STATUS_MINUTES',
  },
  snapshots: { schedule: 'SNAPSHOT_SCHEDULE', keep: 'SNAPSHOT_KEEP', maxAgeDays: 'SNAPSHOT_MAX_AGE_DAYS' },
  retention: { syncRunsDays: 'RETENTION_SYNC_RUNS_DAYS', eventsDays: 'RETENTION_EVENTS_DAYS' },
  'mcp.http': {
    enabled: 'MCP_HTTP',
    metrics: 'MCP_METRICS',
    host: 'MCP_HTTP_HOST',
    port: 'MCP_HTTP_PORT',
    token: 'MCP_BEARER_TOKEN',
    tokenFile: 'MCP_BEARER_TOKEN_FILE',
    allowedOrigins: 'MCP_ALLOWED_ORIGINS',
    allowedHosts: 'MCP_ALLOWED_HOSTS',
    readyMaxAgeSeconds: 'MCP_READY_MAX_AGE_SECONDS',
  },
} as const;

export type SyncConfig = z.infer<typeof SyncSchema>;
export type SnapshotsConfig = z.infer<typeof SnapshotsSchema>;
export type RetentionConfig = z.infer<typeof RetentionSchema>;

export interface McpHttpConfig {
  enabled: boolean;
  /** GET /metrics (Prometheus) on the same listener; MCP_METRICS=off turns it off. */
  metrics: boolean;
  host: string;
  port: number;
  token: Secret | undefined;
  allowedOrigins: string[];
  allowedHosts: string[];
  maxBodyBytes: number;
  readyMaxAgeSeconds: number;
  /**
   * Every bearer token /mcp accepts, with its label and scope: MCP_BEARER_TOKEN as "default" (every
   * enabled action kind), then mcp.http.tokens.
   */
  tokens: HttpTokenConfig[];
}

export interface ClusterConfig {
  name: string;
  url: string;
  tokenId: string;
  tokenSecret: Secret;
  tls: { ca?: string; caFile?: string; fingerprint?: string; insecure: boolean };
  timeoutMs: number;
  concurrency: number;
  /** The token actions use, when one apart from the sync's is configured. */
  actionToken?: { tokenId: string; tokenSecret: Secret };
}

export interface Config {
  dataDir: string;
  /** The inventory database: `<dataDir>/inventory.db`. */
  dbPath: string;
  log: { level: LogLevel };
  clusters: ClusterConfig[];
  sync: SyncConfig;
  snapshots: SnapshotsConfig;
  retention: RetentionConfig;
  /** `toolsets`: the groups of tools MCP clients are offered (src/mcp/toolsets.ts). */
  mcp: { http: McpHttpConfig; toolsets: ToolsetName[] };
  actions: ActionsConfig;
  redis: RedisConfig;
  webhooks: WebhooksConfig;
}

interface SectionResult<T> {
  value?: T;
  /** The values given, file and environment merged, for checks that run even when the schema failed. */
  raw: Record<string, unknown>;
  /** Whether the environment set the key (its relative paths then start from the working directory). */
  fromEnv: (key: string) => boolean;
  /** The name to report a key by: its environment variable when that set it, else `section.key`. */
  where: (key: string) => string;
}

/** Parses a section (`sync`, `snapshots`…): file values, then the environment's; `raw` is what was given. */
function section<S extends z.ZodObject>(
  name: keyof typeof SECTION_ENV,
  schema: S,
  fromFile: Record<string, unknown> | undefined,
  env: Env,
  problems: string[],
): SectionResult<z.infer<S>> {
  const raw: Record<string, unknown> = { ...fromFile };
  const vars: Record<string, string> = SECTION_ENV[name];
  for (const [key, variable] of Object.entries(vars))
    if (env[variable] !== undefined && env[variable] !== '') raw[key] = env[variable];
  const fromEnv = (key: string): boolean => Boolean(vars[key] && env[vars[key]]);
  const where = (key: string): string => (fromEnv(key) ? vars[key]! : `${name}.${key}`);
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { value: parsed.data, raw, fromEnv, where };
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${name}: ${unknownKey(key, Object.keys(schema.shape))}`);
      continue;
    }
    const key = String(issue.path[0] ?? '');
    problems.push(
      key ? `${where(key)}: ${withValue(where(key), raw[key], issue.message)}` : `${name}: ${issue.message}`,
    );
  }
  return { raw, fromEnv, where };
}

/** Which environment variable sets each cluster key, so errors can name it. */
const ENV_FOR_KEY: Record<string, string> = {
  name: 'PVE_CLUSTER_NAME',
  url: 'PVE_URL',
  tokenId: 'PVE_TOKEN_ID',
  tokenSecret: 'PVE_TOKEN_SECRET',
  tokenSecretFile: 'PVE_TOKEN_SECRET_FILE',
  caFile: 'PVE_CA_FILE',
  fingerprint: 'PVE_FINGERPRINT',
  insecure: 'PVE_INSECURE',
  timeoutMs: 'PVE_TIMEOUT_MS',
  concurrency: 'PVE_CONCURRENCY',
  actionTokenId: 'PVE_ACTION_TOKEN_ID',
  actionTokenSecret: 'PVE_ACTION_TOKEN_SECRET',
  actionTokenSecretFile: 'PVE_ACTION_TOKEN_SECRET_FILE',
};

function readSecretFile(path: string, label: string, problems: string[]): string | undefined {
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (!value) problems.push(`${label}: the file ${path} is empty; write the secret into it`);
    return value || undefined;
  } catch (err) {
    problems.push(
      `${label}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`,
    );
    return undefined;
  }
}

/** The cluster keys the environment sets (paths resolved from the working directory). */
function clusterFromEnv(env: Env, cwd: string): Record<string, unknown> {
  const path = (p: string | undefined): string | undefined => (p ? resolve(cwd, p) : undefined);
  const fields: Record<string, unknown> = {
    url: env.PVE_URL,
    tokenId: env.PVE_TOKEN_ID,
    tokenSecret: env.PVE_TOKEN_SECRET,
    tokenSecretFile: path(env.PVE_TOKEN_SECRET_FILE),
    caFile: path(env.PVE_CA_FILE),
    fingerprint: env.PVE_FINGERPRINT,
    insecure: env.PVE_INSECURE,
    timeoutMs: env.PVE_TIMEOUT_MS,
    concurrency: env.PVE_CONCURRENCY,
    actionTokenId: env.PVE_ACTION_TOKEN_ID,
    actionTokenSecret: env.PVE_ACTION_TOKEN_SECRET,
    actionTokenSecretFile: path(env.PVE_ACTION_TOKEN_SECRET_FILE),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== ''));
}

/** Keys that are alternatives: the environment setting one replaces the file's others. */
const ALTERNATIVES = [
  ['tokenSecret', 'tokenSecretFile'],
  ['actionTokenSecret', 'actionTokenSecretFile'],
  ['caFile', 'fingerprint', 'insecure'],
];

function overrideWith(fileCluster: Record<string, unknown>, fromEnv: Record<string, unknown>): void {
  for (const group of ALTERNATIVES) {
    if (group.some((k) => k in fromEnv)) for (const k of group) delete fileCluster[k];
  }
  Object.assign(fileCluster, fromEnv);
}

function readConfigFile(path: string, problems: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(
      `config file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'}); check PROXMOX_INVENTORY_CONFIG / --config`,
    );
    return {};
  }
  // Parser messages quote the text around the error, which may be a secret: report only where it is.
  if (/\.json$/i.test(path)) {
    try {
      return JSON.parse(text) ?? {};
    } catch {
      problems.push(`config file ${path}: not valid JSON; check its syntax (e.g. \`jq . ${path}\`)`);
      return {};
    }
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    const at = (err as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    problems.push(
      `config file ${path}: not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}; check its syntax`,
    );
    return {};
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The file's top level, checked by hand: an unknown key, a misspelt one or a bad `log.level` is
 * reported beside the sections' problems instead of discarding the whole file.
 */
function fileParts(raw: unknown, path: string, problems: string[]): FileParts {
  const parts: FileParts = { clusters: [] };
  const at = (key: string, message: string): number => problems.push(`config file ${path}: ${key}: ${message}`);
  if (raw === null || raw === undefined) return parts;
  if (!isMapping(raw)) {
    problems.push(
      `config file ${path}: expected keys such as clusters and sync at the top level, found ${kindOf(raw)}`,
    );
    return parts;
  }
  for (const key of Object.keys(raw))
    if (!FILE_KEYS.includes(key)) problems.push(`config file ${path}: ${unknownKey(key, FILE_KEYS)}`);
  const mapping = (key: string, value: unknown, example: string): Record<string, unknown> | undefined => {
    if (value === undefined || value === null || isMapping(value)) return value ?? undefined;
    at(key, `expected a mapping of settings, e.g. ${example}; found ${kindOf(value)}`);
    return undefined;
  };

  if (raw.dataDir !== undefined && raw.dataDir !== null) {
    if (typeof raw.dataDir === 'string' && raw.dataDir) parts.dataDir = raw.dataDir;
    else
      at(
        'dataDir',
        withValue('dataDir', raw.dataDir, 'expected the path of a directory, e.g. /var/lib/proxmox-inventory'),
      );
  }
  const log = mapping('log', raw.log, '{ level: info }');
  for (const key of Object.keys(log ?? {})) if (key !== 'level') at('log', unknownKey(key, ['level']));
  parts.logLevel = log?.level ?? undefined;

  if (raw.clusters !== undefined && raw.clusters !== null) {
    if (!Array.isArray(raw.clusters))
      at(
        'clusters',
        `expected a list of clusters (YAML: lines starting with "- name: …"); found ${kindOf(raw.clusters)}`,
      );
    else
      raw.clusters.forEach((cluster: unknown, index) => {
        if (isMapping(cluster)) parts.clusters.push({ raw: cluster, index });
        else at(`clusters[${index}]`, `expected a mapping with name, url, tokenId…; found ${kindOf(cluster)}`);
      });
  }
  parts.sync = mapping('sync', raw.sync, '{ intervalSeconds: 15 }');
  parts.snapshots = mapping('snapshots', raw.snapshots, '{ schedule: "0 * * * *" }');
  parts.retention = mapping('retention', raw.retention, '{ eventsDays: 90 }');
  const mcp = mapping('mcp', raw.mcp, '{ http: { port: 8765 } }');
  for (const key of Object.keys(mcp ?? {}))
    if (key !== 'http' && key !== 'toolsets') at('mcp', unknownKey(key, ['http', 'toolsets']));
  parts.mcpHttp = mapping('mcp.http', mcp?.http, '{ port: 8765 }');
  parts.mcpToolsets = mcp?.toolsets;
  parts.actions = mapping('actions', raw.actions, '{ enabled: [power] }');
  parts.redis = mapping('redis', raw.redis, '{ urlFile: redis-url.txt }');
  parts.webhooks = mapping('webhooks', raw.webhooks, '{ allowCidrs: [192.168.1.0/24] }');
  return parts;
}

/** LOG_LEVEL, or the file's log.level: one of pino's levels (any case). */
function logLevel(env: Env, fromFile: unknown, path: string | undefined, problems: string[]): LogLevel {
  const [given, where] = env.LOG_LEVEL ? [env.LOG_LEVEL, 'LOG_LEVEL'] : [fromFile, `config file ${path}: log.level`];
  if (given === undefined || given === null) return 'info';
  const level = LOG_LEVELS.find((l) => l === String(given).trim().toLowerCase());
  if (level) return level;
  const near = nearestWord(String(given), LOG_LEVELS);
  problems.push(
    `${where}: ${quoteValue(where, typeof given === 'string' ? given : String(given))} is not one of ${LOG_LEVELS.join(', ')}${near ? `; did you mean "${near}"?` : ''}`,
  );
  return 'info';
}

/** MCP_TOOLSETS, or the file's mcp.toolsets: the groups of tools MCP clients are offered. */
function mcpToolsets(env: Env, fromFile: unknown, path: string | undefined, problems: string[]): ToolsetName[] {
  const [given, where] = env.MCP_TOOLSETS
    ? [env.MCP_TOOLSETS, 'MCP_TOOLSETS']
    : [fromFile, `config file ${path}: mcp.toolsets`];
  if (given === undefined || given === null) return [...DEFAULT_TOOLSETS];
  const names = typeof given === 'string' ? given : Array.isArray(given) ? given.map(String) : undefined;
  const parsed =
    names === undefined
      ? { problem: `expected a list of toolsets, e.g. [inventory, history]; found ${kindOf(given)}` }
      : parseToolsets(names);
  if ('toolsets' in parsed) return parsed.toolsets;
  problems.push(`${where}: ${parsed.problem}`);
  return [...DEFAULT_TOOLSETS];
}

/** What is at a path, if anything (a path below a file is nothing, not an error). */
function existing(path: string): ReturnType<typeof statSync> {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * The data directory, resolved; a file standing where it (or a folder above it) should be is
 * reported here, naming the setting, rather than as a failed mkdir later.
 */
function dataDirectory(
  env: Env,
  fromFile: string | undefined,
  path: string | undefined,
  cwd: string,
  baseDir: string,
  problems: string[],
): string {
  const text = env.DATA_DIR || fromFile || './data';
  const dataDir = isAbsolute(text) ? text : resolve(env.DATA_DIR ? cwd : baseDir, text);
  const setting = env.DATA_DIR ? 'DATA_DIR' : fromFile ? `config file ${path}: dataDir` : 'DATA_DIR (default ./data)';
  for (let at = dataDir; ; at = dirname(at)) {
    const stat = existing(at);
    if (stat && !stat.isDirectory()) {
      problems.push(
        `${setting}: ${at === dataDir ? `${dataDir} is a file, not a directory` : `${dataDir} cannot be created: ${at} is a file`}; point it at a directory (it is created if missing)`,
      );
      break;
    }
    if (stat || dirname(at) === at) break;
  }
  return dataDir;
}

/**
 * Checks beyond the schema (secret source, plain http, trust settings). They run on the raw
 * values even when the schema already failed, so one run reports every problem.
 */
function checkCluster(
  raw: Record<string, unknown>,
  keyName: (key: string) => string,
  baseDir: string,
  problems: string[],
): { secret?: string; ca?: string; fingerprint?: string; actionSecret?: string } {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const out: { secret?: string; ca?: string; fingerprint?: string; actionSecret?: string } = {};
  const [secret, secretFile, caFile, fingerprint, url] = [
    str(raw.tokenSecret),
    str(raw.tokenSecretFile),
    str(raw.caFile),
    str(raw.fingerprint),
    str(raw.url),
  ];

  if (secret && secretFile) problems.push(`${keyName('tokenSecret')} and ${keyName('tokenSecretFile')}: set only one`);
  else if (secretFile) out.secret = readSecretFile(at(secretFile), keyName('tokenSecretFile'), problems);
  else if (secret) out.secret = secret.trim();
  else
    problems.push(
      `${keyName('tokenSecret')}: missing; set the API token secret (or ${keyName('tokenSecretFile')} to a file holding it)`,
    );

  if (out.secret !== undefined && [...out.secret].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    problems.push(
      `${keyName(secretFile ? 'tokenSecretFile' : 'tokenSecret')}: the secret contains control characters; copy it again without them`,
    );
  }
  if (url && URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname))
      problems.push(
        `${keyName('url')}: plain http would send the API token unencrypted; use https://${parsed.hostname}:8006`,
      );
  }
  if (fingerprint !== undefined) {
    out.fingerprint = normalizeFingerprint(fingerprint);
    if (!out.fingerprint)
      problems.push(
        `${keyName('fingerprint')}: ${withValue('fingerprint', fingerprint, 'expected the SHA-256 fingerprint as 32 colon-separated hex bytes (run `pvenode cert info` on the node and copy "Fingerprint (sha256)")')}`,
      );
  }
  if (caFile) {
    try {
      out.ca = readFileSync(at(caFile), 'utf8');
      if (!out.ca.includes('-----BEGIN CERTIFICATE-----'))
        problems.push(
          `${keyName('caFile')}: ${caFile} holds no PEM certificate; copy /etc/pve/pve-root-ca.pem from a node`,
        );
    } catch (err) {
      problems.push(`${keyName('caFile')}: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (caFile && fingerprint)
    problems.push(`${keyName('caFile')} and ${keyName('fingerprint')}: choose one way to trust the node certificate`);
  out.actionSecret = actionTokenSecret(raw, keyName, at, problems);
  if (parseFlag(raw.insecure) === true && (caFile || fingerprint))
    problems.push(
      `${keyName('insecure')}: contradicts the configured ${caFile ? 'caFile' : 'fingerprint'}; remove insecure`,
    );
  return out;
}

/** The action token's secret: both halves or neither, from text or a file. */
function actionTokenSecret(
  raw: Record<string, unknown>,
  keyName: (key: string) => string,
  at: (p: string) => string,
  problems: string[],
): string | undefined {
  const [id, secret, file] = [str(raw.actionTokenId), str(raw.actionTokenSecret), str(raw.actionTokenSecretFile)];
  if (!id && !secret && !file) return undefined;
  if (secret && file) {
    problems.push(`${keyName('actionTokenSecret')} and ${keyName('actionTokenSecretFile')}: set only one`);
    return undefined;
  }
  const value = file ? readSecretFile(at(file), keyName('actionTokenSecretFile'), problems) : secret?.trim();
  const given = keyName(file ? 'actionTokenSecretFile' : 'actionTokenSecret');
  if (!value && !file)
    problems.push(
      `${keyName('actionTokenSecret')}: missing; set the action token's secret (or ${keyName('actionTokenSecretFile')})`,
    );
  if (value && [...value].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    problems.push(`${given}: the secret contains control characters; copy it again without them`);
    return undefined;
  }
  if (!id) {
    problems.push(
      `${keyName('actionTokenId')}: missing; ${given} is set, and the action token needs its id "user@realm!tokenid" too`,
    );
    return undefined;
  }
  return value;
}

const MIN_TOKEN_LENGTH = 16;

/**
 * The bearer token, from MCP_BEARER_TOKEN or the file MCP_BEARER_TOKEN_FILE names, held to the
 * same rules whichever source it came from: long enough not to be guessed, and sendable in a header.
 */
function bearerToken(
  { raw, fromEnv, where }: SectionResult<unknown>,
  dirs: { cwd: string; baseDir: string },
  problems: string[],
): string | undefined {
  const [given, file] = [str(raw.token), str(raw.tokenFile)];
  if (given && file) {
    problems.push('MCP_BEARER_TOKEN and MCP_BEARER_TOKEN_FILE (mcp.http.token / tokenFile): set only one');
    return undefined;
  }
  const label = where(file ? 'tokenFile' : 'token');
  const path = file && resolve(fromEnv('tokenFile') ? dirs.cwd : dirs.baseDir, file);
  const token = path ? readSecretFile(path, label, problems) : given;
  if (token === undefined) return undefined;
  return checkedToken(token, label, problems, file ? `the token in ${file}` : 'the token');
}

/** A bearer token long enough not to be guessed and sendable in a header; never quoted back. */
function checkedToken(token: string, label: string, problems: string[], source = 'the token'): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(token))
    problems.push(`${label}: ${source} has spaces, control or non-ASCII characters; use e.g. \`openssl rand -hex 32\``);
  else if (token.length < MIN_TOKEN_LENGTH)
    problems.push(
      `${label}: ${source} is too short; use at least ${MIN_TOKEN_LENGTH} characters (e.g. \`openssl rand -hex 32\`)`,
    );
  else return token;
  return undefined;
}

/**
 * The HTTP endpoint's settings: a token is mandatory off loopback for a command that listens, and
 * the readiness window has a default. The token checks run on the raw values even when the schema
 * failed, so one run reports every problem.
 */
function mcpHttp(
  http: SectionResult<z.infer<typeof McpHttpSchema>>,
  sync: SyncConfig | undefined,
  actions: ActionsConfig,
  context: { cwd: string; baseDir: string; listensOnHttp: boolean },
  problems: string[],
): McpHttpConfig | undefined {
  const { value, raw } = http;
  const dirs = { cwd: context.cwd, baseDir: context.baseDir };
  const token = bearerToken(http, dirs, problems);
  const tokens = httpTokens(raw.tokens, actions.kinds, dirs, problems, checkedToken, readSecretFile, unknownKey);
  const hasToken = Boolean(str(raw.token) || str(raw.tokenFile) || tokens.length);
  const host = str(raw.host) ?? '127.0.0.1';
  if (context.listensOnHttp && parseFlag(raw.enabled ?? true) !== false && !isLoopbackHost(host) && !hasToken) {
    problems.push(
      `MCP_HTTP_HOST (mcp.http.host): ${quoteValue('host', host)} is reachable from other machines; set MCP_BEARER_TOKEN (or MCP_BEARER_TOKEN_FILE) so /mcp requires it, or listen on 127.0.0.1`,
    );
  }
  if (!value) return undefined;
  const readyMaxAgeSeconds = value.readyMaxAgeSeconds || Math.max(60, 4 * (sync?.intervalSeconds ?? 15));
  const { tokens: _given, ...rest } = value;
  const all = token ? [{ label: 'default', token: new Secret(token), kinds: actions.kinds }, ...tokens] : tokens;
  return { ...rest, token: token ? new Secret(token) : undefined, readyMaxAgeSeconds, tokens: all };
}

export interface LoadConfigOptions {
  env: Env;
  /** From `--config`; overrides PROXMOX_INVENTORY_CONFIG. */
  configPath?: string;
  /** Needs no Proxmox cluster (e.g. `sim`). */
  clustersOptional?: boolean;
  /**
   * Starts the HTTP endpoint (`serve`, `demo`): only then does a host beyond loopback need a bearer
   * token. The other commands never listen, so MCP_HTTP_HOST=0.0.0.0 shared with serve's
   * environment must not stop `sync --once`, `mcp` over stdio or `check`.
   */
  listensOnHttp?: boolean;
  cwd?: string;
}

export function loadConfig({
  env,
  configPath,
  clustersOptional = false,
  listensOnHttp = false,
  cwd = process.cwd(),
}: LoadConfigOptions): Config {
  const problems: string[] = [];
  const path = configPath || env.PROXMOX_INVENTORY_CONFIG || undefined;
  let file: FileParts = { clusters: [] };
  let baseDir = cwd;
  if (path) {
    const absolute = isAbsolute(path) ? path : resolve(cwd, path);
    baseDir = resolve(absolute, '..');
    file = fileParts(readConfigFile(absolute, problems), path, problems);
  }

  const rawClusters: Array<{ raw: Record<string, unknown>; fromEnv: boolean; index: number }> = file.clusters.map(
    ({ raw, index }) => ({ raw, fromEnv: false, index }),
  );
  const fromEnv = clusterFromEnv(env, cwd);
  const named = env.PVE_CLUSTER_NAME ? rawClusters.find((c) => c.raw.name === env.PVE_CLUSTER_NAME) : undefined;
  if (named) overrideWith(named.raw, fromEnv);
  else if (env.PVE_URL)
    rawClusters.push({
      raw: { name: env.PVE_CLUSTER_NAME || 'default', ...fromEnv },
      fromEnv: true,
      index: rawClusters.length,
    });
  else if (Object.keys(fromEnv).length) {
    const vars = Object.keys(fromEnv)
      .map((k) => ENV_FOR_KEY[k])
      .join(', ');
    problems.push(
      `${vars}: set but no cluster uses them; set PVE_URL for a cluster from the environment, or PVE_CLUSTER_NAME to the config-file cluster they override`,
    );
  }

  const clusters: ClusterConfig[] = [];
  const names = new Set<string>();
  for (const { raw, fromEnv, index } of rawClusters) {
    const label = fromEnv ? 'environment' : `clusters[${index}]${typeof raw.name === 'string' ? ` (${raw.name})` : ''}`;
    const keyName = (key: string): string => (fromEnv ? `${ENV_FOR_KEY[key] ?? key}` : `${label}.${key}`);
    const parsed = ClusterSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = String(issue.path[0] ?? '');
        if (issue.code === 'unrecognized_keys')
          for (const unknown of issue.keys)
            problems.push(`${label}: ${unknownKey(unknown, Object.keys(ClusterSchema.shape))}`);
        else if (!key) problems.push(`${label}: ${issue.message}`);
        else if (raw[key] === undefined)
          problems.push(`${keyName(key)}: missing; expected ${EXPECTED[key] ?? issue.message}`);
        else
          problems.push(
            `${keyName(key)}: ${withValue(keyName(key), raw[key], `expected ${EXPECTED[key] ?? issue.message}`)}`,
          );
      }
    }
    const checked = checkCluster(raw, keyName, baseDir, problems);
    if (!parsed.success || !checked.secret) continue;
    const c = parsed.data;
    if (names.has(c.name))
      problems.push(`${keyName('name')}: cluster name "${c.name}" is used twice; names must be unique`);
    names.add(c.name);
    clusters.push({
      name: c.name,
      url: new URL(c.url).origin,
      tokenId: c.tokenId,
      tokenSecret: new Secret(checked.secret),
      tls: { ca: checked.ca, caFile: c.caFile, fingerprint: checked.fingerprint, insecure: c.insecure },
      timeoutMs: c.timeoutMs,
      concurrency: c.concurrency,
      ...(checked.actionSecret && c.actionTokenId
        ? { actionToken: { tokenId: c.actionTokenId, tokenSecret: new Secret(checked.actionSecret) } }
        : {}),
    });
  }
  if (rawClusters.length === 0 && !clustersOptional && !problems.some((p) => p.startsWith('config file'))) {
    problems.push(
      'no Proxmox cluster configured: set PVE_URL, PVE_TOKEN_ID and PVE_TOKEN_SECRET (or PVE_TOKEN_SECRET_FILE), or list clusters in a config file (PROXMOX_INVENTORY_CONFIG)',
    );
  }

  const level = logLevel(env, file.logLevel, path, problems);
  const sync = section('sync', SyncSchema, file.sync, env, problems).value;
  const snapshots = section('snapshots', SnapshotsSchema, file.snapshots, env, problems).value;
  const retention = section('retention', RetentionSchema, file.retention, env, problems).value;
  const httpSection = section('mcp.http', McpHttpSchema, file.mcpHttp, env, problems);
  const actions = actionsConfig(file.actions, env, problems, unknownKey, readWholeNumber);
  const redis = redisConfig(file.redis, env, { cwd, baseDir }, problems, readSecretFile, unknownKey);
  const http = mcpHttp(httpSection, sync, actions, { cwd, baseDir, listensOnHttp }, problems);
  const webhooks = webhooksConfig(
    file.webhooks,
    env,
    { baseDir, clusterNames: rawClusters.map(({ raw }) => raw.name).filter((n) => typeof n === 'string') },
    problems,
    { readSecretFile, unknownKey, parseFlag, readWholeNumber },
  );
  const toolsets = mcpToolsets(env, file.mcpToolsets, path, problems);
  const dataDir = dataDirectory(env, file.dataDir, path, cwd, baseDir, problems);

  if (problems.length || !sync || !snapshots || !retention || !http) throw new ConfigError(problems);
  return {
    dataDir,
    dbPath: resolve(dataDir, 'inventory.db'),
    log: { level },
    clusters,
    sync,
    snapshots,
    retention,
    mcp: { http, toolsets },
    actions,
    redis,
    webhooks,
  };
}
