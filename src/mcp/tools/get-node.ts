import { z } from 'zod';
import { getNode } from '../../store/queries.js';
import { nodeStatusFacts } from '../../store/queries/node-status.js';
import { bytes, percent, quoted, shortTime, table, untrusted } from '../render.js';
import { text } from '../schemas.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import {
  checkCluster,
  duration,
  nameList,
  NO_STATUS,
  NODE_LIMITS,
  nodeView,
  nodeStatusLine,
  Obj,
  ratioCell,
  STORAGE_COLUMNS,
  storageRow,
  storageView,
} from './shared.js';

export const getNodeTool = defineTool({
  name: 'get_node',
  title: 'Get one node',
  description: 'One node as list_nodes shows it, plus ip, uptime, cpu model and its storage (shared included).',
  input: z
    .object({
      node: text(63),
      cluster: text(63).optional(),
    })
    .strict(),
  output: z.object({ node: Obj }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkCluster(store, args.cluster);
    const found = getNode(store, args.cluster, args.node);
    if (found.kind === 'ambiguous') {
      throw new ToolMiss(
        `Node ${quoted(args.node)} exists in several clusters.`,
        `Ask again with "cluster": one of ${nameList(found.candidates.map((c) => c.cluster))}.`,
      );
    }
    if (found.kind === 'not_found') {
      throw new ToolMiss(
        `No node ${quoted(args.node)}${args.cluster ? ` in cluster ${args.cluster}` : ''}.`,
        `Closest known nodes: ${nameList(found.suggestions.map((s) => `${s.cluster}/${s.node}`)) || 'none'}.`,
      );
    }
    const n = found.node;
    const storage = n.storage.map(storageView);
    const status = nodeStatusFacts(store, n.cluster).get(`${n.cluster}/${n.node}`) ?? NO_STATUS;
    const lines = [
      `${untrusted(`${n.cluster}/${n.node}`, 130)}: ${untrusted(n.status, 20)}${n.stale ? `, STALE since ${shortTime(n.lastSeenAt)}` : ''}; ip ${untrusted(n.ip, 50)}; uptime ${n.uptime == null ? '-' : duration(n.uptime * 1000)}`,
      `cpu: ${n.maxcpu ?? '-'} physical, ${percent(n.cpu)} in use; vcpus allocated ${ratioCell(String(Math.round(n.allocatedVcpus)), String(n.maxcpu ?? '-'), n.cpuOvercommit)}; running guests ${ratioCell(String(Math.round(n.runningVcpus)), String(n.maxcpu ?? '-'), n.runningCpuOvercommit)}`,
      `memory: ${bytes(n.maxmem)} physical, ${bytes(n.mem)} in use; allocated ${ratioCell(bytes(n.allocatedMemoryBytes), bytes(n.maxmem), n.memoryOvercommit)}; running guests ${ratioCell(bytes(n.runningMemoryBytes), bytes(n.maxmem), n.runningMemoryOvercommit)}`,
      `guests: ${n.guests.total} (${n.guests.running} running${n.guests.unknown ? `, ${n.guests.unknown} status unknown` : ''}, ${n.guests.templates} templates)`,
      nodeStatusLine(status),
      storage.length
        ? table(
            STORAGE_COLUMNS,
            storage.map((s) => storageRow(s, false)),
          )
        : 'no storage',
      NODE_LIMITS,
    ];
    return {
      structured: {
        node: {
          ...nodeView(n),
          ip: n.ip,
          uptime: n.uptime,
          ...status,
          storage,
          limits: NODE_LIMITS,
        },
      },
      text: lines.join('\n'),
    };
  },
});
