import { getGuestTool } from './get-guest.js';
import { listGuestsTool } from './list-guests.js';
import { syncStatusTool } from './sync-status.js';

/** Every tool the server registers, in the order clients list them. */
export const allTools = [listGuestsTool, getGuestTool, syncStatusTool];
