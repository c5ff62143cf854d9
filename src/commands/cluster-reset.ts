/** `cluster reset NAME`. */
import { existsSync } from 'node:fs';
import { configFromEnv } from './config-env.js';
import { openStore } from '../store/db.js';
import { listClusters } from '../store/queries.js';
import { resetCluster } from '../store/sync-state.js';

/**
 * `cluster reset NAME`: accepts that another cluster now answers behind NAME's URL (or that NAME is
 * gone for good): its old inventory is tombstoned with one `cluster.reset` event and the next sync
 * reads the cluster as new. Works beside a running `serve`, whose next cycle starts from the store.
 */
export function runClusterReset(configPath: string | undefined, name: string): number {
  const config = configFromEnv(configPath, true);
  if (!existsSync(config.dbPath)) {
    process.stderr.write(
      `cluster reset: there is no inventory at ${config.dbPath} (set DATA_DIR to the daemon's); nothing to reset\n`,
    );
    return 2;
  }
  const store = openStore(config.dbPath);
  try {
    const result = resetCluster(store, name, Date.now());
    if (!result) {
      const known = listClusters(store).map((c) => c.cluster);
      process.stderr.write(
        `cluster reset: the inventory has no cluster "${name}"; it has ${known.length ? known.join(', ') : 'none'}\n`,
      );
      return 2;
    }
    process.stdout.write(
      `cluster ${name} reset: ${result.guestsTombstoned} guests tombstoned (their history stays), ${result.nodesRemoved} nodes removed; the next sync reads it as a new cluster\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}
