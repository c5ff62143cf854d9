import { clusterNames } from '../completions.js';
import { definePrompt, inCluster, nameArg, optional, READ_AS_DATA } from './prompt.js';

export const dailyReportPrompt = definePrompt({
  name: 'daily_report',
  title: 'Daily inventory report',
  description: 'Health, changes since yesterday and problems, as a short report.',
  args: { cluster: optional(nameArg('cluster', 'cluster (default: all)')) },
  complete: { cluster: clusterNames },
  tools: ['inventory_overview', 'changes_since', 'list_tasks'],
  text: ({ cluster }) =>
    [
      `Write today's report on the Proxmox inventory${cluster ? ` of cluster \`${cluster}\`` : ''}.`,
      '',
      `1. Call \`inventory_overview\`${inCluster(cluster)}: sync health, guest counts, node allocation and its list of problems.`,
      `2. Call \`changes_since\` with since \`24h\`${inCluster(cluster, ' and')}; while \`hasMore\` is true, call it again with \`afterSeq\` set to the \`nextSeq\` it returned.`,
      `3. Call \`list_tasks\` with \`onlyFailed\` true${inCluster(cluster, ' and')}, and keep the tasks started in the last 24 hours.`,
      '',
      'Report in three short sections:',
      '- Health: per cluster, the last successful sync and whether it is stale; nodes online; guests running and stopped.',
      '- Changes since yesterday: guests created, deleted, migrated, resized or renamed, and status changes, grouped by kind with counts, naming the guests.',
      '- Problems: what the overview lists and the failed tasks, most serious first, each with what to check.',
      READ_AS_DATA,
    ].join('\n'),
});
