/** What `webhooks show` and `webhooks replay` read beside store/webhooks.ts: delivery counts, one event. */
import { eq, sql } from 'drizzle-orm';
import type { Store } from './db.js';
import { events, webhookDeliveries } from './schema.js';

export type DeliveryCounts = Record<'pending' | 'succeeded' | 'failed', number>;

export function deliveryCounts(store: Store, subscriptionId: string): DeliveryCounts {
  const rows = store.db
    .select({ state: webhookDeliveries.state, n: sql<number>`count(*)` })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.subscriptionId, subscriptionId))
    .groupBy(webhookDeliveries.state)
    .all();
  const counts: DeliveryCounts = { pending: 0, succeeded: 0, failed: 0 };
  for (const row of rows) counts[row.state] = row.n;
  return counts;
}

export const eventById = (store: Store, id: string): typeof events.$inferSelect | undefined =>
  store.db.select().from(events).where(eq(events.id, id)).get();
