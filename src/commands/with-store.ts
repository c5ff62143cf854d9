/** How a command uses the inventory for one step: opened for it, closed after it, whatever happens. */
import type { Config } from '../config.js';
import { openStore, type Store } from '../store/db.js';

export function withStore<T>(config: Config, fn: (store: Store) => T): T {
  const store = openStore(config.dbPath);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}
