/**
 * What a token may read of the cluster log and of its own privileges, as Proxmox VE answers:
 * GET /cluster/log with and without Sys.Syslog on / (pve-manager Cluster.pm `log`, pmxcfs
 * logger.c `clog_dump_json`), and GET /access/permissions (pve-access-control
 * API2/AccessControl.pm `permissions`, RPCEnvironment.pm `get_effective_permissions`), for the
 * root token and the PVEAuditor one, over HTTP and through the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxmoxClient } from '../../src/proxmox/client.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { Secret } from '../../src/secret.js';
import { ROUTES } from '../../src/sim/routes.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { PveHttpError } from '../../src/sim/state.js';
import { checkAccessPermissions, checkErrorResponse } from '../contract/pve-shapes.js';
import { checkAgainstSchema, loadEndpointSchema } from '../contract/schema-check.js';

type Entry = Record<string, unknown>;
type Token = 'full' | 'auditor';

let sim: Simulator;
let vmid: number;
const clients: Partial<Record<Token, ProxmoxClient>> = {};

async function get(
  path: string,
  token: Token,
): Promise<{ status: number; reason: string; text: string; data: unknown; errors?: unknown }> {
  const { id, secret } = sim.tokens[token];
  const res = await fetch(`${sim.url}/api2/json${path}`, { headers: { Authorization: `PVEAPIToken=${id}=${secret}` } });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Entry) : {};
  return { status: res.status, reason: res.statusText, text, data: body.data, errors: body.errors };
}

async function data<T>(path: string, token: Token): Promise<T> {
  const res = await get(path, token);
  expect(res.status, `${path}: ${res.text.slice(0, 200)}`).toBe(200);
  return res.data as T;
}

function client(token: Token): ProxmoxClient {
  clients[token] ??= createHttpProxmoxClient({
    cluster: 'sim',
    url: sim.url,
    tokenId: sim.tokens[token].id,
    tokenSecret: new Secret(sim.tokens[token].secret),
    tls: {},
    retries: 0,
  });
  return clients[token];
}

const schemaProblems = (endpoint: string, payload: unknown): string[] =>
  checkAgainstSchema(payload, loadEndpointSchema(endpoint).returns).problems;

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 5, nodes: 3, guests: 40, taskDelayMs: 5 });
  vmid = [...sim.cluster.guests.values()].find((g) => g.type === 'qemu')!.vmid;
});

afterAll(async () => {
  for (const c of Object.values(clients)) await c.close();
  await sim?.close();
});

describe("GET /cluster/log: every line with Sys.Syslog on /, else only the caller's own", () => {
  const auditorId = (): string => sim.tokens.auditor.id;

  beforeAll(() => {
    sim.cluster.log('pve1', auditorId(), 'auditor token line 1');
    sim.updateGuest(vmid, { config: { memory: '4096' } }); // a UI edit by root@pam: `update VM N: -memory 4096`
    sim.cluster.log('pve2', 'auditor@pve', "a line of the token's user, not of the token");
    sim.cluster.log('pve1', auditorId(), 'auditor token line 2');
    sim.cluster.log('pve3', 'root@pam', "another user's line");
  });

  it('the root token sees every line, newest first, the UI edit among them', async () => {
    const lines = await data<Entry[]>('/cluster/log?max=1000', 'full');
    expect(schemaProblems('GET /cluster/log', lines)).toEqual([]);
    expect(lines.map((l) => l.uid)).toEqual(sim.cluster.clusterLog.map((l) => l.uid).reverse());
    expect(lines.some((l) => l.user === 'root@pam' && l.msg === `update VM ${vmid}: -memory 4096`)).toBe(true);
    expect(lines.filter((l) => String(l.msg).startsWith('auditor token line'))).toHaveLength(2);
  });

  it('the PVEAuditor token (no Sys.Syslog) sees only the lines logged under its own token id', async () => {
    const lines = await data<Entry[]>('/cluster/log?max=1000', 'auditor');
    expect(schemaProblems('GET /cluster/log', lines)).toEqual([]);
    // pmxcfs compares the whole ident: the token's user (auditor@pve) is somebody else.
    expect(lines.map((l) => [l.user, l.msg])).toEqual([
      [auditorId(), 'auditor token line 2'],
      [auditorId(), 'auditor token line 1'],
    ]);
    expect(lines[0]).toMatchObject({ node: 'pve1', id: `${String(lines[0]!.uid)}:pve1` });
  });

  it('`max` counts the lines the caller may see', async () => {
    const lines = await data<Entry[]>('/cluster/log?max=1', 'auditor');
    expect(lines.map((l) => l.msg)).toEqual(['auditor token line 2']);
    expect((await data<Entry[]>('/cluster/log?max=1', 'full')).map((l) => l.msg)).toEqual(["another user's line"]);
  });

  it("through the client: the auditor's read has no `update VM` line, the root token's has", async () => {
    const update = `update VM ${vmid}: -memory 4096`;
    expect((await client('full').clusterLog(1000)).some((l) => l.msg === update)).toBe(true);
    const audited = await client('auditor').clusterLog(1000);
    expect(audited.length).toBe(2);
    expect(audited.some((l) => l.msg.startsWith('update VM'))).toBe(false);
  });
});

describe('GET /access/permissions', () => {
  const TOP_PATHS = ['/', '/access', '/access/groups', '/nodes', '/pool', '/sdn', '/storage', '/vms'];
  const PVE_AUDITOR = {
    'Datastore.Audit': 1,
    'Mapping.Audit': 1,
    'Pool.Audit': 1,
    'SDN.Audit': 1,
    'Sys.Audit': 1,
    'VM.Audit': 1,
    'VM.GuestAgent.Audit': 1,
  };
  /** get_effective_permissions: the top-level paths plus every pool member's /vms/<vmid>. */
  const expectedPaths = (): string[] =>
    [...TOP_PATHS, ...[...sim.cluster.guests.values()].filter((g) => g.pool).map((g) => `/vms/${g.vmid}`)].sort();
  const allPrivileges = (): string[] =>
    Object.keys(loadEndpointSchema('GET /access/roles/{roleid}').returns.properties ?? {}).sort();

  it('the root token holds every privilege of the 9.1 schema on every path, propagated', async () => {
    const perms = await data<Record<string, Entry>>('/access/permissions', 'full');
    expect(checkAccessPermissions(perms)).toEqual([]);
    expect(schemaProblems('GET /access/permissions', perms)).toEqual([]);
    expect(Object.keys(perms).sort()).toEqual(expectedPaths());
    expect(expectedPaths().length).toBeGreaterThan(TOP_PATHS.length); // the generated pools have members
    expect(allPrivileges()).toHaveLength(47);
    for (const held of Object.values(perms))
      expect(held).toEqual(Object.fromEntries(allPrivileges().map((p) => [p, 1])));
    expect(perms['/']!['Sys.Syslog']).toBe(1);
  });

  it('the auditor token holds the PVEAuditor privileges, without Sys.Syslog', async () => {
    const perms = await data<Record<string, Entry>>('/access/permissions', 'auditor');
    expect(checkAccessPermissions(perms)).toEqual([]);
    expect(schemaProblems('GET /access/permissions', perms)).toEqual([]);
    expect(Object.keys(perms).sort()).toEqual(expectedPaths());
    for (const held of Object.values(perms)) expect(held).toEqual(PVE_AUDITOR);
  });

  it('?path= answers that one path only', async () => {
    for (const token of ['full', 'auditor'] as const) {
      const root = await data<Record<string, Entry>>('/access/permissions?path=/', token);
      expect(checkAccessPermissions(root, '/')).toEqual([]);
      expect(Object.keys(root)).toEqual(['/']);
      const vm = await data<Record<string, Entry>>(`/access/permissions?path=/vms/${vmid}`, token);
      expect(checkAccessPermissions(vm, `/vms/${vmid}`)).toEqual([]);
    }
    expect(await data('/access/permissions?path=/', 'auditor')).toEqual({ '/': PVE_AUDITOR });
  });

  it('userid: another user needs Sys.Audit on /access; an unknown one holds nothing; a malformed one is a 400', async () => {
    // The auditor has Sys.Audit (propagated from /), so it may read root's privileges.
    expect(
      Object.keys((await data<Record<string, Entry>>('/access/permissions?userid=root@pam&path=/', 'auditor'))['/']!),
    ).toEqual(allPrivileges());
    expect(await data('/access/permissions?userid=auditor@pve&path=/', 'full')).toEqual({ '/': PVE_AUDITOR });
    expect(await data('/access/permissions?userid=nobody@pve', 'auditor')).toEqual({});
    expect(await data('/access/permissions?userid=nobody@pve&path=/', 'auditor')).toEqual({ '/': {} });
    const bad = await get('/access/permissions?userid=not-a-user', 'full');
    expect([bad.status, bad.errors]).toEqual([400, { userid: 'value does not match the regex pattern' }]);
    expect(checkErrorResponse(bad.status, bad.reason, bad.text)).toEqual([]);
    // A token without Sys.Audit (none of the simulator's two) may ask about itself only.
    const route = ROUTES.find((r) => r.method === 'GET' && r.path === '/access/permissions')!;
    const ask = (userid?: string): unknown =>
      route.handler({
        cluster: sim.cluster,
        params: userid ? { userid } : {},
        user: 'mon@pve!ro',
        privs: new Set(['VM.Audit']),
        fingerprint: undefined,
      });
    expect(Object.keys(ask() as Entry)).toContain('/');
    expect(() => ask('root@pam')).toThrow(new PveHttpError(403, 'Permission check failed (/access, Sys.Audit)'));
  });

  it('through the client: privileges per path with the propagate flag as a boolean', async () => {
    expect(await client('auditor').permissions('/')).toEqual({
      '/': Object.fromEntries(Object.keys(PVE_AUDITOR).map((p) => [p, true])),
    });
    const full = await client('full').permissions();
    expect(Object.keys(full).sort()).toEqual(expectedPaths());
    expect(full['/']!['Sys.Syslog']).toBe(true);
  });
});
