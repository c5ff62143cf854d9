import { z } from 'zod';
import { listStorage } from '../../store/queries.js';
import { table } from '../render.js';
import { flag, text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { checkNode, Rows, STORAGE_COLUMNS, storageRow, storageView } from './shared.js';

export const listStorageTool = defineTool({
  name: 'list_storage',
  title: 'List storage',
  description:
    'Storage usage, content types and nodes: a shared storage once with all its nodes, a local one per node.',
  input: z.object({ cluster: text(63).optional(), node: text(63).optional(), shared: flag().optional() }).strict(),
  output: z.object({ storage: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkNode(store, args.cluster, args.node);
    const storage = listStorage(store, { cluster: args.cluster, node: args.node, shared: args.shared }).items.map(
      storageView,
    );
    const multi = new Set(storage.map((s) => s.cluster)).size > 1;
    return {
      structured: { storage },
      text: storage.length
        ? table(
            STORAGE_COLUMNS,
            storage.map((s) => storageRow(s, multi)),
          )
        : 'no storage matches',
    };
  },
});
