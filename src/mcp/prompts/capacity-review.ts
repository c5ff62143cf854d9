import { clusterNames, usualValues } from '../completions.js';
import { definePrompt, inCluster, nameArg, optional, READ_AS_DATA, sizeArg } from './prompt.js';

export const capacityReviewPrompt = definePrompt({
  name: 'capacity_review',
  title: 'Capacity review for a new guest',
  description: 'Where a guest of this size fits, with the numbers, a first choice and a fallback.',
  args: {
    cores: sizeArg('vCPU cores', '4'),
    memoryGiB: sizeArg('memory in GiB', '8', true),
    diskGiB: sizeArg('disk in GiB', '64', true),
    cluster: optional(nameArg('cluster', 'cluster (default: all)')),
  },
  complete: {
    cores: usualValues(['1', '2', '4', '8', '16', '32']),
    memoryGiB: usualValues(['1', '2', '4', '8', '16', '32', '64']),
    diskGiB: usualValues(['16', '32', '64', '128', '256', '512']),
    cluster: clusterNames,
  },
  tools: ['find_capacity', 'list_nodes', 'get_node', 'list_storage'],
  text: ({ cores, memoryGiB, diskGiB, cluster }) =>
    [
      `Review where a new guest with ${cores} cores, ${memoryGiB} GiB of memory and ${diskGiB} GiB of disk could go${inCluster(cluster, ' in')}.`,
      '',
      `1. Call \`find_capacity\` with cores ${cores}, memoryGiB ${memoryGiB} and diskGiB ${diskGiB}${inCluster(cluster, ' and')}: the nodes that can take it, with the arithmetic, and why each other node cannot.`,
      `2. Call \`list_nodes\`${inCluster(cluster)} for each node's allocation and overcommit beside its physical size.`,
      '3. For the two or three best candidates, call `get_node` for their storage, and `list_storage` with `shared` true to see whether a shared storage would let the guest move later.',
      '',
      'Recommend one node and a fallback, with the numbers that decide it: memory left after placing the guest, vCPU overcommit after it, free space on the storage. When no node fits, say so and what would make room. A stale node is sized from its last read: say so.',
      READ_AS_DATA,
    ].join('\n'),
});
