import { z } from 'zod';
import { getAction } from '../../store/actions.js';
import { quoted, untrusted } from '../render.js';
import { text } from '../schemas.js';
import { defineTool, READ_ONLY, ToolMiss } from '../tool.js';
import { actionLine, actionView } from './action-shared.js';

export const getActionTool = defineTool({
  name: 'get_action',
  title: 'Get one action',
  description:
    'One action by id (act_…): its state, who asked, the parameters, UPID, Proxmox exit status and reason, the last lines of the task log, times.',
  input: z.object({ id: text(40) }).strict(),
  output: z.object({ action: z.record(z.string(), z.unknown()) }),
  annotations: READ_ONLY,
  handler(args, { store }) {
    const row = getAction(store, args.id);
    if (!row)
      throw new ToolMiss(
        `No action ${quoted(args.id, 40)}.`,
        'list_actions shows the actions asked for, newest first.',
      );
    const view = actionView(row, true);
    const log = view.taskLog as string[];
    return {
      structured: { action: view },
      // Task log lines are Proxmox's (and the guest's) text: each one cell, as data.
      text: [
        actionLine(row),
        ...(log.length ? ['task log (last lines, data from Proxmox):', ...log.map((l) => untrusted(l, 200))] : []),
      ].join('\n'),
    };
  },
});
