/**
 * The config file's subscriptions made rows (source `config`), so the relay and the worker treat
 * them like those added with `webhooks add`. A row is the same subscription when its URL, event
 * globs, cluster and tag are: it keeps its id, its delivery history and whether it is enabled
 * (a 410 or `webhooks disable` is not undone by a restart); rows the file no longer lists go.
 * Rows from the CLI are never touched.
 */
import type { WebhookSubscriptionConfig } from '../config-webhooks.js';
import type { Store } from '../store/db.js';
import {
  addSubscription,
  listSubscriptions,
  removeSubscription,
  updateSubscription,
  type SubscriptionRow,
} from '../store/webhooks.js';

type Identity = Pick<WebhookSubscriptionConfig, 'url' | 'events' | 'cluster' | 'tag'>;

/** What makes two subscriptions the same one: URL, event globs (in any order), cluster and tag. */
export function subscriptionKey(s: Identity): string {
  return JSON.stringify([s.url, [...new Set(s.events)].sort(), s.cluster ?? null, s.tag?.toLowerCase() ?? null]);
}

const rowKey = (row: SubscriptionRow): string =>
  subscriptionKey({
    url: row.url,
    events: JSON.parse(row.events) as string[],
    cluster: row.cluster ?? undefined,
    tag: row.tag ?? undefined,
  });

export interface ConfigSyncResult {
  added: number;
  /** A new secret or description. */
  updated: number;
  removed: number;
}

export interface ConfigSyncOptions {
  /** A changed secret: the old one still signs for this long (WEBHOOK_ROTATION_GRACE_HOURS); 0: not at all. */
  rotationGraceMs?: number;
}

/** Makes the `config` rows what the file lists, in one transaction. */
export function syncConfigSubscriptions(
  store: Store,
  list: readonly WebhookSubscriptionConfig[],
  now: number,
  options: ConfigSyncOptions = {},
): ConfigSyncResult {
  return store.write(() => {
    const existing = new Map(
      listSubscriptions(store)
        .filter((row) => row.source === 'config')
        .map((row) => [rowKey(row), row]),
    );
    const result: ConfigSyncResult = { added: 0, updated: 0, removed: 0 };
    for (const wanted of list) {
      const key = subscriptionKey(wanted);
      const row = existing.get(key);
      existing.delete(key);
      if (!row) {
        addSubscription(store, newRow(wanted), now);
        result.added++;
        continue;
      }
      const changes = changedFields(row, wanted, now, options.rotationGraceMs ?? 0);
      if (changes) {
        updateSubscription(store, row.id, changes, now);
        result.updated++;
      }
    }
    for (const gone of existing.values()) if (removeSubscription(store, gone.id)) result.removed++;
    return result;
  });
}

function newRow(s: WebhookSubscriptionConfig): Parameters<typeof addSubscription>[1] {
  return {
    url: s.url,
    description: s.description ?? null,
    events: s.events,
    cluster: s.cluster ?? null,
    tag: s.tag ?? null,
    secret: s.secret.reveal(),
    source: 'config',
  };
}

/** The fields to write when the file changed a secret or a description; undefined when nothing changed. */
function changedFields(
  row: SubscriptionRow,
  wanted: WebhookSubscriptionConfig,
  now: number,
  graceMs: number,
): Parameters<typeof updateSubscription>[2] | undefined {
  const fields: Parameters<typeof updateSubscription>[2] = {};
  const secret = wanted.secret.reveal();
  if (row.secret !== secret) {
    fields.secret = secret;
    fields.previousSecret = graceMs > 0 ? row.secret : null;
    fields.previousSecretUntil = graceMs > 0 ? now + graceMs : null;
  }
  if ((row.description ?? undefined) !== wanted.description) fields.description = wanted.description ?? null;
  return Object.keys(fields).length ? fields : undefined;
}
