/**
 * The webhook settings (WEBHOOK_* and the file's `webhooks:` section) and the subscriptions the
 * config file declares: read by config.ts with the rest, problems reported with the others, each
 * naming its variable or key. A subscription's URL is held to the rules `webhooks add` applies, and
 * its secret comes from a file (never from the config text) and is never quoted back.
 */
import { isAbsolute, resolve } from 'node:path';
import type { ReadWholeNumber, WholeNumberSpec } from './config.js';
import { quoteValue, withValue } from './config-value.js';
import { Secret } from './secret.js';
import { subscriptionKey } from './webhooks/config-subscriptions.js';
import { parseEventGlobs } from './webhooks/event-globs.js';
import { DEFAULT_RETRY_SCHEDULE_MS, parseRetrySchedule } from './webhooks/schedule.js';
import { webhookSecretKey } from './webhooks/secret.js';
import { checkWebhookUrl, createAddressPolicy, type AddressPolicy } from './webhooks/ssrf.js';

export interface WebhookSubscriptionConfig {
  url: string;
  events: string[];
  cluster?: string;
  tag?: string;
  description?: string;
  secret: Secret;
}

export interface WebhooksConfig {
  /** WEBHOOK_ALLOW_CIDRS: ranges webhooks may reach although private (logged at start by serve). */
  allowCidrs: string[];
  /** WEBHOOK_ALLOW_HTTP: plain http: targets off loopback. */
  allowHttp: boolean;
  /** WEBHOOK_TIMEOUT_SECONDS: one attempt, connect to last byte. */
  timeoutMs: number;
  /** WEBHOOK_RETRY_SCHEDULE: delay before attempt 1, 2, …; its length is the number of attempts. */
  schedule: number[];
  /** WEBHOOK_DISABLE_AFTER_DAYS: failing this long without a success disables a subscription. */
  disableAfterMs: number;
  /** WEBHOOK_ROTATION_GRACE_HOURS: after rotate-secret, the old secret signs too for this long. */
  rotationGraceMs: number;
  /** The config file's `webhooks.subscriptions` (source `config`). */
  subscriptions: WebhookSubscriptionConfig[];
}

export const WEBHOOKS_ENV = {
  allowCidrs: 'WEBHOOK_ALLOW_CIDRS',
  allowHttp: 'WEBHOOK_ALLOW_HTTP',
  timeoutSeconds: 'WEBHOOK_TIMEOUT_SECONDS',
  retrySchedule: 'WEBHOOK_RETRY_SCHEDULE',
  disableAfterDays: 'WEBHOOK_DISABLE_AFTER_DAYS',
  rotationGraceHours: 'WEBHOOK_ROTATION_GRACE_HOURS',
} as const;

const SECTION_KEYS = [...Object.keys(WEBHOOKS_ENV), 'subscriptions'];
const SUBSCRIPTION_KEYS = ['url', 'events', 'cluster', 'tag', 'description', 'secretFile'];

/** config.ts's own readers, passed in rather than imported (config.ts imports this file). */
export interface ConfigHelpers {
  readSecretFile: (path: string, label: string, problems: string[]) => string | undefined;
  unknownKey: (key: string, valid: readonly string[]) => string;
  /** true/false/yes/no/1/0/on/off; undefined for anything else. */
  parseFlag: (value: unknown) => boolean | undefined;
  readWholeNumber: ReadWholeNumber;
}

type Where = (key: string) => string;

const WHOLE: Record<'timeoutSeconds' | 'disableAfterDays' | 'rotationGraceHours', WholeNumberSpec> = {
  timeoutSeconds: { min: 1, max: 300, example: 15, unit: 'seconds' },
  disableAfterDays: { min: 1, max: 365, example: 5, unit: 'days' },
  rotationGraceHours: { min: 0, max: 720, example: 24, unit: 'hours', zero: 'retires the old secret at once' },
};

const CIDR_EXPECTED = 'address ranges like 192.168.1.0/24 or fd00::/8 (a list, or separated by commas)';

/** WEBHOOK_ALLOW_CIDRS: each range checked on its own, so one typo names itself and the rest still apply. */
function allowCidrs(value: unknown, where: string, problems: string[]): string[] {
  if (value === undefined || value === null) return [];
  const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (!items) {
    problems.push(`${where}: ${withValue(where, value, `expected ${CIDR_EXPECTED}`)}`);
    return [];
  }
  const out: string[] = [];
  for (const item of items) {
    const text = typeof item === 'string' ? item.trim() : '';
    if (typeof item === 'string' && !text) continue;
    try {
      out.push(...createAddressPolicy([text]).allowCidrs);
    } catch {
      problems.push(`${where}: ${quoteValue(where, item)} is not an address or CIDR range; expected ${CIDR_EXPECTED}`);
    }
  }
  return out;
}

const SCHEDULE_EXAMPLE = '"0, 5s, 5m, 30m, 2h, 5h, 10h, 10h"';

function retrySchedule(value: unknown, where: string, problems: string[]): number[] {
  if (value === undefined || value === null || value === '') return [...DEFAULT_RETRY_SCHEDULE_MS];
  const items = Array.isArray(value) ? value : [value];
  if (!items.every((item) => typeof item === 'string' || typeof item === 'number')) {
    problems.push(
      `${where}: ${withValue(where, value, `expected delays separated by commas, such as ${SCHEDULE_EXAMPLE} (the default)`)}`,
    );
    return [...DEFAULT_RETRY_SCHEDULE_MS];
  }
  try {
    return parseRetrySchedule(items.join(','));
  } catch (err) {
    problems.push(`${where}: ${sentence((err as Error).message)}`);
    return [...DEFAULT_RETRY_SCHEDULE_MS];
  }
}

/** "The webhook URL is …." → "the webhook URL is …", to follow "key: ". */
const sentence = (message: string): string => message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, '');

/** The `webhooks` section: file values, then the environment's. */
export function webhooksConfig(
  file: Record<string, unknown> | undefined,
  env: Record<string, string | undefined>,
  context: { baseDir: string; clusterNames: readonly string[] },
  problems: string[],
  helpers: ConfigHelpers,
): WebhooksConfig {
  for (const key of Object.keys(file ?? {}))
    if (!SECTION_KEYS.includes(key)) problems.push(`webhooks: ${helpers.unknownKey(key, SECTION_KEYS)}`);
  const raw: Record<string, unknown> = { ...file };
  const fromEnv = new Set<string>();
  for (const [key, variable] of Object.entries(WEBHOOKS_ENV))
    if (env[variable] !== undefined && env[variable] !== '') {
      raw[key] = env[variable];
      fromEnv.add(key);
    }
  const where: Where = (key) => (fromEnv.has(key) ? WEBHOOKS_ENV[key as keyof typeof WEBHOOKS_ENV] : `webhooks.${key}`);

  const cidrs = allowCidrs(raw.allowCidrs, where('allowCidrs'), problems);
  let allowHttp = false;
  if (raw.allowHttp !== undefined && raw.allowHttp !== null) {
    const flag = helpers.parseFlag(raw.allowHttp);
    if (flag === undefined)
      problems.push(
        `${where('allowHttp')}: ${withValue('allowHttp', raw.allowHttp, 'expected true or false (also 1/0, yes/no, on/off, in any case)')}`,
      );
    allowHttp = flag ?? false;
  }
  const subscriptions = configSubscriptions(file?.subscriptions, problems, {
    ...context,
    policy: createAddressPolicy(cidrs),
    allowHttp,
    helpers,
  });
  const whole = (key: keyof typeof WHOLE): number =>
    helpers.readWholeNumber(raw[key], WHOLE[key], where(key), problems);
  return {
    allowCidrs: cidrs,
    allowHttp,
    timeoutMs: whole('timeoutSeconds') * 1000,
    schedule: retrySchedule(raw.retrySchedule, where('retrySchedule'), problems),
    disableAfterMs: whole('disableAfterDays') * 86_400_000,
    rotationGraceMs: whole('rotationGraceHours') * 3_600_000,
    subscriptions,
  };
}

interface SubscriptionContext {
  baseDir: string;
  clusterNames: readonly string[];
  policy: AddressPolicy;
  allowHttp: boolean;
  helpers: ConfigHelpers;
}

const SUBSCRIPTION_SHAPE = '{ url, events, secretFile } (and optionally cluster, tag, description)';

function configSubscriptions(
  value: unknown,
  problems: string[],
  context: SubscriptionContext,
): WebhookSubscriptionConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(
      `webhooks.subscriptions: ${withValue('subscriptions', value, `expected a list of ${SUBSCRIPTION_SHAPE}`)}`,
    );
    return [];
  }
  const out: WebhookSubscriptionConfig[] = [];
  const seen = new Map<string, number>();
  value.forEach((entry: unknown, index) => {
    const at = `webhooks.subscriptions[${index}]`;
    const parsed = configSubscription(entry, at, problems, context);
    if (!parsed) return;
    const key = subscriptionKey(parsed);
    const first = seen.get(key);
    if (first !== undefined)
      problems.push(
        `${at}: the same url, events, cluster and tag as webhooks.subscriptions[${first}]; list each subscription once`,
      );
    else {
      seen.set(key, index);
      out.push(parsed);
    }
  });
  return out;
}

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/i;
/** Proxmox's tag syntax (pve-tag). */
const TAG_RE = /^[a-z0-9_][a-z0-9_+.-]*$/i;
const DESCRIPTION_MAX = 200;
const CLUSTER_EXPECTED = 'a cluster name as in clusters[].name (letters, digits, "-" or "_")';
const TAG_EXPECTED = 'a Proxmox tag (letters, digits, "_", "-", "+", "."), e.g. prod';
const DESCRIPTION_EXPECTED = `one line of at most ${DESCRIPTION_MAX} characters`;

/** One entry of `webhooks.subscriptions`; every problem in it is reported, and it counts only without any. */
function configSubscription(
  entry: unknown,
  at: string,
  problems: string[],
  context: SubscriptionContext,
): WebhookSubscriptionConfig | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    problems.push(`${at}: expected a mapping ${SUBSCRIPTION_SHAPE}`);
    return undefined;
  }
  const e = entry as Record<string, unknown>;
  const before = problems.length;
  for (const key of Object.keys(e))
    if (!SUBSCRIPTION_KEYS.includes(key)) problems.push(`${at}: ${context.helpers.unknownKey(key, SUBSCRIPTION_KEYS)}`);
  const url = subscriptionUrl(e.url, `${at}.url`, problems, context);
  const events = subscriptionEvents(e.events, `${at}.events`, problems);
  const cluster = optionalText(e.cluster, `${at}.cluster`, problems, CLUSTER_EXPECTED, (name) =>
    clusterProblem(name, context.clusterNames),
  );
  const tag = optionalText(e.tag, `${at}.tag`, problems, TAG_EXPECTED, tagProblem);
  const description = optionalText(
    e.description,
    `${at}.description`,
    problems,
    DESCRIPTION_EXPECTED,
    descriptionProblem,
  );
  const secret = subscriptionSecret(e.secretFile, `${at}.secretFile`, problems, context);
  if (problems.length > before || !url || !events || !secret) return undefined;
  return {
    url,
    events,
    secret: new Secret(secret),
    ...(cluster ? { cluster } : {}),
    ...(tag ? { tag: tag.toLowerCase() } : {}),
    ...(description ? { description } : {}),
  };
}

function subscriptionUrl(
  value: unknown,
  label: string,
  problems: string[],
  context: SubscriptionContext,
): string | undefined {
  if (typeof value !== 'string' || !value) {
    problems.push(
      `${label}: ${value === undefined ? 'missing; expected' : 'expected'} the receiver's URL, e.g. https://hooks.example.com/proxmox`,
    );
    return undefined;
  }
  try {
    return checkWebhookUrl(value, { policy: context.policy, allowHttp: context.allowHttp }).href;
  } catch (err) {
    problems.push(`${label}: ${sentence((err as Error).message)}`);
    return undefined;
  }
}

function subscriptionEvents(value: unknown, label: string, problems: string[]): string[] | undefined {
  if (typeof value !== 'string' && !Array.isArray(value)) {
    problems.push(
      `${label}: ${value === undefined ? 'missing; expected' : 'expected'} event types or globs, e.g. [guest.*, action.failed]`,
    );
    return undefined;
  }
  const parsed = parseEventGlobs(value);
  if ('problem' in parsed) {
    problems.push(`${label}: ${parsed.problem}`);
    return undefined;
  }
  return parsed.globs;
}

export const tagProblem = (tag: string): string | undefined =>
  TAG_RE.test(tag) ? undefined : `expected ${TAG_EXPECTED}`;

export const descriptionProblem = (text: string): string | undefined =>
  text.length <= DESCRIPTION_MAX && ![...text].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)
    ? undefined
    : `expected ${DESCRIPTION_EXPECTED}`;

/** A cluster filter names a configured cluster: a typo would silently match no event. */
export function clusterProblem(name: string, names: readonly string[]): string | undefined {
  if (!NAME_RE.test(name)) return `expected ${CLUSTER_EXPECTED}`;
  if (names.length && !names.includes(name))
    return `"${name}" is not a configured cluster; the clusters are ${names.join(', ')}`;
  return undefined;
}

/** An optional text key: a string the check accepts, or a problem saying what it expects. */
function optionalText(
  value: unknown,
  label: string,
  problems: string[],
  expected: string,
  check: (text: string) => string | undefined = () => undefined,
): string | undefined {
  if (value === undefined || value === null) return undefined;
  const problem = typeof value === 'string' && value ? check(value) : `expected ${expected}`;
  if (problem) problems.push(`${label}: ${withValue(label, value, problem)}`);
  return problem ? undefined : (value as string);
}

/** The secret from its file: whsec_ + base64, never quoted back (a file holding something else may hold another secret). */
function subscriptionSecret(
  value: unknown,
  label: string,
  problems: string[],
  context: SubscriptionContext,
): string | undefined {
  if (typeof value !== 'string' || !value) {
    problems.push(
      `${label}: ${value === undefined ? 'missing; expected' : 'expected'} the path of a file holding the subscription's secret (e.g. echo "whsec_$(openssl rand -base64 32)" > hook.secret)`,
    );
    return undefined;
  }
  const path = isAbsolute(value) ? value : resolve(context.baseDir, value);
  const text = context.helpers.readSecretFile(path, label, problems);
  if (text === undefined) return undefined;
  try {
    webhookSecretKey(text);
    return text;
  } catch {
    problems.push(
      `${label}: the file ${path} does not hold a webhook secret; write whsec_ followed by base64 of 24 to 64 random bytes into it (e.g. echo "whsec_$(openssl rand -base64 32)" > ${value})`,
    );
    return undefined;
  }
}
