/**
 * The action kinds: what each asks of Proxmox, which task it starts, whether it takes a guest
 * down (and so needs a confirmation), whether it may be sent again after a crash left its UPID
 * unrecorded, and which of Proxmox's refusals mean it was already done. A new kind is an entry
 * here; the queue, the worker, the reconciler and the MCP tools read this table.
 */
import { z } from 'zod';
import type { GuestType } from '../proxmox/types.js';

export type ActionGroup = 'power' | 'snapshot';

export const POWER_KINDS = ['start', 'shutdown', 'stop', 'reboot', 'suspend', 'resume'] as const;
export const SNAPSHOT_KINDS = ['snapshot_create', 'snapshot_rollback', 'snapshot_delete'] as const;
export type PowerKind = (typeof POWER_KINDS)[number];
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];
export type ActionKindName = PowerKind | SnapshotKind;
export const ACTION_KINDS: readonly ActionKindName[] = [...POWER_KINDS, ...SNAPSHOT_KINDS];
export const ACTION_GROUPS: Record<ActionGroup, readonly ActionKindName[]> = {
  power: POWER_KINDS,
  snapshot: SNAPSHOT_KINDS,
};

/** The guest an action is for, as the inventory holds it when the action is queued. */
export interface ActionTarget {
  cluster: string;
  vmid: number;
  type: GuestType;
  node: string;
}

export interface ProxmoxRequest {
  method: 'POST' | 'DELETE';
  path: string;
  params: Record<string, string | number>;
}

export interface ActionKind {
  name: ActionKindName;
  group: ActionGroup;
  /** One line for tool descriptions and plans. */
  about: string;
  /** Takes the guest (or its state) away: asked again before it runs. */
  destructive: boolean;
  /**
   * Harmless to send twice: after a crash between the POST and recording its UPID, when Proxmox
   * shows no matching task, it is sent again; the others end `failed` and say to check.
   */
  resendable: boolean;
  params: z.ZodObject;
  request(target: ActionTarget, params: Record<string, unknown>): ProxmoxRequest;
  /** The UPID task types it can start (the HA stack's included), to find it in /cluster/tasks. */
  taskTypes(type: GuestType): string[];
  /** Proxmox's error that means the guest already is where this action would take it. */
  alreadyDone?: RegExp;
  /** What the guest will be after it, for plans: "stopped", "running"… */
  outcome: string;
}

/** Proxmox's snapshot name rule (pve-configid): a letter, then letters, digits, - or _; at most 40. */
export const SNAPSHOT_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/;
const snapshotName = z
  .string()
  .regex(SNAPSHOT_NAME, {
    error: 'a snapshot name is a letter, then 1–39 letters, digits, - or _ (Proxmox rule), e.g. "before-upgrade"',
  })
  .refine((n) => n.toLowerCase() !== 'current', { error: '"current" is reserved by Proxmox for the live state' });

const base = (t: ActionTarget): string => `/nodes/${t.node}/${t.type}/${t.vmid}`;
const prefix = (type: GuestType): string => (type === 'qemu' ? 'qm' : 'vz');
const seconds = (max: number) => z.number().int().min(1).max(max);

function power(
  name: PowerKind,
  spec: Pick<ActionKind, 'about' | 'destructive' | 'resendable' | 'alreadyDone' | 'outcome'> & {
    params?: z.ZodObject;
    taskType?: (type: GuestType, params: Record<string, unknown>) => string;
    ha?: string;
  },
): ActionKind {
  const params = spec.params ?? z.object({}).strict();
  return {
    name,
    group: 'power',
    about: spec.about,
    destructive: spec.destructive,
    resendable: spec.resendable,
    alreadyDone: spec.alreadyDone,
    outcome: spec.outcome,
    params,
    request: (t, p) => ({ method: 'POST', path: `${base(t)}/status/${name}`, params: wire(p) }),
    taskTypes: (type) => {
      const own = name === 'suspend' && type === 'qemu' ? ['qmpause', 'qmsuspend'] : [`${prefix(type)}${name}`];
      return spec.ha ? [...own, spec.ha] : own;
    },
  };
}

/** Parameters as Proxmox takes them: booleans as 1/0, the rest as given. */
function wire(params: Record<string, unknown>): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    out[key] = typeof value === 'boolean' ? (value ? 1 : 0) : (value as string | number);
  }
  return out;
}

export const CATALOGUE: Record<ActionKindName, ActionKind> = {
  start: power('start', {
    about: 'start the guest',
    destructive: false,
    resendable: true,
    alreadyDone: /already running/i,
    outcome: 'running',
    ha: 'hastart',
  }),
  shutdown: power('shutdown', {
    about: 'shut the guest down cleanly (ACPI or the CT init), optionally stopping it after a timeout',
    destructive: true,
    resendable: true,
    alreadyDone: /not running/i,
    outcome: 'stopped',
    ha: 'hastop',
    params: z
      .object({
        timeout: seconds(3600).optional().describe('seconds to wait for the guest to shut down'),
        forceStop: z.boolean().optional().describe('stop it hard if it has not shut down by the timeout'),
      })
      .strict(),
  }),
  stop: power('stop', {
    about: 'stop the guest at once, as pulling the power (unsaved data in the guest is lost)',
    destructive: true,
    resendable: true,
    alreadyDone: /not running/i,
    outcome: 'stopped',
    ha: 'hastop',
  }),
  reboot: power('reboot', {
    about: 'reboot the guest cleanly',
    destructive: true,
    resendable: false,
    outcome: 'running',
  }),
  suspend: power('suspend', {
    about: 'pause the guest (qemu: in RAM, or to disk with toDisk; lxc: freeze)',
    destructive: true,
    resendable: true,
    outcome: 'paused',
    params: z
      .object({ todisk: z.boolean().optional().describe('qemu only: save RAM to disk and stop (hibernate)') })
      .strict(),
  }),
  resume: power('resume', {
    about: 'resume a paused or suspended guest',
    destructive: false,
    resendable: true,
    outcome: 'running',
  }),
  snapshot_create: {
    name: 'snapshot_create',
    group: 'snapshot',
    about: 'take a snapshot of the guest',
    destructive: false,
    resendable: false,
    outcome: 'a new snapshot',
    params: z
      .object({
        name: snapshotName,
        description: z.string().max(1000).optional(),
        vmstate: z.boolean().optional().describe('qemu only: save the running RAM too'),
      })
      .strict(),
    request: (t, p) => ({
      method: 'POST',
      path: `${base(t)}/snapshot`,
      params: wire({ snapname: p.name, description: p.description, vmstate: p.vmstate }),
    }),
    taskTypes: (type) => [`${prefix(type)}snapshot`],
  },
  snapshot_rollback: {
    name: 'snapshot_rollback',
    group: 'snapshot',
    about: 'roll the guest back to a snapshot (what changed since is lost)',
    destructive: true,
    resendable: false,
    outcome: 'the snapshot state',
    params: z
      .object({
        name: snapshotName,
        start: z.boolean().optional().describe('start the guest after the rollback'),
      })
      .strict(),
    request: (t, p) => ({
      method: 'POST',
      path: `${base(t)}/snapshot/${String(p.name)}/rollback`,
      params: wire({ start: p.start }),
    }),
    taskTypes: (type) => [`${prefix(type)}rollback`],
  },
  snapshot_delete: {
    name: 'snapshot_delete',
    group: 'snapshot',
    about: 'delete a snapshot',
    destructive: true,
    resendable: false,
    outcome: 'the snapshot gone',
    params: z.object({ name: snapshotName, force: z.boolean().optional() }).strict(),
    request: (t, p) => ({
      method: 'DELETE',
      path: `${base(t)}/snapshot/${String(p.name)}`,
      params: wire({ force: p.force }),
    }),
    taskTypes: (type) => [`${prefix(type)}delsnapshot`],
  },
};

export const isActionKind = (name: string): name is ActionKindName => Object.hasOwn(CATALOGUE, name);

/**
 * The kinds `ACTIONS` / `actions.enabled` names (kinds or groups, comma-separated or a list), or
 * the problem; `none`/empty: read-only.
 */
export function parseEnabledKinds(
  value: string | readonly string[],
): { kinds: ActionKindName[] } | { problem: string } {
  const names = (typeof value === 'string' ? value.split(',') : value).map((n) => n.trim()).filter(Boolean);
  const kinds = new Set<ActionKindName>();
  const unknown: string[] = [];
  for (const name of names) {
    if (name === 'none') continue;
    if (name === 'all') ACTION_KINDS.forEach((k) => kinds.add(k));
    else if (Object.hasOwn(ACTION_GROUPS, name)) ACTION_GROUPS[name as ActionGroup].forEach((k) => kinds.add(k));
    else if (isActionKind(name)) kinds.add(name);
    else unknown.push(name);
  }
  if (unknown.length)
    return {
      problem: `unknown action kind${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')}; name groups (power, snapshot, all) or kinds (${ACTION_KINDS.join(', ')})`,
    };
  return { kinds: ACTION_KINDS.filter((k) => kinds.has(k)) };
}
