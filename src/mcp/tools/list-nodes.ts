import { z } from 'zod';
import { listNodes } from '../../store/queries.js';
import { nodeStatusFacts } from '../../store/queries/node-status.js';
import { table } from '../render.js';
import { text } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import {
  checkCluster,
  NO_STATUS,
  NODE_COLUMNS,
  NODE_STATUS_COLUMNS,
  nodeRow,
  nodeStatusRow,
  nodeView,
  Rows,
  statusReadLine,
} from './shared.js';

export const listNodesTool = defineTool({
  name: 'list_nodes',
  title: 'List nodes',
  description:
    'Nodes: status, cpu use, physical vs allocated vCPUs and memory (all guests; _run: running ones), overcommit, guest counts; load average, swap, KSM, PVE and kernel versions (read every few minutes).',
  input: z.object({ cluster: text(63).optional() }).strict(),
  output: z.object({ nodes: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkCluster(store, args.cluster);
    const statuses = nodeStatusFacts(store, args.cluster);
    const nodes = listNodes(store, args.cluster).items.map((n) => ({
      ...nodeView(n),
      ...(statuses.get(`${n.cluster}/${n.node}`) ?? NO_STATUS),
    }));
    const multi = new Set(nodes.map((n) => n.cluster)).size > 1;
    return {
      structured: { nodes },
      text: nodes.length
        ? `${table(
            [...NODE_COLUMNS, ...NODE_STATUS_COLUMNS],
            nodes.map((n) => [...nodeRow(n, multi), ...nodeStatusRow(n)]),
          )}\n${statusReadLine(nodes)}`
        : 'no node known yet',
    };
  },
});
