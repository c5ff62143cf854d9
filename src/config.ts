/**
 * Configuration, parsed once at the edge. Sources, later wins: schema defaults < config file
 * (YAML or JSON, `PROXMOX_INVENTORY_CONFIG` or `--config`) < environment. A single cluster can be
 * configured from the environment alone (`PVE_URL`, `PVE_TOKEN_ID`, `PVE_TOKEN_SECRET[_FILE]`…);
 * several need the file. Every problem is collected and reported at once, naming the key (and
 * the environment variable, where one sets it) and the fix. Secrets are wrapped in `Secret`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { normalizeFingerprint } from './proxmox/tls.js';
import { Secret } from './secret.js';

export type Env = Record<string, string | undefined>;

const TOKEN_ID_RE = /^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/i;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

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
    timeoutMs: z.coerce.number().int().min(100).max(600_000).default(15_000),
    concurrency: z.coerce.number().int().min(1).max(64).default(8),
  })
  .strict();

const FileSchema = z
  .object({
    dataDir: z.string().min(1).optional(),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).optional() }).strict().optional(),
    clusters: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .strict();

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
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  clusters: ClusterConfig[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map((p) => `  - ${p}`).join('\n'));
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
    problems.push(`${label}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`);
    return undefined;
  }
}

function envBool(value: string | undefined): boolean | string | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return value; // left as text so the schema reports it
}

/** The cluster the environment describes, or the env overrides for a file cluster of the same name. */
function clusterFromEnv(env: Env): Record<string, unknown> | undefined {
  const fields: Record<string, unknown> = {
    url: env.PVE_URL,
    tokenId: env.PVE_TOKEN_ID,
    tokenSecret: env.PVE_TOKEN_SECRET,
    tokenSecretFile: env.PVE_TOKEN_SECRET_FILE,
    caFile: env.PVE_CA_FILE,
    fingerprint: env.PVE_FINGERPRINT,
    insecure: envBool(env.PVE_INSECURE),
    timeoutMs: env.PVE_TIMEOUT_MS,
    concurrency: env.PVE_CONCURRENCY,
  };
  const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== ''));
  if (Object.keys(set).length === 0) return undefined;
  return { name: env.PVE_CLUSTER_NAME || 'default', ...set };
}

function readConfigFile(path: string, problems: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`config file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'}); check PROXMOX_INVENTORY_CONFIG / --config`);
    return {};
  }
  try {
    return (/\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text)) ?? {};
  } catch (err) {
    problems.push(`config file ${path}: not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
    return {};
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Checks beyond the schema (secret source, plain http, trust settings). They run on the raw
 * values even when the schema already failed, so one run reports every problem.
 */
function checkCluster(raw: Record<string, unknown>, keyName: (key: string) => string, baseDir: string, problems: string[]): { secret?: string; ca?: string; fingerprint?: string } {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const out: { secret?: string; ca?: string; fingerprint?: string } = {};
  const [secret, secretFile, caFile, fingerprint, url] = [str(raw.tokenSecret), str(raw.tokenSecretFile), str(raw.caFile), str(raw.fingerprint), str(raw.url)];

  if (secret && secretFile) problems.push(`${keyName('tokenSecret')} and ${keyName('tokenSecretFile')}: set only one`);
  else if (secretFile) out.secret = readSecretFile(at(secretFile), keyName('tokenSecretFile'), problems);
  else if (secret) out.secret = secret;
  else problems.push(`${keyName('tokenSecret')}: missing; set the API token secret (or ${keyName('tokenSecretFile')} to a file holding it)`);

  if (url && URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' && !LOOPBACK_HOSTS.has(parsed.hostname)) problems.push(`${keyName('url')}: plain http would send the API token unencrypted; use https://${parsed.host}:8006`);
  }
  if (fingerprint !== undefined) {
    out.fingerprint = normalizeFingerprint(fingerprint);
    if (!out.fingerprint) problems.push(`${keyName('fingerprint')}: expected the SHA-256 fingerprint as 32 colon-separated hex bytes (run \`pvenode cert info\` on the node and copy "Fingerprint (sha256)")`);
  }
  if (caFile) {
    try {
      out.ca = readFileSync(at(caFile), 'utf8');
      if (!out.ca.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${keyName('caFile')}: ${caFile} holds no PEM certificate; copy /etc/pve/pve-root-ca.pem from a node`);
    } catch (err) {
      problems.push(`${keyName('caFile')}: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (caFile && fingerprint) problems.push(`${keyName('caFile')} and ${keyName('fingerprint')}: choose one way to trust the node certificate`);
  if (raw.insecure === true && (caFile || fingerprint)) problems.push(`${keyName('insecure')}: contradicts the configured ${caFile ? 'caFile' : 'fingerprint'}; remove insecure`);
  return out;
}

export interface LoadConfigOptions {
  env: Env;
  /** From `--config`; overrides PROXMOX_INVENTORY_CONFIG. */
  configPath?: string;
  /** Needs no Proxmox cluster (e.g. `sim`). */
  clustersOptional?: boolean;
  cwd?: string;
}

export function loadConfig({ env, configPath, clustersOptional = false, cwd = process.cwd() }: LoadConfigOptions): Config {
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
      for (const issue of parsed.error.issues) problems.push(`config file ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
      // Still check the clusters, so one run reports their problems too.
      const clusters = (raw as { clusters?: unknown })?.clusters;
      if (Array.isArray(clusters)) file = { clusters: clusters.filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null) };
    }
  }

  const rawClusters: Array<{ raw: Record<string, unknown>; fromEnv: boolean; index: number }> = (file.clusters ?? []).map((raw, index) => ({ raw, fromEnv: false, index }));
  const envCluster = clusterFromEnv(env);
  if (envCluster) {
    const same = rawClusters.find((c) => c.raw.name === envCluster.name);
    if (same) Object.assign(same.raw, envCluster);
    else rawClusters.push({ raw: envCluster, fromEnv: true, index: rawClusters.length });
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
        const message = issue.code === 'invalid_type' && issue.input === undefined ? 'missing' : issue.message;
        problems.push(`${key ? keyName(key) : label}: ${message}`);
      }
    }
    const checked = checkCluster(raw, keyName, baseDir, problems);
    if (!parsed.success || !checked.secret) continue;
    const c = parsed.data;
    if (names.has(c.name)) problems.push(`${keyName('name')}: cluster name "${c.name}" is used twice; names must be unique`);
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
    problems.push('no Proxmox cluster configured: set PVE_URL, PVE_TOKEN_ID and PVE_TOKEN_SECRET (or PVE_TOKEN_SECRET_FILE), or list clusters in a config file (PROXMOX_INVENTORY_CONFIG)');
  }

  const level = env.LOG_LEVEL ?? file.log?.level ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
  if (!(levels as readonly string[]).includes(level)) problems.push(`LOG_LEVEL: "${level}" is not one of ${levels.join(', ')}`);

  if (problems.length) throw new ConfigError(problems);
  const dataDir = env.DATA_DIR ?? file.dataDir ?? './data';
  return { dataDir: isAbsolute(dataDir) ? dataDir : resolve(env.DATA_DIR ? cwd : baseDir, dataDir), log: { level: level as Config['log']['level'] }, clusters };
}
