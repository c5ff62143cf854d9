/** A webhook subscription added as `webhooks add` would, for the tests that need a receiver subscribed. */
import type { Store } from '../../src/store/db.js';
import { addSubscription } from '../../src/store/webhooks.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';

export interface SubscribeOptions {
  events?: string[];
  cluster?: string | null;
  tag?: string | null;
  /** A fresh one when not given. */
  secret?: string;
}

/** Subscribes `url` (every event unless `events`); answers the row's id and its secret. */
export function subscribe(store: Store, url: string, o: SubscribeOptions = {}): { id: string; secret: string } {
  const secret = o.secret ?? generateWebhookSecret();
  const row = addSubscription(
    store,
    {
      url,
      description: null,
      events: o.events ?? ['*'],
      cluster: o.cluster ?? null,
      tag: o.tag ?? null,
      secret,
      source: 'cli',
    },
    Date.now(),
  );
  return { id: row.id, secret };
}
