import { z } from 'zod';
import { listTasks, QUERY_LIMITS, taskWindows, type TaskWindow } from '../../store/queries.js';
import { shortTime, table, untrusted } from '../render.js';
import { count, flag, text, vmid } from '../schemas.js';
import { defineTool, READ_ONLY } from '../tool.js';
import { checkNode, duration, Rows } from './shared.js';

/** Node windows in the text; every node is in the structured answer. */
const WINDOWS_SHOWN = 8;

/**
 * How far back the tasks go, per node: Proxmox lists a limited number of recent tasks per node, so
 * a task that is not found may have run before the oldest one kept.
 */
function windowLine(windows: TaskWindow[], multi: boolean): string {
  if (!windows.length) return 'no node known yet, so no task either';
  const cells = windows
    .slice(0, WINDOWS_SHOWN)
    .map(
      (w) =>
        `${untrusted(multi ? `${w.cluster}/${w.node}` : w.node, 130)} ${w.oldest ? shortTime(w.oldest) : 'none seen'}`,
    );
  const more = windows.length > WINDOWS_SHOWN ? `, +${windows.length - WINDOWS_SHOWN} more nodes` : '';
  return `tasks known since (oldest kept per node): ${cells.join(', ')}${more}; anything older is not known, so a task not listed may still have run before`;
}

/** A backup task says a backup ran and how it ended, not what it holds. */
const BACKUP_NOTE = 'a vzdump task says a backup ran, not what the backup holds: backup contents are not collected';

export const listTasksTool = defineTool({
  name: 'list_tasks',
  title: 'List tasks',
  description:
    "Recent Proxmox tasks the sync has seen, newest (or failed) first, with failures' exit status and how far back each node's tasks go.",
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
  output: z.object({ tasks: Rows, window: Rows }),
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
    const window = taskWindows(store, { cluster: args.cluster, node: args.node });
    const tasks = found.items.map((t) => ({
      cluster: t.cluster,
      upid: t.upid,
      node: t.node,
      type: t.type,
      vmid: t.vmid,
      guestName: t.guestName,
      user: t.user,
      startedAt: t.startedAt,
      durationMs: t.durationMs,
      outcome: t.outcome,
      exitstatus: t.exitstatus == null ? null : t.exitstatus.slice(0, 500),
    }));
    const multi = new Set([...tasks, ...window].map((t) => t.cluster)).size > 1;
    const rows = tasks.map((t) =>
      [
        shortTime(t.startedAt),
        untrusted(t.type, 30),
        t.vmid == null ? '-' : `${multi ? `${t.cluster}/` : ''}${t.vmid}`,
        t.vmid == null ? '-' : untrusted(t.guestName, 40),
        untrusted(t.node, 63),
        t.outcome === 'running' ? 'running' : duration(t.durationMs),
        untrusted(t.outcome, 10),
        t.outcome === 'error' || t.outcome === 'warning' ? untrusted(t.exitstatus, 100) : '',
      ].filter((c, i) => i < 7 || c !== ''),
    );
    const backups = tasks.some((t) => t.type === 'vzdump');
    const lines = [
      tasks.length
        ? table(['start', 'type', 'guest', 'name', 'node', 'took', 'outcome', 'exitstatus'], rows)
        : 'no task matches',
      windowLine(window, multi),
      ...(backups ? [BACKUP_NOTE] : []),
    ];
    return {
      structured: { tasks, window: window.map((w) => ({ ...w })) },
      text: lines.join('\n'),
    };
  },
});
