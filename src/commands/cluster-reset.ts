/** `cluster reset NAME [--yes]`. */
import { existsSync } from 'node:fs';
import { configFromEnv } from './config-env.js';
import { openStore, type Store } from '../store/db.js';
import { countGuests, listClusters, listNodes, type ClusterInfo } from '../store/queries.js';
import { resetCluster } from '../store/sync-state.js';

/**
 * `cluster reset NAME`: accepts that another cluster now answers behind NAME's URL (or that NAME is
 * gone for good): its old inventory is tombstoned with one `cluster.reset` event and the next sync
 * reads the cluster as new. Without `--yes` it says what it would do and changes nothing, as the
 * destructive `action` kinds do: the import that follows reaches every webhook subscriber. Works
 * beside a running `serve`, whose next cycle starts from the store.
 */
export function runClusterReset(configPath: string | undefined, name: string, confirmed: boolean): number {
  const config = configFromEnv(configPath, true);
  if (!existsSync(config.dbPath)) {
    process.stderr.write(
      `cluster reset: there is no inventory at ${config.dbPath} (set DATA_DIR to the daemon's); nothing to reset\n`,
    );
    return 2;
  }
  const store = openStore(config.dbPath);
  try {
    const clusters = listClusters(store);
    const cluster = clusters.find((c) => c.cluster === name);
    if (!cluster) {
      const known = clusters.map((c) => c.cluster);
      process.stderr.write(
        `cluster reset: the inventory has no cluster "${name}"; it has ${known.length ? known.join(', ') : 'none'}\n`,
      );
      return 2;
    }
    if (!confirmed) {
      process.stdout.write(plan(store, cluster));
      process.stderr.write('cluster reset: nothing was changed; add --yes to reset it\n');
      return 1;
    }
    const result = resetCluster(store, name, Date.now())!;
    process.stdout.write(
      `cluster ${name} reset: ${result.guestsTombstoned} guests tombstoned (their history stays), ${result.nodesRemoved} nodes removed; the next sync reads it as a new cluster\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}

/** What a reset would do to this cluster, and whether its state calls for one. */
function plan(store: Store, cluster: ClusterInfo): string {
  const name = cluster.cluster;
  const guests = countGuests(store, { cluster: name });
  const nodes = listNodes(store, name).items.length;
  const lines = [
    `plan: tombstone cluster ${name}'s ${guests} guests (their history stays) and remove its ${nodes} nodes; the next sync imports it again as a new cluster, and webhook subscribers receive that import (cluster.imported, and guest.created for each guest, marked initial)`,
  ];
  if (!cluster.identityChanged)
    lines.push(
      `note: ${name}'s identity has not changed; a reset is for a cluster replaced behind its URL, which sync_status and the sync log then report`,
    );
  return `${lines.join('\n')}\n`;
}
