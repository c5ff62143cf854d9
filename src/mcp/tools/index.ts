import { changesSinceTool } from './changes-since.js';
import { diffSnapshotsTool } from './diff-snapshots.js';
import { findCapacityTool } from './find-capacity.js';
import { getActionTool } from './get-action.js';
import { getGuestTool } from './get-guest.js';
import { getNodeTool } from './get-node.js';
import { guestPowerTool } from './guest-power.js';
import { guestSnapshotTool } from './guest-snapshot.js';
import { inventoryOverviewTool } from './inventory-overview.js';
import { listActionsTool } from './list-actions.js';
import { listGuestsTool } from './list-guests.js';
import { listNodesTool } from './list-nodes.js';
import { listSnapshotsTool } from './list-snapshots.js';
import { listStorageTool } from './list-storage.js';
import { listTasksTool } from './list-tasks.js';
import { searchInventoryTool } from './search-inventory.js';
import { syncStatusTool } from './sync-status.js';
import type { ToolsetName } from '../toolsets.js';

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

/** The sets an operator can offer (toolsets.ts describes them); every tool is in exactly one. */
export const toolsetTools: Record<ToolsetName, ReadonlyArray<(typeof allTools)[number]>> = {
  inventory: [inventoryOverviewTool, listGuestsTool, getGuestTool, searchInventoryTool],
  capacity: [listNodesTool, getNodeTool, listStorageTool, findCapacityTool],
  history: [changesSinceTool, listTasksTool, listSnapshotsTool, diffSnapshotsTool],
  status: [syncStatusTool],
};

/**
 * The action queue's read tools: offered to a caller that may ask for some action (a read-only
 * caller's tools/list stays as it was, under its size budget).
 */
export const actionReadTools = [listActionsTool, getActionTool];

/** The write tools: each offered to a caller whose scope holds one of its kinds, listing only those. */
export const actionTools = [guestPowerTool, guestSnapshotTool];
