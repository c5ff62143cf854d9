/**
 * Access control as pve-access-control reports it (GET /access/permissions). The simulator models
 * a token's privileges as one set granted by a role on `/` with propagation, which is how the
 * README sets up the inventory token; `*` stands for root@pam, which holds every privilege on
 * every path (RPCEnvironment.pm `permissions`: root gets the Administrator role's privileges).
 */
import { endpointSchema, type Privileges } from './params.js';
import type { SimCluster } from './state.js';

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
