/**
 * Access control as pve-access-control models it, cut to what a least-privilege recipe needs:
 * users, roles (the built-in PVEAuditor, Administrator and NoAccess, and custom ones), API tokens
 * with or without privilege separation, and ACL entries on `/` with propagation. A principal holds
 * the union of the roles granted to it there; a privilege-separated token holds the intersection
 * of its user's privileges and its own (AccessControl.pm `roles` for tokens). `*` stands for
 * root@pam, which holds every privilege on every path (RPCEnvironment.pm `permissions`).
 *
 * `pveum()` takes the `pveum` command lines an operator types (role add/modify, user add,
 * acl modify / aclmod, user token add), so a documented recipe can be replayed as written.
 */
import { randomUUID } from 'node:crypto';
import { endpointSchema, permits, type Privileges } from './params.js';
import { diskVolumes } from './guest-config.js';
import { PveHttpError, type SimCluster, type SimGuest } from './state.js';

/**
 * Every privilege PVE knows (AccessControl.pm `$valid_privs`): the 9.1 schema declares one
 * property per privilege on what GET /access/roles/{roleid} returns.
 */
export const ALL_PRIVILEGES: readonly string[] = (() => {
  const returns = (
    endpointSchema('GET /access/roles/{roleid}') as { returns?: { properties?: Record<string, unknown> } } | undefined
  )?.returns;
  const names = Object.keys(returns?.properties ?? {}).sort();
  if (!names.length)
    throw new Error('src/sim/pve-schema.json lacks GET /access/roles/{roleid}; run npm run extract-schema');
  return names;
})();

/** The PVEAuditor role of PVE 9 (AccessControl.pm: every privilege group's `audit` list); it lacks Sys.Syslog. */
export const AUDITOR_PRIVILEGES: readonly string[] = [
  'Datastore.Audit',
  'Mapping.Audit',
  'Pool.Audit',
  'SDN.Audit',
  'Sys.Audit',
  'VM.Audit',
  'VM.GuestAgent.Audit',
];

const BUILTIN_ROLES: Record<string, readonly string[]> = {
  Administrator: ALL_PRIVILEGES,
  NoAccess: [],
  PVEAuditor: AUDITOR_PRIVILEGES,
};

const ROOT = 'root@pam';
const EVERYTHING: Privileges = new Set(['*']);
const USERID = /^[^\s:/!]+@[A-Za-z][A-Za-z0-9.\-_]+$/;
const TOKEN_NAME = /^[A-Za-z][A-Za-z0-9.\-_]+$/;
const ROLEID = /^[A-Za-z0-9.\-_]+$/;

interface SimApiToken {
  user: string;
  secret: string;
  privsep: boolean;
}

/** A refused access-control change, in pveum's words; the control API answers it as 400. */
const refuse = (message: string): PveHttpError => new PveHttpError(400, message);

/** PVE::Tools `split_list`: privileges and ids separated by spaces, commas or semicolons. */
const splitList = (value: string): string[] => value.split(/[\s,;]+/).filter(Boolean);

export class SimAccess {
  private readonly roles = new Map<string, ReadonlySet<string>>(
    Object.entries(BUILTIN_ROLES).map(([id, privs]) => [id, new Set(privs)]),
  );
  private readonly users = new Set<string>([ROOT]);
  private readonly tokens = new Map<string, SimApiToken>();
  /** user or token id → role ids granted on `/` with propagation. */
  private readonly acl = new Map<string, Set<string>>();

  addRole(roleid: string, privileges: readonly string[]): void {
    if (!ROLEID.test(roleid)) throw refuse(`invalid role id '${roleid}'`);
    if (this.roles.has(roleid)) throw refuse(`role '${roleid}' already exists`);
    this.roles.set(roleid, new Set(validPrivileges(privileges)));
  }

  /** `pveum role modify`: replaces the list, or adds to it with `append`. */
  modifyRole(roleid: string, privileges: readonly string[], append = false): void {
    if (Object.hasOwn(BUILTIN_ROLES, roleid)) throw refuse(`cannot modify predefined role '${roleid}'`);
    const current = this.role(roleid);
    const next = validPrivileges(privileges);
    this.roles.set(roleid, new Set(append ? [...current, ...next] : next));
  }

  addUser(userid: string): void {
    if (!USERID.test(userid)) throw refuse(`invalid user id '${userid}'; expected user@realm, e.g. inventory@pve`);
    if (this.users.has(userid)) throw refuse(`user '${userid}' already exists`);
    this.users.add(userid);
  }

  /** Grants roles on `/` with propagation to users or tokens (`user@realm!name`), as `pveum acl modify` does. */
  grant(path: string, roles: readonly string[], principals: readonly string[], propagate = true): void {
    if (path !== '/' || !propagate)
      throw refuse(
        `the simulator models ACL entries on / with propagation only, not on ${path}${propagate ? '' : ' without propagation'}`,
      );
    for (const role of roles) this.role(role);
    for (const principal of principals) {
      if (principal.includes('!') ? !this.tokens.has(principal) : !this.users.has(principal))
        throw refuse(
          principal.includes('!') ? `no such API token '${principal}'` : `user '${principal}' does not exist`,
        );
      const granted = this.acl.get(principal) ?? new Set<string>();
      for (const role of roles) granted.add(role);
      this.acl.set(principal, granted);
    }
  }

  /** `pveum user token add`: answers the full token id and its secret (privilege separation on by default). */
  addToken(
    userid: string,
    name: string,
    options: { privsep?: boolean; secret?: string } = {},
  ): { id: string; secret: string } {
    if (!this.users.has(userid)) throw refuse(`user '${userid}' does not exist`);
    if (!TOKEN_NAME.test(name)) throw refuse(`invalid token name '${name}'`);
    const id = `${userid}!${name}`;
    if (this.tokens.has(id)) throw refuse(`Token already exists.`);
    const secret = options.secret ?? randomUUID();
    this.tokens.set(id, { user: userid, secret, privsep: options.privsep ?? true });
    return { id, secret };
  }

  /** The principal a `PVEAPIToken=USER@REALM!ID=SECRET` value names, or undefined for an unknown token or secret. */
  authenticate(value: string): string | undefined {
    const split = value.lastIndexOf('=');
    const id = value.slice(0, split);
    const token = split > 0 ? this.tokens.get(id) : undefined;
    return token && token.secret === value.slice(split + 1) ? id : undefined;
  }

  /** What a user or token holds (on every path); undefined for an unknown one. */
  privilegesOf(userid: string): Privileges | undefined {
    const token = this.tokens.get(userid);
    if (token) {
      const user = this.userPrivileges(token.user);
      return token.privsep ? intersect(user, this.granted(userid)) : user;
    }
    return this.users.has(userid) ? this.userPrivileges(userid) : undefined;
  }

  /** Runs one `pveum` command line; answers what pveum prints as data (the token's secret for `user token add`). */
  pveum(line: string): unknown {
    const { positional, options } = parseCommandLine(line);
    const words = positional[0] === 'pveum' ? positional.slice(1) : positional;
    const [first, second, third, ...rest] = words;
    const privs = (): string[] => splitList(String(options.get('privs') ?? ''));
    if (first === 'role' && second === 'add' && third) return this.addRole(third, privs());
    if (first === 'role' && second === 'modify' && third)
      return this.modifyRole(third, privs(), flag(options.get('append')));
    if (first === 'user' && second === 'add' && third) return this.addUser(third);
    if (first === 'user' && second === 'token' && third === 'add' && rest.length === 2) {
      const privsep = options.get('privsep');
      return this.addToken(rest[0]!, rest[1]!, { privsep: privsep === undefined ? undefined : flag(privsep) });
    }
    const acl =
      first === 'aclmod' ? words.slice(1) : first === 'acl' && second === 'modify' ? words.slice(2) : undefined;
    if (acl?.length === 1) {
      const principals = ['users', 'tokens'].flatMap((key) => splitList(String(options.get(key) ?? '')));
      if (options.get('groups') !== undefined)
        throw refuse('the simulator does not model groups; grant to --users or --tokens');
      const propagate = options.get('propagate');
      return this.grant(
        acl[0]!,
        splitList(String(options.get('roles') ?? '')),
        principals,
        propagate === undefined ? true : flag(propagate),
      );
    }
    throw refuse(
      `pveum ${words.join(' ')}: the simulator knows role add|modify, user add, user token add, acl modify and aclmod`,
    );
  }

  private role(roleid: string): ReadonlySet<string> {
    const role = this.roles.get(roleid);
    if (!role) throw refuse(`role '${roleid}' does not exist`);
    return role;
  }

  private granted(principal: string): Set<string> {
    return new Set([...(this.acl.get(principal) ?? [])].flatMap((role) => [...this.role(role)]));
  }

  private userPrivileges(userid: string): Privileges {
    return userid === ROOT ? EVERYTHING : this.granted(userid);
  }
}

function validPrivileges(privileges: readonly string[]): string[] {
  for (const priv of privileges) if (!ALL_PRIVILEGES.includes(priv)) throw refuse(`invalid privilege '${priv}'`);
  return [...privileges];
}

function intersect(a: Privileges, b: Privileges): Privileges {
  if (a.has('*')) return b;
  if (b.has('*')) return a;
  return new Set([...a].filter((p) => b.has(p)));
}

const flag = (value: unknown): boolean => value === true || /^(1|on|yes|true)$/i.test(String(value));

/**
 * Getopt::Long as PVE's CLIHandler uses it: `-opt value` or `--opt value` or `--opt=value`, and a
 * unique prefix of an option names it, so the documented `-user`/`-role` mean `--users`/`--roles`.
 */
const OPTIONS = [
  'append',
  'comment',
  'expire',
  'groups',
  'path',
  'privs',
  'privsep',
  'propagate',
  'roles',
  'tokens',
  'users',
];

function parseCommandLine(line: string): { positional: string[]; options: Map<string, string> } {
  const words = [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(word);
    if (!m) {
      positional.push(word);
      continue;
    }
    const matches = OPTIONS.filter((o) => o === m[1] || o.startsWith(m[1]!));
    const name = matches.includes(m[1]!) ? m[1]! : matches.length === 1 ? matches[0]! : undefined;
    if (!name) throw refuse(`Unknown option: ${m[1]}`);
    const value = m[2] ?? words[i + 1];
    if (value === undefined) throw refuse(`Option ${name} requires an argument`);
    if (m[2] === undefined) i++;
    options.set(name, value);
  }
  return { positional, options };
}

/** Privilege → propagate flag on any path: all of them granted on `/` with propagate (1). */
export function privilegesOnPath(privs: Privileges): Record<string, number> {
  const names = privs.has('*') ? ALL_PRIVILEGES : [...privs].sort();
  return Object.fromEntries(names.map((name) => [name, 1]));
}

/**
 * RPCEnvironment.pm `get_effective_permissions`: the top-level paths, every ACL path (here only
 * `/`) and every path a pool makes a member of (`/vms/<vmid>`), each with the privileges held
 * there; a path without any privilege is left out.
 */
export function effectivePermissions(c: SimCluster, privs: Privileges): Record<string, Record<string, number>> {
  const held = privilegesOnPath(privs);
  if (!Object.keys(held).length) return {};
  const paths = new Set(['/', '/access', '/access/groups', '/nodes', '/pool', '/sdn', '/storage', '/vms']);
  for (const g of c.guests.values()) if (g.pool) paths.add(`/vms/${g.vmid}`);
  return Object.fromEntries([...paths].sort().map((path) => [path, { ...held }]));
}

/** The full id of a task's starter, `user@realm!token` for a token (the UPID's user field). */
export const taskStarter = (t: { user: string; tokenid?: string }): string =>
  t.tokenid ? `${t.user}!${t.tokenid}` : t.user;

/**
 * Tasks.pm: a task's status, log and node list entry belong to whoever started it; anyone else
 * needs Sys.Audit on the task's node.
 */
export function mayReadTask(caller: string, starter: string, privs: Privileges, node: string): boolean {
  return caller === starter || permits(['perm', '/nodes/{node}', ['Sys.Audit']], privs, { node });
}

/** The user field of a UPID (`UPID:node:pid:pstart:starttime:type:id:user:`), token included. */
export const upidStarter = (upid: string): string | undefined => upid.split(':')[7];

/** QemuServer.pm `find_vmstate_storage`, simplified: the configured one, else the first disk's. */
const stateStorage = (g: SimGuest | undefined): string =>
  g?.values.vmstatestorage ?? (g ? diskVolumes(g.values)[0]?.storage : undefined) ?? 'local';

type Entry = Record<string, unknown>;
type ListFilter = (data: unknown, caller: string, privs: Privileges) => unknown;

const may = (privs: Privileges, path: string, wanted: string[], params: Record<string, string> = {}): boolean =>
  permits(['perm', path, wanted, 'any', 1], privs, params);

/** Nodes.pm `index` and Cluster.pm `resources` (extract_node_stats): a node without Sys.Audit there keeps no stats. */
const NODE_STATS = ['uptime', 'cpu', 'maxcpu', 'mem', 'maxmem', 'disk', 'maxdisk'];
function nodeSeen(e: Entry, privs: Privileges): Entry {
  if (may(privs, '/nodes/{node}', ['Sys.Audit'], { node: String(e.node) })) return e;
  return Object.fromEntries(Object.entries(e).filter(([k]) => !NODE_STATS.includes(k)));
}

/** Cluster.pm `resources`: each entry kept only where the caller may audit it. */
function resourceSeen(e: Entry, privs: Privileges): Entry | undefined {
  switch (e.type) {
    case 'qemu':
    case 'lxc':
      return may(privs, '/vms/{vmid}', ['VM.Audit'], { vmid: String(e.vmid) }) ? e : undefined;
    case 'node':
      return nodeSeen(e, privs);
    case 'storage':
      return may(privs, '/storage/{storage}', ['Datastore.Audit'], { storage: String(e.storage) }) ? e : undefined;
    case 'pool':
      return may(privs, '/pool/{pool}', ['Pool.Audit'], { pool: String(e.pool) }) ? e : undefined;
    case 'sdn':
      return may(privs, '/sdn/zones/{sdn}', ['SDN.Audit', 'SDN.Allocate'], { sdn: String(e.sdn) }) ? e : undefined;
    default:
      return e;
  }
}

const entries = (data: unknown): Entry[] => (Array.isArray(data) ? (data as Entry[]) : []);

/**
 * The lists Proxmox answers per caller, by route: each drops (or strips) what the caller may not
 * audit, as the handler named beside it does. `/storage`, `/cluster/log`, `/access/permissions`
 * and `/nodes/{node}/tasks` (paged, so filtered before the page is cut) filter in their handlers.
 */
export const LIST_FILTERS: Record<string, ListFilter> = {
  'GET /cluster/resources': (data, _caller, privs) =>
    entries(data)
      .map((e) => resourceSeen(e, privs))
      .filter((e) => e !== undefined),
  // Cluster.pm `tasks` splits a token's id off the task's user and compares the rest with the caller,
  // so without Sys.Audit on / a token does not even see its own tasks here.
  'GET /cluster/tasks': (data, caller, privs) =>
    may(privs, '/', ['Sys.Audit']) ? data : entries(data).filter((e) => e.user === caller),
  'GET /nodes': (data, _caller, privs) => entries(data).map((e) => nodeSeen(e, privs)),
  'GET /nodes/{node}/qemu': (data, _caller, privs) =>
    entries(data).filter((e) => may(privs, '/vms/{vmid}', ['VM.Audit'], { vmid: String(e.vmid) })),
  'GET /nodes/{node}/lxc': (data, _caller, privs) =>
    entries(data).filter((e) => may(privs, '/vms/{vmid}', ['VM.Audit'], { vmid: String(e.vmid) })),
  'GET /pools': (data, _caller, privs) =>
    entries(data).filter((e) => may(privs, '/pool/{pool}', ['Pool.Audit'], { pool: String(e.poolid) })),
  'GET /nodes/{node}/storage': (data, _caller, privs) =>
    entries(data).filter((e) =>
      may(privs, '/storage/{storage}', ['Datastore.Audit', 'Datastore.AllocateSpace'], { storage: String(e.storage) }),
    ),
};

/**
 * Checks a handler makes beyond the schema's `permissions.check` (which these routes leave at
 * `user: all` or describe only in prose): task status and log of another's task (Tasks.pm), and
 * qemu suspend to disk (Qemu.pm `vm_suspend`: VM.Config.Disk on the guest, Datastore.AllocateSpace
 * on the state storage). Throws Proxmox's 403.
 */
export function checkHandlerPermission(
  routeKey: string,
  caller: string,
  privs: Privileges,
  params: Record<string, unknown>,
  guest: SimGuest | undefined,
): void {
  const node = String(params.node ?? '');
  if (routeKey === 'GET /nodes/{node}/tasks/{upid}/status' || routeKey === 'GET /nodes/{node}/tasks/{upid}/log') {
    const starter = upidStarter(String(params.upid ?? ''));
    if (starter !== undefined && !mayReadTask(caller, starter, privs, node))
      throw new PveHttpError(403, `Permission check failed (/nodes/${node}, Sys.Audit)`);
  }
  if (routeKey === 'POST /nodes/{node}/qemu/{vmid}/status/suspend' && flag(params.todisk)) {
    if (!may(privs, '/vms/{vmid}', ['VM.Config.Disk']))
      throw new PveHttpError(403, `Permission check failed (/vms/${String(params.vmid)}, VM.Config.Disk)`);
    const storage = String(params.statestorage ?? stateStorage(guest));
    if (!may(privs, '/storage/{storage}', ['Datastore.AllocateSpace'], { storage }))
      throw new PveHttpError(403, `Permission check failed (/storage/${storage}, Datastore.AllocateSpace)`);
  }
}
