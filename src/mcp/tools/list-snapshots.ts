import { z } from 'zod';
import { listSnapshots } from '../../store/snapshots.js';
import { shortTime, table, untrusted } from '../render.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { Rows } from './shared.js';

export const listSnapshotsTool = defineTool({
  name: 'list_snapshots',
  title: 'List inventory snapshots',
  description: 'Saved copies of the whole inventory (not guest snapshots), newest first, for diff_snapshots.',
  input: z.object({}).strict(),
  output: z.object({ snapshots: Rows }),
  annotations: READ_ONLY,
  handler(_args, { store }) {
    const snapshots = listSnapshots(store).map((s) => ({ ...s, takenAt: new Date(s.takenAt).toISOString() }));
    return {
      structured: { snapshots },
      text: snapshots.length
        ? table(
            ['id', 'taken', 'label', 'guests', 'nodes'],
            snapshots.map((s) => [
              String(s.id),
              shortTime(s.takenAt),
              untrusted(s.label, 40),
              String(s.guests),
              String(s.nodes),
            ]),
          )
        : 'no inventory snapshot yet (`proxmox-inventory snapshot` or the snapshot schedule takes them)',
    };
  },
});
