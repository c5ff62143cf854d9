/**
 * Toolsets: the groups of tools an operator can offer a client (`MCP_TOOLSETS`, `mcp.toolsets`), so a
 * small model reads a shorter tools/list. Every read-only set is offered unless the operator names
 * others. The action tools are not a toolset: ACTIONS and the caller's scope (server.ts) offer
 * them, so enabling an action takes one setting, not two that must agree. Which tool is in which
 * set is said in tools/index.ts; this module has no tool code, so the config can check the names.
 */
import { nearestWord } from '../words.js';

export interface Toolset {
  /** `read`: answers from the inventory; `action`: changes something in Proxmox (offered only when named). */
  access: 'read' | 'action';
  /** What its tools answer, for README and error messages. */
  about: string;
}

export const TOOLSETS = {
  inventory: { access: 'read', about: 'what exists: the overview, guests, search' },
  capacity: { access: 'read', about: 'nodes, storage, and where a new guest fits' },
  history: { access: 'read', about: 'what changed: change events, Proxmox tasks, inventory snapshots' },
  status: { access: 'read', about: 'how each cluster syncs' },
} as const satisfies Record<string, Toolset>;

export type ToolsetName = keyof typeof TOOLSETS;

export const TOOLSET_NAMES = Object.keys(TOOLSETS) as ToolsetName[];

/** Offered when the operator names none: every set that only reads. */
export const DEFAULT_TOOLSETS: readonly ToolsetName[] = TOOLSET_NAMES.filter(
  (name) => (TOOLSETS[name] as Toolset).access === 'read',
);

const isToolsetName = (name: string): name is ToolsetName => Object.hasOwn(TOOLSETS, name);

/**
 * The sets named in `MCP_TOOLSETS` (comma-separated) or `mcp.toolsets` (a list), in the order of
 * TOOLSETS; or the problem, naming the valid sets.
 */
export function parseToolsets(value: string | readonly string[]): { toolsets: ToolsetName[] } | { problem: string } {
  const names = (typeof value === 'string' ? value.split(',') : value).map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !isToolsetName(n));
  const valid = `the toolsets are ${TOOLSET_NAMES.join(', ')}`;
  if (unknown.length) {
    const near = unknown.length === 1 ? nearestWord(unknown[0]!, TOOLSET_NAMES) : undefined;
    const said = unknown.map((n) => JSON.stringify(n)).join(', ');
    const meant = near ? `did you mean "${near}"? ` : '';
    return { problem: `unknown toolset${unknown.length > 1 ? 's' : ''} ${said}; ${meant}${valid}` };
  }
  if (!names.length) return { problem: `names no toolset; ${valid} (leave it unset for every read-only one)` };
  return { toolsets: TOOLSET_NAMES.filter((n) => names.includes(n)) };
}
