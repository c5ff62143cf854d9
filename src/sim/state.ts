/**
 * The simulated cluster's state and every way it changes: API write actions run as tasks that
 * finish after a delay (as Proxmox's forked workers do), and out-of-band changes apply at once,
 * leaving the traces the Proxmox UI would (tasks, `update VM` lines in the cluster log).
 */
import { formatUpid } from '../proxmox/upid.js';
import {
  cpuCount,
  diskBytes,
  diskVolumes,
  guestName,
  memoryBytes,
  renderConfigFile,
  sha1,
  type ConfigValues,
  type GuestType,
  type SnapshotSection,
} from './guest-config.js';
import { macAddress, type Rng } from './random.js';

export interface SimNode {
  name: string;
  nodeid: number;
  ip: string;
  online: boolean;
  maxcpu: number;
  maxmem: number;
  maxdisk: number;
  bootTime: number;
}

export interface SimStorage {
  storage: string;
  plugintype: string;
  content: string;
  shared: boolean;
  /** Nodes where this storage is enabled. */
  nodes: string[];
  maxdisk: number;
  /** Bytes used by what is not a guest disk (ISOs, templates, backups), per node for local storage. */
  baseUsed: number;
  /** The plugin's own storage.cfg keys (path, vgname, thinpool, pool, server, export…), as `GET /storage` lists them. */
  config?: Record<string, string | number>;
}

/** Plugin.pm `@SHARED_STORAGE`: parse_config sets `shared 1` on these types whatever storage.cfg says. */
const SHARED_TYPES = new Set(['iscsi', 'nfs', 'cifs', 'rbd', 'cephfs', 'iscsidirect', 'zfs', 'drbd', 'pbs']);

export interface SimGuest {
  vmid: number;
  type: GuestType;
  node: string;
  values: ConfigValues;
  snapshots: SnapshotSection[];
  /** The snapshot the live config descends from (`parent:` in the file). */
  parent?: string;
  status: 'running' | 'stopped' | 'paused';
  /** What /cluster/resources shows until the RRD catches up (see `statusLagMs`). */
  shownStatus: SimGuest['status'];
  statusChangedAt: number;
  startedAt: number;
  pool?: string;
  ha?: { state: 'started' | 'stopped' | 'disabled' | 'ignored' };
  /** Only meaningful while running. */
  frozen?: boolean;
  /** Caches of values derived from the config file; `SimCluster.changed()` clears them. */
  digest?: string;
  derived?: {
    name: string;
    maxcpu: number;
    maxmem: number;
    maxdisk: number;
    volumes: Array<{ storage: string; bytes: number }>;
  };
}

export interface SimTask {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  endtime?: number;
  status?: string;
  log: string[];
}

export interface ClusterLogEntry {
  uid: number;
  time: number;
  pri: number;
  tag: string;
  pid: number;
  node: string;
  user: string;
  msg: string;
}

export interface AgentExec {
  pid: number;
  vmid: number;
  exitcode: number;
  out: string;
  finishesAt: number;
}

export interface TaskOutcome {
  log?: string[];
  /** Present → `TASK ERROR: <error>`. */
  error?: string;
  warnings?: number;
}

/** What a test asked to happen to one task instead of its work (see task-faults.ts). */
export interface InjectedTaskFault {
  /** End with `TASK ERROR: <fail>` without doing the work. */
  fail?: string;
  /** Stay `running` until releaseHungTasks(). */
  hang?: boolean;
}

/** A Proxmox API error as the handler raises it; the server renders status line and body. */
export class PveHttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly errors?: Record<string, string>,
  ) {
    super(reason);
  }
}

export const paramError = (errors: Record<string, string>): PveHttpError =>
  new PveHttpError(400, 'Parameter verification failed.', errors);

const MAX_FINISHED_PER_NODE = 25; // RESTEnvironment.pm $MAX_FINISHED
const MAX_TASK_HISTORY = 5_000;
const MAX_CLUSTER_LOG = 1_000;

/** How the generator sized the cluster (generator.ts): `realistic`, or `dense`, the old extremes. */
export type SimProfile = 'realistic' | 'dense';

export interface SimClusterOptions {
  name: string;
  pveVersion: string;
  /** How long a write task runs before it finishes. */
  taskDelayMs: number;
  /** How long /cluster/resources keeps showing the old status after a power change (pvestatd lag). */
  statusLagMs: number;
  rng: Rng;
  /** `dense` keeps the old node memory figure: 2 GiB plus 60 % of each running guest's memory, capped at 100 %. */
  profile?: SimProfile;
}

export class SimCluster {
  readonly nodes: SimNode[] = [];
  readonly guests = new Map<number, SimGuest>();
  readonly storages: SimStorage[] = [];
  readonly pools = new Map<string, { comment?: string }>();
  readonly tasks: SimTask[] = [];
  readonly clusterLog: ClusterLogEntry[] = [];
  readonly agentExecs = new Map<number, AgentExec>();
  corosyncVersion = 4;
  /** Quorum lost while every node stays online (a corosync partition the control API simulates). */
  quorumLost = false;
  /**
   * Set by the server only while an API handler runs, so faults reach the tasks a client started
   * and never the finished tasks out-of-band changes leave.
   */
  injectFault: ((task: SimTask) => InjectedTaskFault | undefined) | undefined;
  private nextPid = 0x3a000;
  private nextLogUid = 1;
  private nextAgentPid = 1000;
  private sortedVmids: number[] | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly hung = new Map<SimTask, () => void>();

  constructor(readonly options: SimClusterOptions) {}

  get rng(): Rng {
    return this.options.rng;
  }

  now(): number {
    return Math.floor(Date.now() / 1000);
  }

  node(name: string): SimNode | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /** Guests in the order /cluster/resources emits them: Perl `sort keys`, a string sort (1000 before 101). */
  vmidsInStringOrder(): number[] {
    this.sortedVmids ??= [...this.guests.keys()].map(String).sort().map(Number);
    return this.sortedVmids;
  }

  digest(guest: SimGuest): string {
    guest.digest ??= sha1(renderConfigFile(guest.values, guest.parent, guest.snapshots));
    return guest.digest;
  }

  /** Call after any change to a guest's config, snapshots or node. */
  changed(guest: SimGuest): void {
    guest.digest = undefined;
    guest.derived = undefined;
  }

  private derived(g: SimGuest): NonNullable<SimGuest['derived']> {
    g.derived ??= {
      name: guestName(g.type, g.vmid, g.values),
      maxcpu: cpuCount(g.type, g.values, this.node(g.node)?.maxcpu ?? 1),
      maxmem: memoryBytes(g.type, g.values),
      maxdisk: diskBytes(g.type, g.values),
      volumes: diskVolumes(g.values),
    };
    return g.derived;
  }

  name(guest: SimGuest): string {
    return this.derived(guest).name;
  }

  maxcpu(guest: SimGuest): number {
    return this.derived(guest).maxcpu;
  }

  maxmem(guest: SimGuest): number {
    return this.derived(guest).maxmem;
  }

  maxdisk(guest: SimGuest): number {
    return this.derived(guest).maxdisk;
  }

  /** Bytes allocated on each storage: per node for local storage, cluster-wide for shared. */
  storageUsage(): Map<string, number> {
    const shared = new Set(this.storages.filter((s) => s.shared).map((s) => s.storage));
    const usage = new Map<string, number>();
    for (const s of this.storages) {
      if (s.shared) usage.set(s.storage, s.baseUsed);
      else for (const node of s.nodes) usage.set(`${node}/${s.storage}`, s.baseUsed);
    }
    for (const g of this.guests.values()) {
      for (const v of this.derived(g).volumes) {
        const key = shared.has(v.storage) ? v.storage : `${g.node}/${v.storage}`;
        usage.set(key, (usage.get(key) ?? 0) + v.bytes);
      }
    }
    return usage;
  }

  /** The `nodes` line of a storage.cfg section: absent when the storage is on every node. */
  restrictedNodes(s: SimStorage): string[] | undefined {
    return this.nodes.every((n) => s.nodes.includes(n.name)) ? undefined : s.nodes;
  }

  /**
   * SHA-1 of storage.cfg as SectionConfig writes it (`type: id`, then tab-indented keys), which
   * SectionConfig.pm `parse_config` hands to every `GET /storage` entry as `digest`.
   */
  storageDigest(): string {
    const sections = this.storages.map((s) => {
      const lines = [`${s.plugintype}: ${s.storage}`];
      const keys: Record<string, string | number> = { ...s.config, content: s.content };
      const nodes = this.restrictedNodes(s);
      if (nodes) keys.nodes = nodes.join(',');
      if (s.shared && !SHARED_TYPES.has(s.plugintype)) keys.shared = 1;
      for (const [key, value] of Object.entries(keys)) lines.push(`\t${key} ${value}`);
      return lines.join('\n') + '\n';
    });
    return sha1(sections.join('\n'));
  }

  nextFreeVmid(from = 100): number {
    let id = from;
    while (this.guests.has(id)) id++;
    return id;
  }

  // ---- mutations shared by API tasks and out-of-band changes ------------------------------------

  addGuest(
    guest: Omit<SimGuest, 'shownStatus' | 'statusChangedAt' | 'startedAt' | 'snapshots'> & {
      snapshots?: SnapshotSection[];
    },
  ): SimGuest {
    const full: SimGuest = {
      snapshots: [],
      ...guest,
      shownStatus: guest.status,
      statusChangedAt: 0,
      startedAt: Date.now() - 3_600_000,
    };
    this.guests.set(full.vmid, full);
    this.sortedVmids = undefined;
    return full;
  }

  removeGuest(vmid: number): void {
    this.guests.delete(vmid);
    this.sortedVmids = undefined;
  }

  setConfig(guest: SimGuest, changes: Record<string, string | null>): void {
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) delete guest.values[key];
      else guest.values[key] = value;
    }
    this.changed(guest);
  }

  moveGuest(guest: SimGuest, node: string): void {
    guest.node = node;
    this.changed(guest);
  }

  setStatus(guest: SimGuest, status: SimGuest['status']): void {
    guest.shownStatus = this.shownStatus(guest);
    guest.status = status;
    guest.statusChangedAt = Date.now();
    if (status === 'running') guest.startedAt = Date.now();
    if (status !== 'running') guest.frozen = false;
  }

  /** The status /cluster/resources reports now, lagging real changes by `statusLagMs`. */
  shownStatus(guest: SimGuest): SimGuest['status'] {
    return Date.now() - guest.statusChangedAt >= this.options.statusLagMs ? guest.status : guest.shownStatus;
  }

  lock(guest: SimGuest, lock: string | undefined): void {
    this.setConfig(guest, { lock: lock ?? null });
  }

  /** A copy of a guest's config for a clone: new MACs, disks renamed to the new vmid, no lock/template. */
  cloneValues(source: SimGuest, newid: number, name: string | undefined): ConfigValues {
    const values: ConfigValues = {};
    for (const [key, value] of Object.entries(source.values)) {
      if (key === 'lock' || key === 'template' || key === 'vmgenid') continue;
      let v = value.replace(new RegExp(`(vm|base)-${source.vmid}-`, 'g'), `vm-${newid}-`);
      if (/^net\d+$/.test(key))
        v = v
          .replace(/([0-9A-F]{2}:){5}[0-9A-F]{2}/, macAddress(this.rng))
          .replace(/hwaddr=[^,]+/, `hwaddr=${macAddress(this.rng)}`);
      values[key] = v;
    }
    if (name) values[source.type === 'qemu' ? 'name' : 'hostname'] = name;
    return values;
  }

  // ---- tasks --------------------------------------------------------------------------------------

  /**
   * Starts a task the way a forked Proxmox worker does: the UPID is returned at once; `work` runs
   * after the task delay and decides the outcome (errors such as "already running" surface in the
   * task, not the HTTP answer). `undo` reverts what the handler did before forking (a config lock
   * it took) when an injected fault fails the task instead of running `work`.
   */
  startTask(
    node: string,
    type: string,
    id: string | number,
    user: string,
    work: () => TaskOutcome,
    delayMs = this.options.taskDelayMs,
    undo?: () => void,
  ): string {
    const starttime = this.now();
    const [userName, tokenid] = user.split('!') as [string, string | undefined];
    const task: SimTask = {
      upid: '',
      node,
      pid: this.nextPid++,
      pstart: 0x1000000 + Math.floor(process.uptime() * 100),
      starttime,
      type,
      id: String(id),
      user: userName,
      tokenid,
      log: [],
    };
    task.upid = formatUpid({ node, pid: task.pid, pstart: task.pstart, starttime, type, id: String(id), user });
    this.tasks.push(task);
    if (this.tasks.length > MAX_TASK_HISTORY) this.tasks.splice(0, this.tasks.length - MAX_TASK_HISTORY);
    this.log(node, user, `starting task ${task.upid}`, 'pvedaemon');
    const fault = this.injectFault?.(task);
    const run = (): TaskOutcome => {
      if (fault?.fail === undefined) return work();
      undo?.();
      return { error: fault.fail };
    };
    const finish = (): void => {
      let outcome: TaskOutcome;
      try {
        outcome = run();
      } catch (err) {
        outcome = { error: (err as Error).message };
      }
      task.log.push(...(outcome.log ?? []));
      if (outcome.error !== undefined) {
        const text = outcome.error.replace(/\s*\n\s*/g, ' ').trim();
        task.log.push(`TASK ERROR: ${text}`);
        task.status = text;
      } else if (outcome.warnings) {
        task.log.push(`TASK WARNINGS: ${outcome.warnings}`);
        task.status = `WARNINGS: ${outcome.warnings}`;
      } else {
        task.log.push('TASK OK');
        task.status = 'OK';
      }
      task.endtime = this.now();
      this.log(node, user, `end task ${task.upid} ${task.status}`, 'pvedaemon');
    };
    if (fault?.hang) {
      this.hung.set(task, finish);
    } else if (delayMs <= 0) {
      finish();
    } else {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        finish();
      }, delayMs);
      this.timers.add(timer);
    }
    return task.upid;
  }

  /** Ends every task a `hang` fault held, as its work decides. */
  releaseHungTasks(): void {
    const finishes = [...this.hung.values()];
    this.hung.clear();
    for (const finish of finishes) finish();
  }

  task(upid: string): SimTask | undefined {
    for (let i = this.tasks.length - 1; i >= 0; i--) if (this.tasks[i]!.upid === upid) return this.tasks[i];
    return undefined;
  }

  /** The pmxcfs tasklist each node broadcasts: running tasks plus its most recent finished ones, 25 in all. */
  clusterTaskWindow(): SimTask[] {
    const out: SimTask[] = [];
    for (const node of this.nodes) {
      if (!node.online) continue;
      const mine = this.tasks.filter((t) => t.node === node.name);
      const running = mine.filter((t) => t.endtime === undefined);
      const finished = mine
        .filter((t) => t.endtime !== undefined)
        .slice(-Math.max(0, MAX_FINISHED_PER_NODE - running.length));
      out.push(...running, ...finished);
    }
    return out;
  }

  /** qemu-server writes `update VM <id>: -key value …` to the cluster log for every config change; LXC writes nothing. */
  logConfigUpdate(g: SimGuest, changes: Record<string, string | null>, user: string): void {
    if (g.type !== 'qemu') return;
    const parts = Object.entries(changes).map(([k, v]) => (v === null ? `-delete ${k}` : `-${k} ${v}`));
    this.log(g.node, user, `update VM ${g.vmid}: ${parts.join(' ')}`);
  }

  /** Major release as a number (string comparison would put 10 before 9). */
  get pveMajor(): number {
    return Number.parseInt(this.options.pveVersion, 10);
  }

  quorate(): boolean {
    if (this.quorumLost) return false;
    return this.nodes.filter((n) => n.online).length * 2 > this.nodes.length;
  }

  log(node: string, user: string, msg: string, tag = 'pvedaemon', pri = 6): void {
    this.clusterLog.push({ uid: this.nextLogUid++, time: this.now(), pri, tag, pid: this.nextPid, node, user, msg });
    if (this.clusterLog.length > MAX_CLUSTER_LOG) this.clusterLog.splice(0, this.clusterLog.length - MAX_CLUSTER_LOG);
  }

  startAgentExec(vmid: number, argv: string[], guest: SimGuest): number {
    const pid = this.nextAgentPid++;
    const out = argv[0] === 'hostname' ? `${this.name(guest)}\n` : `${argv.join(' ')}\n`;
    this.agentExecs.set(pid, {
      pid,
      vmid,
      exitcode: 0,
      out,
      finishesAt: Date.now() + Math.min(this.options.taskDelayMs, 200),
    });
    return pid;
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.hung.clear();
  }
}
