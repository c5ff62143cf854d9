/** `snapshot`: an inventory snapshot now, pruned by the configured retention. */
import { UsageError } from '../cli-errors.js';
import { configFromEnv } from './config-env.js';
import { openStore } from '../store/db.js';
import { checkSnapshotLabel, takeSnapshotWithRetention } from '../store/snapshots.js';
import { StoreError } from '../store/errors.js';

export function runSnapshot(configPath: string | undefined, label: string | undefined): number {
  if (label !== undefined) checkLabelOption(label);
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

/** A label no table could show is a mistake in the command line: exit 2, with where the help is. */
function checkLabelOption(label: string): void {
  try {
    checkSnapshotLabel(label);
  } catch (err) {
    if (err instanceof StoreError) throw new UsageError(`snapshot: --label: ${err.message}`);
    throw err;
  }
}
