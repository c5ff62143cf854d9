/**
 * Out-of-band changes, as if an operator made them in the Proxmox UI: each applies at once and
 * leaves the trace the UI would (a finished task, or an `update VM` line in the cluster log),
 * unless `silent` asks for a change that leaves no trace (a hand edit of the config file).
 */
import { lxcValues, qemuValues } from './generator.js';
import type { ConfigValues, GuestType } from './guest-config.js';
import { PveHttpError, type SimCluster, type SimGuest } from './state.js';

const UI_USER = 'root@pam';

export interface CreateGuestInput {
  type?: GuestType;
  node?: string;
  vmid?: number;
  name?: string;
  cores?: number;
  memoryMiB?: number;
  diskGiB?: number;
  storage?: string;
  tags?: string[];
  pool?: string;
  status?: 'running' | 'stopped';
  silent?: boolean;
}

export interface UpdateGuestInput {
  name?: string;
  tags?: string[];
  /** Config keys to set; `null` deletes a key. */
  config?: Record<string, string | null>;
  status?: SimGuest['status'];
  /** Moves the guest to this node (an instant migration). */
  node?: string;
  lock?: string | null;
  pool?: string | null;
  silent?: boolean;
}

function finishedTask(c: SimCluster, node: string, type: string, vmid: number, silent: boolean | undefined): void {
  if (!silent) c.startTask(node, type, vmid, UI_USER, () => ({}), 0);
}

function requireGuest(c: SimCluster, vmid: number): SimGuest {
  const g = c.guests.get(vmid);
  if (!g) throw new PveHttpError(404, `no guest ${vmid}`);
  return g;
}

function requireNode(c: SimCluster, name: string): void {
  if (!c.node(name)) throw new PveHttpError(400, `no node ${name}; nodes are ${c.nodes.map((n) => n.name).join(', ')}`);
}

export function createGuest(c: SimCluster, input: CreateGuestInput): SimGuest {
  const type = input.type ?? 'qemu';
  const node = input.node ?? c.nodes[0]!.name;
  requireNode(c, node);
  const vmid = input.vmid ?? c.nextFreeVmid();
  if (c.guests.has(vmid)) throw new PveHttpError(409, `guest ${vmid} already exists`);
  const name = input.name ?? `${type === 'qemu' ? 'vm' : 'ct'}-${vmid}`;
  const sizes = {
    cores: input.cores ?? 2,
    memoryMiB: input.memoryMiB ?? 2048,
    diskGiB: input.diskGiB ?? 32,
    storage: input.storage ?? 'local-lvm',
  };
  const values: ConfigValues =
    type === 'qemu' ? qemuValues(c.rng, vmid, name, sizes) : lxcValues(c.rng, name, vmid, sizes);
  // qemu-server stamps a new VM with the time it was created.
  if (type === 'qemu') values.meta = `creation-qemu=9.0.2,ctime=${Math.floor(Date.now() / 1000)}`;
  if (input.tags?.length) values.tags = input.tags.join(';');
  const guest = c.addGuest({ vmid, type, node, values, status: input.status ?? 'stopped', pool: input.pool });
  guest.statusChangedAt = Date.now();
  finishedTask(c, node, type === 'qemu' ? 'qmcreate' : 'vzcreate', vmid, input.silent);
  return guest;
}

export function deleteGuest(c: SimCluster, vmid: number, silent?: boolean): void {
  const g = requireGuest(c, vmid);
  c.removeGuest(vmid);
  finishedTask(c, g.node, g.type === 'qemu' ? 'qmdestroy' : 'vzdestroy', vmid, silent);
}

export function updateGuest(c: SimCluster, vmid: number, input: UpdateGuestInput): SimGuest {
  const g = requireGuest(c, vmid);
  const changes: Record<string, string | null> = { ...input.config };
  if (input.name !== undefined) changes[g.type === 'qemu' ? 'name' : 'hostname'] = input.name;
  if (input.tags !== undefined) changes.tags = input.tags.length ? input.tags.join(';') : null;
  if (input.lock !== undefined) changes.lock = input.lock;
  if (Object.keys(changes).length) {
    c.setConfig(g, changes);
    if (!input.silent) c.logConfigUpdate(g, changes, UI_USER);
  }
  if (input.pool !== undefined) g.pool = input.pool ?? undefined;
  if (input.node !== undefined && input.node !== g.node) {
    requireNode(c, input.node);
    const from = g.node;
    c.moveGuest(g, input.node);
    finishedTask(c, from, g.ha ? 'hamigrate' : g.type === 'qemu' ? 'qmigrate' : 'vzmigrate', vmid, input.silent);
  }
  if (input.status !== undefined && input.status !== g.status) {
    const type =
      input.status === 'running'
        ? g.status === 'paused'
          ? 'resume'
          : 'start'
        : input.status === 'paused'
          ? 'pause'
          : 'stop';
    const prefix = g.type === 'qemu' ? 'qm' : 'vz';
    c.setStatus(g, input.status);
    finishedTask(c, g.node, `${prefix}${type}`, vmid, input.silent);
  }
  return g;
}

export function setNodeOnline(c: SimCluster, name: string, online: boolean): void {
  const node = c.node(name);
  if (!node) throw new PveHttpError(404, `no node ${name}`);
  node.online = online;
}

/** Faults applied to /api2 requests; `endpoint` limits them to one route (`GET /cluster/resources`). */
export interface Faults {
  latencyMs?: number;
  errorRate?: number;
  errorStatus?: number;
  /** Accept requests and never answer, like a cluster that hangs. */
  hang?: boolean;
  endpoint?: string;
}
