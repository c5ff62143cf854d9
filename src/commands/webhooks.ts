/**
 * `webhooks …`: subscriptions and their deliveries from the shell. Everything here reads and
 * writes the inventory database; the running `serve` relays events and delivers, and picks up
 * what these commands change (new rows at once, replayed deliveries within its reconciler's 30 s).
 * A secret is printed once, when it is made, and never again: not by list, show or any error.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import { configFromEnv } from './config-env.js';
import { clusterProblem, descriptionProblem, tagProblem } from '../config-webhooks.js';
import { localPrincipal } from '../principal.js';
import type { Store } from '../store/db.js';
import { withStore } from './with-store.js';
import { newEventId } from '../store/events.js';
import { deliveryCounts, eventById } from '../store/webhook-admin.js';
import {
  addSubscription,
  failedCounts,
  getSubscription,
  listDeliveries,
  listSubscriptions,
  removeSubscription,
  replayEvents,
  updateSubscription,
  type DeliveryRow,
  type EventRow,
  type SubscriptionRow,
} from '../store/webhooks.js';
import { subscriptionKey } from '../webhooks/config-subscriptions.js';
import { deliver, type DeliveryOutcome } from '../webhooks/deliver.js';
import { envelopeBody } from '../webhooks/envelope.js';
import { parseEventGlobs } from '../webhooks/event-globs.js';
import { generateWebhookSecret, signingSecrets, webhookSecretKey } from '../webhooks/secret.js';
import { checkWebhookUrl, createAddressPolicy, createWebhookAgent } from '../webhooks/ssrf.js';

const out = (line: string): boolean => process.stdout.write(`${line}\n`);
const err = (line: string): boolean => process.stderr.write(`${line}\n`);

/** "The webhook URL is …." → "the webhook URL is …", to follow "webhooks add: ". */
const sentence = (message: string): string => message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, '');
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The subscription an id names, or a sentence on stderr (exit 1) saying how to find one. */
function found(store: Store, command: string, id: string): SubscriptionRow | undefined {
  const row = getSubscription(store, id);
  if (!row) err(`webhooks ${command}: no subscription ${id}; \`webhooks list\` shows them`);
  return row;
}

export interface AddOptions {
  url: string;
  events: string | undefined;
  cluster?: string;
  tag?: string;
  description?: string;
  secretFile?: string;
}

/** The new row's fields, or the sentence saying which one is wrong and how to fix it. */
function checkAdd(
  config: Config,
  o: AddOptions,
): { fields: Omit<Parameters<typeof addSubscription>[1], 'secret' | 'source'> } | { problem: string } {
  let url: string;
  try {
    url = checkWebhookUrl(o.url, {
      policy: createAddressPolicy(config.webhooks.allowCidrs),
      allowHttp: config.webhooks.allowHttp,
    }).href;
  } catch (e) {
    return { problem: sentence((e as Error).message) };
  }
  if (o.events === undefined)
    return { problem: "--events is required: the event types or globs to send, e.g. --events 'guest.*,action.failed'" };
  const events = parseEventGlobs(o.events);
  if ('problem' in events) return { problem: `--events: ${events.problem}` };
  const clusters = config.clusters.map((c) => c.name);
  const problems: Array<[string, string | undefined]> = [
    ['--cluster', o.cluster === undefined ? undefined : clusterProblem(o.cluster, clusters)],
    ['--tag', o.tag === undefined ? undefined : tagProblem(o.tag)],
    ['--description', o.description === undefined ? undefined : descriptionProblem(o.description)],
  ];
  const problem = problems.find(([, p]) => p);
  if (problem) return { problem: `${problem[0]}: ${problem[1]}` };
  return {
    fields: {
      url,
      events: events.globs,
      cluster: o.cluster ?? null,
      tag: o.tag?.toLowerCase() ?? null,
      description: o.description ?? null,
    },
  };
}

/** The secret in a file (--secret-file), checked; or the sentence saying what is wrong (never the file's text). */
function secretFromFile(file: string): { secret: string } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    return {
      problem: `--secret-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`,
    };
  }
  try {
    webhookSecretKey(text);
    return { secret: text };
  } catch (e) {
    return { problem: `--secret-file ${file}: ${sentence((e as Error).message)}` };
  }
}

function printSecretOnce(id: string, secret: string, what: string): void {
  out(`secret: ${secret}`);
  err(
    `webhooks: store this secret now (${what}); it is not shown again. Receivers verify the webhook-signature header with it; \`webhooks rotate-secret ${id}\` makes a new one.`,
  );
}

/** `webhooks add URL --events GLOBS [--cluster NAME] [--tag TAG] [--description TEXT] [--secret-file FILE]`. */
export function runWebhooksAdd(configPath: string | undefined, o: AddOptions): number {
  const config = configFromEnv(configPath);
  const checked = checkAdd(config, o);
  if ('problem' in checked) {
    err(`webhooks add: ${checked.problem}`);
    return 2;
  }
  const given = o.secretFile === undefined ? undefined : secretFromFile(o.secretFile);
  if (given && 'problem' in given) {
    err(`webhooks add: ${given.problem}`);
    return 2;
  }
  const secret = given?.secret ?? generateWebhookSecret();
  return withStore(config, (store) => {
    const key = subscriptionKey({
      ...checked.fields,
      cluster: checked.fields.cluster ?? undefined,
      tag: checked.fields.tag ?? undefined,
    });
    const twin = listSubscriptions(store).find((row) => subscriptionKey(rowIdentity(row)) === key);
    if (twin) {
      err(
        `webhooks add: ${twin.id} already sends these events to this URL with the same filters; \`webhooks show ${twin.id}\` shows it`,
      );
      return 1;
    }
    const row = addSubscription(store, { ...checked.fields, secret, source: 'cli' }, Date.now());
    out(`${row.id} added: ${describeSubscription(row)}`);
    if (!given) printSecretOnce(row.id, secret, 'it was generated for this subscription');
    return 0;
  });
}

const rowIdentity = (row: SubscriptionRow) => ({
  url: row.url,
  events: JSON.parse(row.events) as string[],
  cluster: row.cluster ?? undefined,
  tag: row.tag ?? undefined,
});

/** "guest.*, action.failed (cluster prod, tag web) → https://…". */
function describeSubscription(row: SubscriptionRow): string {
  const filters = [row.cluster && `cluster ${row.cluster}`, row.tag && `tag ${row.tag}`].filter(Boolean);
  const events = (JSON.parse(row.events) as string[]).join(', ');
  return `${events}${filters.length ? ` (${filters.join(', ')})` : ''} → ${row.url}`;
}

function health(row: SubscriptionRow, failed: number): string {
  const parts = [
    row.enabled ? 'enabled' : `disabled (${row.disabledReason ?? 'no reason recorded'})`,
    row.lastSuccessAt ? `last success ${iso(row.lastSuccessAt)}` : 'no success yet',
    row.failingSince ? `failing since ${iso(row.failingSince)}` : undefined,
    failed ? `${failed} failed (replayable)` : undefined,
  ];
  return parts.filter(Boolean).join('; ');
}

/** `webhooks list`: one line each, oldest first; never a secret. */
export function runWebhooksList(configPath: string | undefined): number {
  const config = configFromEnv(configPath, true);
  withStore(config, (store) => {
    const rows = listSubscriptions(store);
    const failed = failedCounts(store);
    if (!rows.length) out('no webhook subscriptions; `webhooks add URL --events GLOBS` adds one');
    for (const row of rows) {
      const description = row.description ? `  ${JSON.stringify(row.description)}` : '';
      out(
        `${row.id}  ${row.source}  ${describeSubscription(row)}  ${health(row, failed.get(row.id) ?? 0)}${description}`,
      );
    }
  });
  return 0;
}

/** `webhooks show ID`: the row without its secrets, with its deliveries counted. */
export function runWebhooksShow(configPath: string | undefined, id: string): number {
  const config = configFromEnv(configPath, true);
  return withStore(config, (store) => {
    const row = found(store, 'show', id);
    if (!row) return 1;
    const { secret: _secret, previousSecret: _previous, previousSecretUntil, ...rest } = row;
    const rotating = signingSecrets(row, Date.now()).length > 1;
    const shown = {
      ...rest,
      events: JSON.parse(row.events) as string[],
      previousSecretSignsUntil: rotating ? iso(previousSecretUntil) : null,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
      lastSuccessAt: iso(row.lastSuccessAt),
      failingSince: iso(row.failingSince),
      deliveries: deliveryCounts(store, row.id),
    };
    out(JSON.stringify(shown, null, 2));
    return 0;
  });
}

/** `webhooks disable ID` / `webhooks enable ID`. */
export function runWebhooksSetEnabled(configPath: string | undefined, id: string, enabled: boolean): number {
  const config = configFromEnv(configPath, true);
  const command = enabled ? 'enable' : 'disable';
  return withStore(config, (store) => {
    const row = found(store, command, id);
    if (!row) return 1;
    // Nothing to change: said so, and a disabled one keeps the reason it was disabled for.
    if (row.enabled === enabled) {
      out(
        `${id} is already ${enabled ? 'enabled' : `disabled (${row.disabledReason ?? 'no reason recorded'})`}; nothing changed`,
      );
      return 0;
    }
    const fields = enabled
      ? // A fresh start: a streak of failures from before must not disable it again at once.
        { enabled: true, disabledReason: null, failingSince: null }
      : { enabled: false, disabledReason: `disabled by ${localPrincipal()} from the command line` };
    updateSubscription(store, id, fields, Date.now());
    out(
      enabled
        ? `${id} enabled; its pending deliveries go out again, events from while it was disabled were not kept for it (\`webhooks replay ${id} --since TIME\` sends them)`
        : `${id} disabled; events are not relayed to it until \`webhooks enable ${id}\``,
    );
    return 0;
  });
}

/** The sentence for a change the config file would undo at the next start. */
const fromConfig = (command: string, row: SubscriptionRow): string =>
  `webhooks ${command}: ${row.id} comes from the config file (webhooks.subscriptions); change it there and restart serve`;

/** `webhooks remove ID`: the subscription and its delivery history. */
export function runWebhooksRemove(configPath: string | undefined, id: string): number {
  const config = configFromEnv(configPath, true);
  return withStore(config, (store) => {
    const row = found(store, 'remove', id);
    if (!row) return 1;
    if (row.source === 'config') {
      err(fromConfig('remove', row));
      return 1;
    }
    removeSubscription(store, id);
    out(`${id} removed, with its delivery history`);
    return 0;
  });
}

/**
 * `webhooks rotate-secret ID [--secret-file FILE]`: a new secret (printed once when generated);
 * the old one keeps signing beside it for WEBHOOK_ROTATION_GRACE_HOURS, so receivers can switch
 * without losing a message.
 */
export function runWebhooksRotateSecret(configPath: string | undefined, id: string, secretFile?: string): number {
  const config = configFromEnv(configPath, true);
  const given = secretFile === undefined ? undefined : secretFromFile(secretFile);
  if (given && 'problem' in given) {
    err(`webhooks rotate-secret: ${given.problem}`);
    return 2;
  }
  return withStore(config, (store) => {
    const row = found(store, 'rotate-secret', id);
    if (!row) return 1;
    if (row.source === 'config') {
      err(fromConfig('rotate-secret', row));
      return 1;
    }
    const now = Date.now();
    const secret = given?.secret ?? generateWebhookSecret();
    const graceMs = config.webhooks.rotationGraceMs;
    updateSubscription(
      store,
      id,
      {
        secret,
        previousSecret: graceMs > 0 ? row.secret : null,
        previousSecretUntil: graceMs > 0 ? now + graceMs : null,
      },
      now,
    );
    out(
      graceMs > 0
        ? `${id}: new secret; the old one also signs every message until ${iso(now + graceMs)} (WEBHOOK_ROTATION_GRACE_HOURS)`
        : `${id}: new secret; the old one no longer signs (WEBHOOK_ROTATION_GRACE_HOURS is 0)`,
    );
    if (!given) printSecretOnce(id, secret, 'the new one');
    return 0;
  });
}

/** The envelope `webhooks test` sends: type webhook.test, seq 0 (it is not in the history). */
function testEvent(row: SubscriptionRow, now: number): EventRow {
  return {
    seq: 0,
    id: newEventId(),
    type: 'webhook.test',
    occurredAt: now,
    cluster: row.cluster,
    subjectKind: 'webhook',
    subjectId: row.id,
    data: JSON.stringify({ subscription: row.id, test: true, description: row.description }),
  };
}

function describeOutcome(o: DeliveryOutcome): string {
  const status = o.status === undefined ? '' : ` (HTTP ${o.status})`;
  if (o.kind === 'success') return `delivered${status} in ${o.durationMs} ms`;
  return `${o.kind}${status} after ${o.durationMs} ms: ${o.error ?? 'no answer'}`;
}

/**
 * `webhooks test ID`: one signed `webhook.test` envelope sent now, through the same SSRF guard and
 * deliver() as the worker uses, but not through the queue: no delivery row, no retry, the
 * subscription's health untouched. Works on a disabled subscription (to check before enabling).
 */
export async function runWebhooksTest(configPath: string | undefined, id: string): Promise<number> {
  const config = configFromEnv(configPath, true);
  const row = withStore(config, (store) => found(store, 'test', id));
  if (!row) return 1;
  const now = Date.now();
  const event = testEvent(row, now);
  const agent = createWebhookAgent({ policy: createAddressPolicy(config.webhooks.allowCidrs) });
  try {
    const outcome = await deliver({
      url: row.url,
      body: envelopeBody(event),
      id: event.id,
      timestamp: Math.floor(now / 1000),
      secrets: signingSecrets(row, now),
      agent,
      timeoutMs: config.webhooks.timeoutMs,
    });
    out(`${id} test ${event.id}: ${describeOutcome(outcome)}`);
    if (outcome.responseText) out(`answer: ${JSON.stringify(outcome.responseText.slice(0, 500))}`);
    return outcome.kind === 'success' ? 0 : 1;
  } finally {
    await agent.close();
  }
}

function deliveryLine(d: DeliveryRow, withSubscription: boolean): string {
  const cells = [
    d.id,
    d.state.padEnd(9),
    iso(d.createdAt),
    withSubscription ? d.subscriptionId : undefined,
    d.eventType,
    d.eventId,
    `attempts ${d.attempts}`,
    d.state === 'pending' && d.nextAttemptAt ? `next ${iso(d.nextAttemptAt)}` : undefined,
    d.lastStatus === null ? undefined : `HTTP ${d.lastStatus}`,
    d.lastError ?? undefined,
    // The receiver's text: quoted, so what it sent cannot move the terminal's cursor or fake a line.
    d.lastResponse ? `answer ${JSON.stringify(d.lastResponse.slice(0, 120))}` : undefined,
  ];
  return cells.filter((c) => c !== undefined).join('  ');
}

export interface DeliveriesOptions {
  id?: string;
  failed: boolean;
  since?: number;
  limit: number;
}

/** `webhooks deliveries [ID] [--failed] [--since TIME] [--limit N]`, newest first. */
export function runWebhooksDeliveries(configPath: string | undefined, o: DeliveriesOptions): number {
  const config = configFromEnv(configPath, true);
  return withStore(config, (store) => {
    if (o.id !== undefined && !found(store, 'deliveries', o.id)) return 1;
    const rows = listDeliveries(store, {
      subscriptionId: o.id,
      failedOnly: o.failed,
      since: o.since,
      limit: o.limit,
    });
    if (!rows.length) out(o.failed ? 'no failed deliveries' : 'no deliveries');
    for (const row of rows) out(deliveryLine(row, o.id === undefined));
    return 0;
  });
}

/**
 * `webhooks replay ID --since TIME | --event EVT`: new deliveries of past events (the filters apply
 * to --since; --event sends that event whatever they say). The running serve sends them.
 */
export function runWebhooksReplay(
  configPath: string | undefined,
  id: string,
  which: { since: number } | { eventId: string },
): number {
  const config = configFromEnv(configPath, true);
  return withStore(config, (store) => {
    const row = found(store, 'replay', id);
    if (!row) return 1;
    if ('eventId' in which && !eventById(store, which.eventId)) {
      err(
        `webhooks replay: no event ${which.eventId} in the history (kept RETENTION_EVENTS_DAYS days); \`webhooks deliveries ${id}\` lists the event ids`,
      );
      return 1;
    }
    const made = replayEvents(store, id, which, Date.now());
    if (!made.length) {
      out(
        `no event since ${iso((which as { since: number }).since)} matches ${id}'s events and filters; nothing queued`,
      );
      return 0;
    }
    out(
      `${made.length} ${made.length === 1 ? 'delivery' : 'deliveries'} queued for ${id}; a running serve sends them within 30 s`,
    );
    if (!row.enabled) out(`note: ${id} is disabled; they wait until \`webhooks enable ${id}\``);
    return 0;
  });
}
