/**
 * The /api2/json routes the simulator serves. Paths are the official schema's, so every route
 * has its parameter and permission declarations in pve-schema.json. Write actions answer a UPID
 * at once and finish as tasks; checks Proxmox makes before forking answer as HTTP errors, checks
 * its workers make fail inside the task.
 */
import { effectivePermissions, mayReadTask, privilegesOnPath, taskStarter } from './access.js';
import { diskVolumes } from './guest-config.js';
import { PveHttpError, paramError, type SimCluster, type SimGuest, type SimNode, type TaskOutcome } from './state.js';
import { permits, type Params, type Privileges } from './params.js';
import * as view from './views.js';

export interface RouteContext {
  cluster: SimCluster;
  params: Params;
  /** `user@realm!tokenid` of the caller. */
  user: string;
  /** The caller's privileges, for handlers that list only what the caller may see. */
  privs: Privileges;
  /** Privileges of another user or token (`user@realm` or `user@realm!tokenid`); undefined when unknown. */
  privilegesOf?: (userid: string) => Privileges | undefined;
  fingerprint: string | undefined;
  node?: SimNode;
  guest?: SimGuest;
}

/** A reply whose envelope carries more than `data` (e.g. `total` on paged lists). */
export class Reply {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Schema path, e.g. `/nodes/{node}/qemu/{vmid}/config`. */
  path: string;
  handler: (ctx: RouteContext) => unknown;
}

type GuestType = 'qemu' | 'lxc';

const label = (g: SimGuest): string => (g.type === 'qemu' ? `VM ${g.vmid}` : `CT ${g.vmid}`);
/** AbstractConfig.pm `check_lock`: the guest type, not its id. */
const lockedMessage = (g: SimGuest): string => `${g.type === 'qemu' ? 'VM' : 'CT'} is locked (${g.values.lock})`;

/** Checks qemu-server and pve-container make before forking ("try to detect errors early"). */
function assertNotLocked(g: SimGuest): void {
  if (g.values.lock) throw new PveHttpError(500, lockedMessage(g));
}
const configPath = (node: string, type: GuestType, vmid: number | string): string =>
  `nodes/${node}/${type === 'qemu' ? 'qemu-server' : 'lxc'}/${vmid}.conf`;

export const noSuchConfig = (node: string, type: GuestType, vmid: number | string): PveHttpError =>
  new PveHttpError(500, `Configuration file '${configPath(node, type, vmid)}' does not exist`);

/** Re-reads the guest when a task finishes: it may have been deleted or moved meanwhile. */
function current(c: SimCluster, g: SimGuest): SimGuest {
  const now = c.guests.get(g.vmid);
  if (!now || now !== g) throw new Error(`Configuration file '${configPath(g.node, g.type, g.vmid)}' does not exist`);
  return now;
}

const TASK_TYPES: Record<GuestType, Record<string, string>> = {
  qemu: {
    start: 'qmstart',
    stop: 'qmstop',
    shutdown: 'qmshutdown',
    reboot: 'qmreboot',
    suspend: 'qmpause',
    resume: 'qmresume',
    snapshot: 'qmsnapshot',
    rollback: 'qmrollback',
    delsnapshot: 'qmdelsnapshot',
    clone: 'qmclone',
    migrate: 'qmigrate',
  },
  lxc: {
    start: 'vzstart',
    stop: 'vzstop',
    shutdown: 'vzshutdown',
    reboot: 'vzreboot',
    suspend: 'vzsuspend',
    resume: 'vzresume',
    snapshot: 'vzsnapshot',
    rollback: 'vzrollback',
    delsnapshot: 'vzdelsnapshot',
    clone: 'vzclone',
    migrate: 'vzmigrate',
  },
};

type PowerAction = 'start' | 'stop' | 'shutdown' | 'reboot' | 'suspend' | 'resume';

function power(action: PowerAction): Route['handler'] {
  return ({ cluster: c, guest, params, user }) => {
    const g = guest!;
    if (action === 'start' && g.values.template === '1')
      throw new PveHttpError(500, `you can't start a ${g.type === 'qemu' ? 'vm' : 'CT'} if it's a template`);
    if (action === 'shutdown' && g.status === 'paused' && !params.forceStop)
      throw new PveHttpError(500, 'VM is paused - cannot shutdown');
    const haManaged = g.ha && (action === 'start' || action === 'stop' || action === 'shutdown');
    let type = haManaged ? (action === 'start' ? 'hastart' : 'hastop') : TASK_TYPES[g.type][action]!;
    if (g.type === 'qemu' && action === 'suspend' && params.todisk) type = 'qmsuspend';
    return c.startTask(g.node, type, g.vmid, user, (): TaskOutcome => {
      const now = current(c, g);
      const running = now.status !== 'stopped';
      if (now.values.lock && !params.skiplock && !(action === 'resume' && now.values.lock === 'suspended'))
        return { error: lockedMessage(now) };
      if (haManaged) {
        // The HA stack only records the requested state; the CRM/LRM then start or stop the guest.
        now.ha!.state = action === 'start' ? 'started' : 'stopped';
        c.setStatus(now, action === 'start' ? 'running' : 'stopped');
        return {
          log: [`requesting HA resource ${now.type === 'qemu' ? 'vm' : 'ct'}:${now.vmid} to be ${now.ha!.state}`],
        };
      }
      switch (action) {
        case 'start':
          if (running) return { error: `${label(now)} already running` };
          c.setStatus(now, 'running');
          return { log: [now.type === 'qemu' ? `starting VM ${now.vmid}` : `starting CT ${now.vmid}`] };
        case 'stop':
          if (running) c.setStatus(now, 'stopped');
          return {};
        case 'shutdown':
          if (!running) return { error: `${label(now)} not running` };
          c.setStatus(now, 'stopped');
          return {};
        case 'reboot':
          if (!running) return { error: `${label(now)} not running` };
          c.setStatus(now, 'running');
          return {};
        case 'suspend':
          if (!running) return { error: `${label(now)} not running` };
          if (now.type === 'lxc') now.frozen = true;
          else if (params.todisk) {
            c.setStatus(now, 'stopped');
            c.lock(now, 'suspended');
          } else c.setStatus(now, 'paused');
          return {};
        case 'resume':
          if (now.values.lock === 'suspended') {
            c.lock(now, undefined);
            c.setStatus(now, 'running');
            return {};
          }
          if (!running) return { error: `${label(now)} not running` };
          if (now.type === 'lxc') now.frozen = false;
          else c.setStatus(now, 'running');
          return {};
      }
    });
  };
}

/**
 * A task that holds a config lock while it runs. If the guest is already locked the worker fails
 * to take the lock, which Proxmox reports inside the task.
 */
function lockedTask(
  c: SimCluster,
  g: SimGuest,
  type: string,
  user: string,
  lock: string,
  work: (g: SimGuest) => TaskOutcome,
): string {
  if (g.values.lock) {
    const message = lockedMessage(g);
    return c.startTask(g.node, type, g.vmid, user, () => ({ error: message }));
  }
  c.lock(g, lock);
  return c.startTask(
    g.node,
    type,
    g.vmid,
    user,
    () => {
      const now = current(c, g);
      c.lock(now, undefined);
      return work(now);
    },
    undefined,
    () => {
      if (c.guests.get(g.vmid) === g) c.lock(g, undefined);
    },
  );
}

/**
 * Names the API refuses before forking: qemu-server reserves `current` and, in any case, `pending`
 * (its config section); pve-container reserves `current` and `vzdump` (its backup snapshot).
 */
function reservedSnapshotName(type: GuestType, name: string): boolean {
  if (name === 'current') return true;
  return type === 'qemu' ? name.toLowerCase() === 'pending' : name === 'vzdump';
}

const isTemplate = (g: SimGuest): boolean => g.values.template === '1';

/** Starts the snapshot task and logs the line the worker writes first (PVE::Cluster::log_msg). */
function snapshotTask(
  c: SimCluster,
  g: SimGuest,
  user: string,
  kind: 'snapshot' | 'rollback' | 'delsnapshot',
  logLine: string,
  work: (g: SimGuest) => TaskOutcome,
): string {
  const lock = { snapshot: 'snapshot', rollback: 'rollback', delsnapshot: 'snapshot-delete' }[kind];
  const upid = lockedTask(c, g, TASK_TYPES[g.type][kind]!, user, lock, work);
  c.log(g.node, user, logLine, 'pvedaemon');
  return upid;
}

const snapshotCreate: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const name = String(params.snapname);
  if (reservedSnapshotName(g.type, name))
    throw new PveHttpError(500, `unable to use snapshot name '${name}' (reserved name)`);
  const logLine = `snapshot ${g.type === 'qemu' ? 'VM' : 'container'} ${g.vmid}: ${name}`;
  return snapshotTask(c, g, user, 'snapshot', logLine, (now) => {
    // AbstractConfig.pm __snapshot_prepare checks these in this order, inside the worker.
    if (isTemplate(now)) return { error: "you can't take a snapshot if it's a template" };
    if (now.snapshots.some((s) => s.name === name)) return { error: `snapshot name '${name}' already used` };
    const values = { ...now.values };
    delete values.lock;
    now.snapshots.push({
      name,
      snaptime: c.now(),
      description: String(params.description ?? ''),
      vmstate:
        params.vmstate && now.status !== 'stopped'
          ? `${diskVolumes(now.values)[0]?.storage ?? 'local'}:vm-${now.vmid}-state-${name}`
          : undefined,
      parent: now.parent,
      values,
    });
    now.parent = name;
    c.changed(now);
    return { log: [`snapshot '${name}' created`] };
  });
};

const snapshotRollback: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const name = String(params.snapname);
  const logLine = `rollback snapshot ${g.type === 'qemu' ? 'VM' : 'LXC'} ${g.vmid}: ${name}`;
  return snapshotTask(c, g, user, 'rollback', logLine, (now) => {
    if (isTemplate(now)) return { error: "you can't rollback if vm is a template" };
    const snap = now.snapshots.find((s) => s.name === name);
    if (!snap) return { error: `snapshot '${name}' does not exist` };
    now.values = { ...snap.values };
    now.parent = snap.name;
    c.changed(now);
    // The guest is stopped for the rollback; qemu resumes a RAM-state snapshot, `start` boots it.
    c.setStatus(now, snap.vmstate || params.start ? 'running' : 'stopped');
    return {};
  });
};

const snapshotDelete: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const name = String(params.snapname);
  // pve-container logs its deletes as "VM" too.
  return snapshotTask(c, g, user, 'delsnapshot', `delete snapshot VM ${g.vmid}: ${name}`, (now) => {
    const snap = now.snapshots.find((s) => s.name === name);
    if (!snap) return { error: `snapshot '${name}' does not exist` };
    now.snapshots = now.snapshots.filter((s) => s !== snap);
    for (const s of now.snapshots) if (s.parent === name) s.parent = snap.parent;
    if (now.parent === name) now.parent = snap.parent;
    c.changed(now);
    return {};
  });
};

function targetNode(c: SimCluster, name: string): SimNode {
  const node = c.node(name);
  if (!node) throw new PveHttpError(500, `no such cluster node '${name}'`);
  if (!node.online) throw new PveHttpError(500, `target node '${name}' is not online`);
  return node;
}

const clone: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const newid = Number(params.newid);
  const existing = c.guests.get(newid);
  if (existing)
    throw new PveHttpError(
      500,
      `unable to create ${g.type === 'qemu' ? 'VM' : 'CT'} ${newid}: config file already exists`,
    );
  assertNotLocked(g);
  if (params.snapname !== undefined && !g.snapshots.some((s) => s.name === params.snapname))
    throw new PveHttpError(500, `snapshot '${params.snapname}' does not exist`);
  const target = params.target ? targetNode(c, String(params.target)).name : g.node;
  const sharedStorage = new Set(c.storages.filter((s) => s.shared).map((s) => s.storage));
  const localDisk = diskVolumes(g.values).find((v) => !sharedStorage.has(v.storage));
  if (target !== g.node && localDisk && !(params.storage && sharedStorage.has(String(params.storage)))) {
    throw new PveHttpError(500, `can't clone VM to node '${target}' (VM uses local storage)`);
  }
  const name = (g.type === 'qemu' ? params.name : params.hostname) as string | undefined;
  const values = c.cloneValues(g, newid, name ?? `Copy-of-${c.name(g)}`);
  if (params.storage) {
    for (const [key, value] of Object.entries(values)) {
      if (/^(scsi|virtio|sata|ide)\d+$|^rootfs$|^mp\d+$/.test(key) && !value.includes('media=cdrom'))
        values[key] = value.replace(/^[^:]+:/, `${params.storage}:`);
    }
  }
  if (params.description !== undefined) values.description = String(params.description);
  values.lock = 'clone';
  const copy = c.addGuest({
    vmid: newid,
    type: g.type,
    node: target,
    values,
    status: 'stopped',
    pool: params.pool ? String(params.pool) : undefined,
  });
  return c.startTask(
    g.node,
    TASK_TYPES[g.type].clone!,
    g.vmid,
    user,
    () => {
      if (c.guests.get(newid) !== copy) return { error: `clone target ${newid} vanished` };
      c.lock(copy, undefined);
      return { log: [`create full clone of drive scsi0`, `clone ${g.vmid} -> ${newid} finished`] };
    },
    undefined,
    // A failed clone removes the copy it started (qemu-server clone_vm's error path).
    () => {
      if (c.guests.get(newid) === copy) c.removeGuest(newid);
    },
  );
};

const migrate: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const targetName = String(params.target);
  if (targetName === g.node) throw paramError({ target: 'target is local node.' });
  targetNode(c, targetName);
  assertNotLocked(g);
  const running = g.status !== 'stopped';
  if (running && g.type === 'qemu' && !params.online)
    throw new PveHttpError(500, "can't migrate running VM without --online");
  if (running && g.type === 'lxc' && !params.restart)
    throw new PveHttpError(500, `CT ${g.vmid} is running - use restart migration (restart=1)`);
  const type = g.ha ? 'hamigrate' : TASK_TYPES[g.type].migrate!;
  return lockedTask(c, g, type, user, 'migrate', (now) => {
    const from = now.node;
    c.moveGuest(now, targetName);
    return {
      log: [
        `starting migration of ${label(now)} to node '${targetName}'`,
        `migration finished (${from} -> ${targetName})`,
      ],
    };
  });
};

const CONFIG_META = new Set(['node', 'vmid', 'digest', 'delete', 'revert', 'skiplock', 'background_delay']);

function configChanges(params: Params): Record<string, string | null> {
  const changes: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(params)) {
    if (!CONFIG_META.has(key)) changes[key] = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  }
  for (const key of String(params.delete ?? '')
    .split(/[,;\s]+/)
    .filter(Boolean))
    changes[key] = null;
  return changes;
}

function applyConfig(c: SimCluster, g: SimGuest, params: Params, user: string): string | undefined {
  if (params.digest !== undefined && params.digest !== c.digest(g))
    return 'detected modified configuration - file changed by other user? Try again.';
  if (g.values.lock && !params.skiplock) return lockedMessage(g);
  const changes = configChanges(params);
  c.setConfig(g, changes);
  c.logConfigUpdate(g, changes, user);
  return undefined;
}

const configPut: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const error = applyConfig(c, guest!, params, user);
  if (error) throw new PveHttpError(500, error);
  return null;
};

/** qemu-server checks digest and lock and writes the change before forking; the task only applies pending hot-plug changes. */
const configPost: Route['handler'] = ({ cluster: c, guest, params, user }) => {
  const g = guest!;
  const error = applyConfig(c, g, params, user);
  if (error) throw new PveHttpError(500, error);
  return c.startTask(g.node, 'qmconfig', g.vmid, user, () => ({}));
};

const agentRunning = (g: SimGuest): void => {
  if (g.status === 'stopped') throw new PveHttpError(500, `VM ${g.vmid} is not running`);
  if (!/^(1|enabled=1)/.test(g.values.agent ?? '')) throw new PveHttpError(500, 'No QEMU guest agent configured');
};

const nodeTasks: Route['handler'] = ({ cluster: c, node, params, user, privs }) => {
  const source = String(params.source ?? 'archive');
  let tasks = c.tasks.filter((t) => t.node === node!.name && mayReadTask(user, taskStarter(t), privs, t.node));
  if (source === 'archive') tasks = tasks.filter((t) => t.endtime !== undefined);
  if (source === 'active') tasks = tasks.filter((t) => t.endtime === undefined);
  if (params.vmid !== undefined) tasks = tasks.filter((t) => t.id === String(params.vmid));
  if (params.typefilter) tasks = tasks.filter((t) => t.type === params.typefilter);
  if (params.userfilter) tasks = tasks.filter((t) => t.user.includes(String(params.userfilter)));
  if (params.errors)
    tasks = tasks.filter((t) => t.endtime !== undefined && t.status !== 'OK' && !/^WARNINGS/.test(t.status ?? ''));
  if (params.since !== undefined) tasks = tasks.filter((t) => t.starttime >= Number(params.since));
  if (params.until !== undefined) tasks = tasks.filter((t) => t.starttime <= Number(params.until));
  tasks = [...tasks].reverse();
  const start = Number(params.start ?? 0);
  const limit = Number(params.limit ?? 50);
  const page = tasks.slice(start, start + limit).map((t) => {
    const e = view.taskEntry(t, false);
    if (t.endtime === undefined) e.status = 'RUNNING';
    return e;
  });
  return new Reply(page, { total: tasks.length });
};

function findTask(c: SimCluster, node: SimNode, upid: string): ReturnType<SimCluster['task']> & object {
  const task = c.task(upid);
  if (!task || task.node !== node.name) throw paramError({ upid: 'no such task' });
  return task;
}

const taskLog: Route['handler'] = ({ cluster: c, node, params }) => {
  const task = findTask(c, node!, String(params.upid));
  const lines = task.log.length ? task.log : ['no content'];
  const start = Number(params.start ?? 0);
  const limit = Number(params.limit ?? 50);
  const slice = lines.slice(start, limit === 0 ? undefined : start + limit);
  return new Reply(
    slice.map((t, i) => ({ n: start + i + 1, t })),
    { total: lines.length },
  );
};

/**
 * Cluster.pm `log`: without Sys.Syslog on `/` the caller gets only the lines logged under its own
 * id. pmxcfs (logger.c `clog_dump_json`) compares the whole ident, so a token sees the lines of
 * that token, not those of its user; `max` counts the lines it returns.
 */
const clusterLog: Route['handler'] = ({ cluster: c, params, user, privs }) => {
  const max = Number(params.max ?? 50);
  const visible =
    privs.has('*') || privs.has('Sys.Syslog') ? c.clusterLog : c.clusterLog.filter((e) => e.user === user);
  return visible
    .slice(-max)
    .reverse()
    .map((e) => ({ ...e, id: `${e.uid}:${e.node}` }));
};

/**
 * API2/AccessControl.pm `permissions`: one's own privileges, or an owned token's; anyone else's
 * needs Sys.Audit on /access. With `path`, only that path (`{ path: {} }` when nothing is held
 * there); without, the whole tree of RPCEnvironment.pm `get_effective_permissions`.
 */
const accessPermissions: Route['handler'] = ({ cluster: c, params, user, privs, privilegesOf }) => {
  const userid = params.userid === undefined ? user : String(params.userid);
  const owner = userid.includes('!') ? userid.slice(0, userid.indexOf('!')) : undefined;
  if (userid !== user && owner !== user && !privs.has('*') && !privs.has('Sys.Audit'))
    throw new PveHttpError(403, 'Permission check failed (/access, Sys.Audit)');
  const target = userid === user ? privs : (privilegesOf?.(userid) ?? new Set<string>());
  if (params.path) return { [String(params.path)]: privilegesOnPath(target) };
  return effectivePermissions(c, target);
};

/** Config.pm `index` skips, without an error, each storage the caller may neither audit nor allocate on. */
const STORAGE_READ = ['perm', '/storage/{storage}', ['Datastore.Audit', 'Datastore.AllocateSpace'], 'any', 1];

const storageIndex: Route['handler'] = ({ cluster: c, params, privs }) =>
  view
    .storageConfig(c, params.type as string | undefined)
    .filter((e) => permits(STORAGE_READ, privs, { storage: String(e.storage) }));

/**
 * Status.pm `read_status` reads storage_info, which knows every storage.cfg section (one restricted
 * to other nodes answers `enabled: 0`); an id storage.cfg lacks is a parameter error.
 */
const storageStatus: Route['handler'] = ({ cluster: c, node, params }) => {
  const s = c.storages.find((x) => x.storage === params.storage);
  if (!s) throw paramError({ storage: 'No such storage.' });
  return view.storageStatus(c, s, node!.name);
};

const guestRoutes = (type: GuestType): Route[] => {
  const base = `/nodes/{node}/${type}/{vmid}`;
  const routes: Route[] = [
    {
      method: 'GET',
      path: `${base}/config`,
      handler: ({ cluster: c, guest, params }) => {
        const config = view.guestConfig(c, guest!, params.snapshot as string | undefined);
        if (!config) throw new PveHttpError(500, `snapshot '${params.snapshot}' does not exist`);
        return config;
      },
    },
    { method: 'PUT', path: `${base}/config`, handler: configPut },
    {
      method: 'GET',
      path: `${base}/status/current`,
      handler: ({ cluster: c, guest }) => view.guestStatusCurrent(c, guest!),
    },
    ...(['start', 'stop', 'shutdown', 'reboot', 'suspend', 'resume'] as const).map((a): Route => ({
      method: 'POST',
      path: `${base}/status/${a}`,
      handler: power(a),
    })),
    { method: 'GET', path: `${base}/snapshot`, handler: ({ cluster: c, guest }) => view.snapshotList(c, guest!) },
    { method: 'POST', path: `${base}/snapshot`, handler: snapshotCreate },
    { method: 'POST', path: `${base}/snapshot/{snapname}/rollback`, handler: snapshotRollback },
    { method: 'DELETE', path: `${base}/snapshot/{snapname}`, handler: snapshotDelete },
    { method: 'POST', path: `${base}/clone`, handler: clone },
    { method: 'POST', path: `${base}/migrate`, handler: migrate },
  ];
  if (type === 'qemu') {
    routes.push(
      { method: 'POST', path: `${base}/config`, handler: configPost },
      {
        method: 'POST',
        path: `${base}/agent/exec`,
        handler: ({ cluster: c, guest, params }) => {
          agentRunning(guest!);
          return { pid: c.startAgentExec(guest!.vmid, params.command as string[], guest!) };
        },
      },
      {
        method: 'GET',
        path: `${base}/agent/exec-status`,
        handler: ({ cluster: c, guest, params }) => {
          agentRunning(guest!);
          const exec = c.agentExecs.get(Number(params.pid));
          if (!exec || exec.vmid !== guest!.vmid)
            throw new PveHttpError(500, `Agent error: GuestExecStatus: Invalid parameter 'pid'`);
          if (Date.now() < exec.finishesAt) return { exited: 0 };
          return { exited: 1, exitcode: exec.exitcode, 'out-data': exec.out };
        },
      },
    );
  }
  return routes;
};

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/version',
    handler: ({ cluster: c }) => ({
      version: c.options.pveVersion,
      release: c.options.pveVersion.split('.').slice(0, 2).join('.'),
      repoid: '0a1b2c3d4e5f6a7b',
    }),
  },
  {
    method: 'GET',
    path: '/cluster/resources',
    handler: ({ cluster: c, params }) => view.clusterResources(c, params.type as string | undefined),
  },
  { method: 'GET', path: '/cluster/status', handler: ({ cluster: c }) => view.clusterStatus(c) },
  {
    method: 'GET',
    path: '/cluster/tasks',
    handler: ({ cluster: c }) => c.clusterTaskWindow().map((t) => view.taskEntry(t, true)),
  },
  { method: 'GET', path: '/access/permissions', handler: accessPermissions },
  { method: 'GET', path: '/cluster/log', handler: clusterLog },
  {
    method: 'GET',
    path: '/cluster/nextid',
    handler: ({ cluster: c, params }) => {
      if (params.vmid === undefined) return String(c.nextFreeVmid());
      if (c.guests.has(Number(params.vmid))) throw paramError({ vmid: `VM ${params.vmid} already exists` });
      return String(params.vmid); // a string on the wire, as Cluster.pm `nextid` emits it
    },
  },
  { method: 'GET', path: '/cluster/ha/status/current', handler: ({ cluster: c }) => view.haStatus(c) },
  { method: 'GET', path: '/cluster/ha/resources', handler: ({ cluster: c }) => view.haResources(c) },
  {
    method: 'GET',
    path: '/pools',
    handler: ({ cluster: c, params }) => view.poolsList(c, params.poolid as string | undefined),
  },
  { method: 'GET', path: '/storage', handler: storageIndex },
  { method: 'GET', path: '/nodes', handler: ({ cluster: c, fingerprint }) => view.nodesList(c, fingerprint) },
  { method: 'GET', path: '/nodes/{node}/status', handler: ({ cluster: c, node }) => view.nodeStatus(c, node!) },
  { method: 'GET', path: '/nodes/{node}/storage', handler: ({ cluster: c, node }) => view.nodeStorage(c, node!.name) },
  { method: 'GET', path: '/nodes/{node}/storage/{storage}/status', handler: storageStatus },
  { method: 'GET', path: '/nodes/{node}/tasks', handler: nodeTasks },
  {
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/status',
    handler: ({ cluster: c, node, params }) => view.taskStatus(findTask(c, node!, String(params.upid))),
  },
  { method: 'GET', path: '/nodes/{node}/tasks/{upid}/log', handler: taskLog },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu',
    handler: ({ cluster: c, node, params }) => view.nodeGuestList(c, node!.name, 'qemu', Boolean(params.full)),
  },
  {
    method: 'GET',
    path: '/nodes/{node}/lxc',
    handler: ({ cluster: c, node }) => view.nodeGuestList(c, node!.name, 'lxc', false),
  },
  ...guestRoutes('qemu'),
  ...guestRoutes('lxc'),
];
