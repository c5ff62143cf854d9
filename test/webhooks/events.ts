/** Events for the webhook tests, committed as a sync cycle writes them: many in one transaction. */
import type { Store } from '../../src/store/db.js';
import { insertEvents } from '../../src/store/events.js';

/** Commits `n` `guest.status_changed` events about guests `from`, `from + 1`, … of `cluster`. */
export function commitStatusChanges(store: Store, cluster: string, n: number, from = 100): void {
  store.write(() =>
    insertEvents(
      store,
      Array.from({ length: n }, (_, i) => ({
        type: 'guest.status_changed' as const,
        cluster,
        subject: { kind: 'guest' as const, id: `${cluster}/${from + i}` },
        data: { vmid: from + i, from: 'running', to: 'stopped' },
      })),
      Date.now(),
    ),
  );
}
