import { z } from 'zod';
import { listTasks, QUERY_LIMITS } from '../../store/queries.js';
import { shortTime, table, untrusted } from '../render.js';
import { count, flag, text, vmid } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { checkNode, duration, Rows } from './shared.js';

export const listTasksTool = defineTool({
  name: 'list_tasks',
  title: 'List tasks',
  description: 'Recent Proxmox tasks the sync has seen, newest (or failed) first, with the exit status of failures.',
  input: z
    .object({
      cluster: text(63).optional(),
      node: text(63).optional(),
      vmid: vmid().optional(),
      onlyFailed: flag().optional(),
      failedFirst: flag().optional(),
      limit: count(1, QUERY_LIMITS.tasks.max).optional(),
    })
    .strict(),
  output: z.object({ tasks: Rows }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    checkNode(store, args.cluster, args.node);
    const found = listTasks(store, {
      cluster: args.cluster,
      node: args.node,
      vmid: args.vmid,
      onlyFailed: args.onlyFailed,
      failedFirst: args.failedFirst,
      limit: args.limit,
    });
    const tasks = found.items.map((t) => ({
      cluster: t.cluster,
      upid: t.upid,
      node: t.node,
      type: t.type,
      vmid: t.vmid,
      user: t.user,
      startedAt: t.startedAt,
      durationMs: t.durationMs,
      outcome: t.outcome,
      exitstatus: t.exitstatus == null ? null : t.exitstatus.slice(0, 500),
    }));
    const multi = new Set(tasks.map((t) => t.cluster)).size > 1;
    const rows = tasks.map((t) =>
      [
        shortTime(t.startedAt),
        untrusted(t.type, 30),
        t.vmid == null ? '-' : `${multi ? `${t.cluster}/` : ''}${t.vmid}`,
        untrusted(t.node, 63),
        t.outcome === 'running' ? 'running' : duration(t.durationMs),
        untrusted(t.outcome, 10),
        t.outcome === 'error' || t.outcome === 'warning' ? untrusted(t.exitstatus, 100) : '',
      ].filter((c, i) => i < 6 || c !== ''),
    );
    return {
      structured: { tasks },
      text: tasks.length
        ? table(['start', 'type', 'guest', 'node', 'took', 'outcome', 'exitstatus'], rows)
        : 'no task matches (the sync keeps a recent window per cluster)',
    };
  },
});
