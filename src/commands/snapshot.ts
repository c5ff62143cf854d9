/** `snapshot`: an inventory snapshot now, pruned by the configured retention. */
import { configFromEnv } from './config-env.js';
import { openStore } from '../store/db.js';
import { takeSnapshotWithRetention } from '../store/snapshots.js';

export function runSnapshot(configPath: string | undefined, label: string | undefined): number {
  const config = configFromEnv(configPath, true);
  const store = openStore(config.dbPath);
  try {
    const { info, pruned } = takeSnapshotWithRetention(store, label, config.snapshots);
    process.stdout.write(
      `snapshot ${info.id}${label ? ` "${label}"` : ''} taken at ${new Date(info.takenAt).toISOString()}: ${info.guests} guests, ${info.nodes} nodes${pruned ? ` (${pruned} old snapshot${pruned === 1 ? '' : 's'} pruned)` : ''}\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}
