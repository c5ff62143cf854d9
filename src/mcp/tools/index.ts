import { changesSinceTool } from './changes-since.js';
import { diffSnapshotsTool } from './diff-snapshots.js';
import { findCapacityTool } from './find-capacity.js';
import { getGuestTool } from './get-guest.js';
import { getNodeTool } from './get-node.js';
import { inventoryOverviewTool } from './inventory-overview.js';
import { listGuestsTool } from './list-guests.js';
import { listNodesTool } from './list-nodes.js';
import { listSnapshotsTool } from './list-snapshots.js';
import { listStorageTool } from './list-storage.js';
import { listTasksTool } from './list-tasks.js';
import { searchInventoryTool } from './search-inventory.js';
import { syncStatusTool } from './sync-status.js';

/** Every tool the server registers, in the order clients list them. */
export const allTools = [
  listGuestsTool,
  getGuestTool,
  syncStatusTool,
  inventoryOverviewTool,
  listNodesTool,
  getNodeTool,
  listStorageTool,
  findCapacityTool,
  searchInventoryTool,
  changesSinceTool,
  listSnapshotsTool,
  diffSnapshotsTool,
  listTasksTool,
];
