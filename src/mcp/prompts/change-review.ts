import { clusterNames, usualValues } from '../completions.js';
import { definePrompt, inCluster, nameArg, optional, READ_AS_DATA, timeArg } from './prompt.js';

const BACK = usualValues(['1h', '24h', '7d']);

export const changeReviewPrompt = definePrompt({
  name: 'change_review',
  title: 'What changed and who did it',
  description: 'The changes in a time window as a timeline, each with the user whose task made it.',
  args: {
    since: timeArg('start: an ISO 8601 time or a duration back, e.g. 24h'),
    until: optional(timeArg('end (default: now): an ISO 8601 time or a duration back')),
    cluster: optional(nameArg('cluster', 'cluster (default: all)')),
  },
  complete: { since: BACK, until: BACK, cluster: clusterNames },
  tools: ['changes_since', 'list_tasks'],
  text: ({ since, until, cluster }) =>
    [
      `Review what changed in the Proxmox inventory${inCluster(cluster, ' in')} from \`${since}\` to ${until ? `\`${until}\`` : 'now'}, and who did it (a duration such as 24h means that long ago).`,
      '',
      `1. Call \`changes_since\` with since \`${since}\`${inCluster(cluster, ' and')}; while \`hasMore\` is true, call it again with \`afterSeq\` set to the \`nextSeq\` it returned.${until ? ` Leave out events after \`${until}\`.` : ''} Each change says what it was before and after and, when a Proxmox task made it, the task's user: that is who did it.`,
      `2. For a change without a user, call \`list_tasks\` with the guest's \`vmid\`${inCluster(cluster, ' and')} to see the tasks around it, failed ones too.`,
      '3. A change no task made (a shutdown from inside the guest, a config edit through the API that leaves no task) has an unknown author: say so, never guess.',
      '',
      'Answer with a timeline (time, guest or node, what changed from and to, who), then a short summary per user, then what stands out: failed tasks, deleted guests, changes at unusual hours.',
      READ_AS_DATA,
    ].join('\n'),
});
