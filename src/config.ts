/**
 * Configuration, parsed once at the edge. Sources, later wins: schema defaults < config file
 * (YAML or JSON, `PROXMOX_INVENTORY_CONFIG` or `--config`) < environment. A single cluster can be
 * configured from the environment alone (`PVE_URL`, `PVE_TOKEN_ID`, `PVE_TOKEN_SECRET[_FILE]`…);
 * several need the file. Every problem is collected and reported at once, naming the key (and
 * the environment variable, where one sets it) and the fix. Secrets are wrapped in `Secret`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Cron } from 'croner';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { normalizeFingerprint } from './proxmox/tls.js';
import { Secret } from './secret.js';
import { isLoopbackHost } from './net.js';

export type Env = Record<string, string | undefined>;

const TOKEN_ID_RE = /^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

/** A whole number given as a number or digits (environment values are text); nothing else is coerced. */
const wholeNumber = (min: number, max: number) =>
  z.union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(min).max(max));

/** What each key expects, for error messages that never echo the (possibly secret) value given. */
const EXPECTED: Record<string, string> = {
  name: 'letters, digits, "-" or "_" (max 63), e.g. "prod"',
  url: 'the API address, e.g. https://pve1.example.com:8006',
  tokenId: 'an API token id "user@realm!tokenid", e.g. inventory@pve!sync',
  tokenSecret: 'the API token secret (text)',
  tokenSecretFile: 'the path of a file holding the token secret',
  caFile: 'the path of a PEM CA file, e.g. a copy of /etc/pve/pve-root-ca.pem',
  fingerprint: 'the SHA-256 fingerprint as 32 colon-separated hex bytes (`pvenode cert info`)',
  insecure: 'true or false (environment: 1/0, yes/no)',
  timeoutMs: 'a whole number of milliseconds from 100 to 600000',
  concurrency: 'a whole number from 1 to 64',
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
    insecure: z.boolean().default(false),
    timeoutMs: wholeNumber(100, 600_000).default(15_000),
    concurrency: wholeNumber(1, 64).default(8),
  })
  .strict();

const cronPattern = z.string().refine((p) => {
  if (p === 'off') return true;
  try {
    new Cron(p, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}, 'expected a cron pattern such as "0 * * * *" (hourly), or "off"');

const SyncSchema = z
  .object({
    /** Seconds between cycles per cluster; 0 turns the schedule off. */
    intervalSeconds: wholeNumber(0, 86_400).default(15),
    missingThreshold: wholeNumber(1, 100).default(2),
    configConcurrency: wholeNumber(1, 64).default(8),
    configBudget: wholeNumber(1, 100_000).default(200),
    /** Every config re-read at least this often (6 h: README, How the inventory stays current, says what it costs). */
    sweepPeriodMinutes: wholeNumber(1, 10_080).default(360),
    /** Seconds between sweep batches; 0 turns the sweep off. */
    sweepEverySeconds: wholeNumber(0, 86_400).default(60),
    clusterLog: z.boolean().default(true),
    /** A cycle still running after this long fails as such (each request also has its own deadline). */
    cycleTimeoutSeconds: wholeNumber(10, 86_400).default(300),
  })
  .strict();

const SnapshotsSchema = z
  .object({
    schedule: cronPattern.default('0 * * * *'),
    /** Most snapshots kept; 0 = no count limit. */
    keep: wholeNumber(0, 1_000_000).default(48),
    /** Oldest kept, in days; 0 = no age limit. */
    maxAgeDays: wholeNumber(0, 36_500).default(7),
  })
  .strict();

/** Days of history kept: a whole number, 0 keeping it forever (the message says so, where zod's would say "Invalid input"). */
const retentionDays = (fallback: number) => {
  const fix = `expected a whole number of days from 0 to 36500 (0 keeps it forever), e.g. ${fallback}, the default`;
  return z
    .union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)], { error: fix })
    .pipe(z.number().int(fix).min(0, fix).max(36_500, fix))
    .default(fallback);
};

/** History retention (store/retention.ts), run by `serve` a minute after start and then hourly. */
const RetentionSchema = z.strictObject(
  {
    /** sync_runs older than this are deleted, except each cluster's latest and latest successful run. */
    syncRunsDays: retentionDays(7),
    /** events (the change history and the webhook outbox) older than this are deleted. */
    eventsDays: retentionDays(90),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}; the keys are syncRunsDays and eventsDays`
        : undefined,
  },
);

const McpHttpSchema = z
  .object({
    /** `false`: `serve` runs no HTTP endpoint. */
    enabled: z.union([z.boolean(), z.enum(['on', 'off']).transform((v) => v === 'on')]).default(true),
    host: z.string().min(1).default('127.0.0.1'),
    port: wholeNumber(0, 65_535).default(8765),
    /** Required whenever `host` is not loopback. */
    token: z.string().min(16, 'use at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
    tokenFile: z.string().min(1).optional(),
    /** Browser origins allowed to call /mcp (besides none); non-browser clients send no Origin. */
    allowedOrigins: z
      .union([
        z.array(z.string()),
        z.string().transform((s) =>
          s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        ),
      ])
      .default([]),
    /** Host header values accepted besides the bind address itself (e.g. a reverse proxy's name). */
    allowedHosts: z
      .union([
        z.array(z.string()),
        z.string().transform((s) =>
          s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        ),
      ])
      .default([]),
    maxBodyBytes: wholeNumber(1_024, 16 * 2 ** 20).default(2 ** 20),
    /** /readyz fails when a cluster's last successful sync is older than this (0: 4 sync intervals, at least 60 s). */
    readyMaxAgeSeconds: wholeNumber(0, 86_400).default(0),
  })
  .strict();

const FileSchema = z
  .object({
    dataDir: z.string().min(1).optional(),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).optional() })
      .strict()
      .optional(),
    clusters: z.array(z.record(z.string(), z.unknown())).optional(),
    sync: z.record(z.string(), z.unknown()).optional(),
    snapshots: z.record(z.string(), z.unknown()).optional(),
    retention: z.record(z.string(), z.unknown()).optional(),
    mcp: z
      .object({ http: z.record(z.string(), z.unknown()).optional() })
      .strict()
      .optional(),
  })
  .strict();

/** Environment variables for the `sync` and `snapshots` sections. */
const SECTION_ENV = {
  sync: {
    intervalSeconds: 'SYNC_INTERVAL_SECONDS',
    cycleTimeoutSeconds: 'SYNC_CYCLE_TIMEOUT_SECONDS',
    sweepPeriodMinutes: 'SYNC_SWEEP_PERIOD_MINUTES',
    sweepEverySeconds: 'SYNC_SWEEP_EVERY_SECONDS',
  },
  snapshots: { schedule: 'SNAPSHOT_SCHEDULE', keep: 'SNAPSHOT_KEEP', maxAgeDays: 'SNAPSHOT_MAX_AGE_DAYS' },
  retention: { syncRunsDays: 'RETENTION_SYNC_RUNS_DAYS', eventsDays: 'RETENTION_EVENTS_DAYS' },
  'mcp.http': {
    enabled: 'MCP_HTTP',
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
  host: string;
  port: number;
  token: Secret | undefined;
  allowedOrigins: string[];
  allowedHosts: string[];
  maxBodyBytes: number;
  readyMaxAgeSeconds: number;
}

export interface ClusterConfig {
  name: string;
  url: string;
  tokenId: string;
  tokenSecret: Secret;
  tls: { ca?: string; caFile?: string; fingerprint?: string; insecure: boolean };
  timeoutMs: number;
  concurrency: number;
}

export interface Config {
  dataDir: string;
  /** The inventory database: `<dataDir>/inventory.db`. */
  dbPath: string;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  clusters: ClusterConfig[];
  sync: SyncConfig;
  snapshots: SnapshotsConfig;
  retention: RetentionConfig;
  mcp: { http: McpHttpConfig };
}

/** Parses the `sync` or `snapshots` section: file values, then the environment's. */
function section<S extends z.ZodType>(
  name: keyof typeof SECTION_ENV,
  schema: S,
  fromFile: Record<string, unknown> | undefined,
  env: Env,
  problems: string[],
): z.infer<S> | undefined {
  const raw: Record<string, unknown> = { ...fromFile };
  const vars: Record<string, string> = SECTION_ENV[name];
  for (const [key, variable] of Object.entries(vars))
    if (env[variable] !== undefined && env[variable] !== '') raw[key] = env[variable];
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? '');
    const where = vars[key] && env[vars[key]] !== undefined ? vars[key] : `${name}.${key}`;
    problems.push(`${key ? where : name}: ${issue.message}`);
  }
  return undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
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

function envBool(value: string | undefined): boolean | string | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return value; // left as text so the schema reports it
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
    insecure: envBool(env.PVE_INSECURE),
    timeoutMs: env.PVE_TIMEOUT_MS,
    concurrency: env.PVE_CONCURRENCY,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== ''));
}

/** Keys that are alternatives: the environment setting one replaces the file's others. */
const ALTERNATIVES = [
  ['tokenSecret', 'tokenSecretFile'],
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
 * Checks beyond the schema (secret source, plain http, trust settings). They run on the raw
 * values even when the schema already failed, so one run reports every problem.
 */
function checkCluster(
  raw: Record<string, unknown>,
  keyName: (key: string) => string,
  baseDir: string,
  problems: string[],
): { secret?: string; ca?: string; fingerprint?: string } {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const out: { secret?: string; ca?: string; fingerprint?: string } = {};
  const [secret, secretFile, caFile, fingerprint, url] = [
    str(raw.tokenSecret),
    str(raw.tokenSecretFile),
    str(raw.caFile),
    str(raw.fingerprint),
    str(raw.url),
  ];

  if (out.secret !== undefined) out.secret = out.secret.trim();
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
        `${keyName('fingerprint')}: expected the SHA-256 fingerprint as 32 colon-separated hex bytes (run \`pvenode cert info\` on the node and copy "Fingerprint (sha256)")`,
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
  if (raw.insecure === true && (caFile || fingerprint))
    problems.push(
      `${keyName('insecure')}: contradicts the configured ${caFile ? 'caFile' : 'fingerprint'}; remove insecure`,
    );
  return out;
}

/** The HTTP endpoint's settings: a token is mandatory off loopback, and the readiness window has a default. */
function mcpHttp(
  raw: z.infer<typeof McpHttpSchema> | undefined,
  sync: SyncConfig | undefined,
  baseDir: string,
  problems: string[],
): McpHttpConfig | undefined {
  if (!raw) return undefined;
  let token = raw.token;
  if (raw.token && raw.tokenFile)
    problems.push('MCP_BEARER_TOKEN and MCP_BEARER_TOKEN_FILE (mcp.http.token / tokenFile): set only one');
  else if (raw.tokenFile)
    token = readSecretFile(
      isAbsolute(raw.tokenFile) ? raw.tokenFile : resolve(baseDir, raw.tokenFile),
      'MCP_BEARER_TOKEN_FILE (mcp.http.tokenFile)',
      problems,
    );
  if (raw.enabled && !isLoopbackHost(raw.host) && !token) {
    problems.push(
      `MCP_HTTP_HOST (mcp.http.host): ${raw.host} is reachable from other machines; set MCP_BEARER_TOKEN (or MCP_BEARER_TOKEN_FILE) so /mcp requires it, or listen on 127.0.0.1`,
    );
  }
  const readyMaxAgeSeconds = raw.readyMaxAgeSeconds || Math.max(60, 4 * (sync?.intervalSeconds ?? 15));
  return { ...raw, token: token ? new Secret(token) : undefined, readyMaxAgeSeconds };
}

export interface LoadConfigOptions {
  env: Env;
  /** From `--config`; overrides PROXMOX_INVENTORY_CONFIG. */
  configPath?: string;
  /** Needs no Proxmox cluster (e.g. `sim`). */
  clustersOptional?: boolean;
  cwd?: string;
}

export function loadConfig({
  env,
  configPath,
  clustersOptional = false,
  cwd = process.cwd(),
}: LoadConfigOptions): Config {
  const problems: string[] = [];
  const path = configPath ?? env.PROXMOX_INVENTORY_CONFIG;
  let file: z.infer<typeof FileSchema> = {};
  let baseDir = cwd;
  if (path) {
    const absolute = isAbsolute(path) ? path : resolve(cwd, path);
    baseDir = resolve(absolute, '..');
    const raw = readConfigFile(absolute, problems);
    const parsed = FileSchema.safeParse(raw);
    if (parsed.success) file = parsed.data;
    else {
      for (const issue of parsed.error.issues)
        problems.push(`config file ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
      // Still check the clusters, so one run reports their problems too.
      const clusters = (raw as { clusters?: unknown })?.clusters;
      if (Array.isArray(clusters))
        file = { clusters: clusters.filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null) };
    }
  }

  const rawClusters: Array<{ raw: Record<string, unknown>; fromEnv: boolean; index: number }> = (
    file.clusters ?? []
  ).map((raw, index) => ({ raw, fromEnv: false, index }));
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
        if (!key) problems.push(`${label}: ${issue.message}`);
        else if (issue.code === 'unrecognized_keys') problems.push(`${label}: ${issue.message}`);
        else
          problems.push(
            `${keyName(key)}: ${raw[key] === undefined ? 'missing; expected' : 'expected'} ${EXPECTED[key] ?? issue.message}`,
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
    });
  }
  if (rawClusters.length === 0 && !clustersOptional && !problems.some((p) => p.startsWith('config file'))) {
    problems.push(
      'no Proxmox cluster configured: set PVE_URL, PVE_TOKEN_ID and PVE_TOKEN_SECRET (or PVE_TOKEN_SECRET_FILE), or list clusters in a config file (PROXMOX_INVENTORY_CONFIG)',
    );
  }

  const level = env.LOG_LEVEL ?? file.log?.level ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
  if (!(levels as readonly string[]).includes(level))
    problems.push(`LOG_LEVEL: "${level}" is not one of ${levels.join(', ')}`);

  const sync = section('sync', SyncSchema, file.sync, env, problems);
  const snapshots = section('snapshots', SnapshotsSchema, file.snapshots, env, problems);
  const retention = section('retention', RetentionSchema, file.retention, env, problems);
  const http = mcpHttp(section('mcp.http', McpHttpSchema, file.mcp?.http, env, problems), sync, baseDir, problems);

  if (problems.length || !sync || !snapshots || !retention || !http) throw new ConfigError(problems);
  const dataDirText = env.DATA_DIR ?? file.dataDir ?? './data';
  const dataDir = isAbsolute(dataDirText) ? dataDirText : resolve(env.DATA_DIR ? cwd : baseDir, dataDirText);
  return {
    dataDir,
    dbPath: resolve(dataDir, 'inventory.db'),
    log: { level: level as Config['log']['level'] },
    clusters,
    sync,
    snapshots,
    retention,
    mcp: { http },
  };
}
