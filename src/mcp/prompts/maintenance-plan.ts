import { clusterNames, nodeNames } from '../completions.js';
import { definePrompt, nameArg, READ_AS_DATA } from './prompt.js';

export const maintenancePlanPrompt = definePrompt({
  name: 'maintenance_plan',
  title: 'Node maintenance plan',
  description: 'What runs on a node and where each guest could go while it is down.',
  args: { cluster: nameArg('cluster'), node: nameArg('node') },
  complete: { cluster: clusterNames, node: nodeNames },
  tools: ['get_node', 'list_guests', 'get_guest', 'find_capacity'],
  text: ({ cluster, node }) =>
    [
      `Plan maintenance of node \`${node}\` in cluster \`${cluster}\`: what runs there and where it could go meanwhile.`,
      '',
      `1. Call \`get_node\` with node \`${node}\` and cluster \`${cluster}\` for its state, allocation and storage.`,
      `2. Call \`list_guests\` with cluster \`${cluster}\`, node \`${node}\` and fields hastate, lock, template, maxcpu, maxmem (follow \`nextCursor\`) for every guest on it.`,
      '3. For each running guest, call `get_guest` for its disks: a disk on storage local to the node cannot move with a live migration.',
      `4. Call \`find_capacity\` with cluster \`${cluster}\` for each running guest's size, largest first, to choose a target node other than \`${node}\`; add up what each target takes so that none is overfilled.`,
      '',
      'Answer with a table (guest, size, target node or "shut down", reason), the order to go in (guests managed by HA are moved by the HA stack; a locked guest needs its lock cleared first), and what to check before and after. This server only reads the inventory: the plan is for a person to carry out.',
      READ_AS_DATA,
    ].join('\n'),
});
