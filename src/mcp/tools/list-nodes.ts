import { z } from 'zod';
import { listNodes } from '../../store/queries.js';
import { table } from '../render.js';
import { text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { checkCluster, NODE_COLUMNS, nodeRow, nodeView, Rows } from './shared.js';

export const listNodesTool = defineTool({
  name: 'list_nodes',
  title: 'List nodes',
  description:
    'Nodes: status, cpu use, physical vs allocated vCPUs and memory (all guests; _run: running ones), overcommit, guest counts.',
  input: z.object({ cluster: text(63).optional() }).strict(),
  output: z.object({ nodes: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkCluster(store, args.cluster);
    const nodes = listNodes(store, args.cluster).items.map(nodeView);
    const multi = new Set(nodes.map((n) => n.cluster)).size > 1;
    return {
      structured: { nodes },
      text: nodes.length
        ? table(
            NODE_COLUMNS,
            nodes.map((n) => nodeRow(n, multi)),
          )
        : 'no node known yet',
    };
  },
});
