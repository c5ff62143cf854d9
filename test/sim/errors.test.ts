/**
 * Error answers of the simulator as pveproxy gives them (API-NOTES §4): the status line carries
 * the reason, 401 has an empty body, 400 names parameters in `errors`, 403 names path and
 * privilege, 500 is the handler's die text, 501 the unknown route. Read with node:http so the
 * reason phrase (`statusMessage`) is visible.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSchema } from '../../src/sim/params.js';
import { ROUTES } from '../../src/sim/routes.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { checkErrorResponse } from '../contract/pve-shapes.js';
import { loadEndpointSchema } from '../contract/schema-check.js';

interface RawAnswer {
  status: number;
  reason: string;
  text: string;
  body: Record<string, unknown> | undefined;
}

let sim: Simulator;

function raw(
  method: string,
  path: string,
  options: { auth?: string | null; params?: Record<string, string> } = {},
): Promise<RawAnswer> {
  const url = new URL(`${sim.url}/api2/json${path}`);
  const headers: Record<string, string> = {};
  const auth =
    options.auth === undefined ? `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` : options.auth;
  if (auth !== null) headers.Authorization = auth;
  let body: string | undefined;
  if (options.params) {
    const encoded = new URLSearchParams(options.params).toString();
    if (method === 'GET' || method === 'DELETE') {
      url.search = encoded;
    } else {
      body = encoded;
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          reason: res.statusMessage ?? '',
          text,
          body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const auditor = (): string => `PVEAPIToken=${sim.tokens.auditor.id}=${sim.tokens.auditor.secret}`;

function errorProblems(res: RawAnswer): string[] {
  return checkErrorResponse(res.status, res.reason, res.text);
}

const WRITE_ROUTES = ROUTES.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);

interface Target {
  vmid: number;
  node: string;
}
let targets: Record<'qemu' | 'lxc', Target>;

const typeOf = (key: string): 'qemu' | 'lxc' => (key.includes('/qemu/') ? 'qemu' : 'lxc');

function pathFor(key: string, vmid: number | string, node: string): { method: string; path: string } {
  const [method, template] = key.split(' ') as [string, string];
  return {
    method,
    path: template.replace('{node}', node).replace('{vmid}', String(vmid)).replace('{snapname}', 'before-upgrade'),
  };
}

/** Valid values for the required parameters of an endpoint that do not come from the path. */
function requiredParams(key: string, target: Target): Record<string, string> {
  const props = loadEndpointSchema(key).parameters.properties ?? {};
  const values: Record<string, string> = {};
  for (const [name, prop] of Object.entries(props)) {
    if (prop.optional || key.includes(`{${name}}`)) continue;
    if (name === 'snapname') values.snapname = 'errs';
    else if (name === 'newid') values.newid = '9000';
    else if (name === 'target') values.target = target.node === 'pve1' ? 'pve2' : 'pve1';
    else if (name === 'command') values.command = 'hostname';
    else throw new Error(`${key}: no test value for required parameter ${name}`);
  }
  return values;
}

/** The reason Proxmox gives a token without the endpoint's privileges, from the schema's permissions. */
function expectedPermissionReason(key: string, vmid: number): string {
  const check = (endpointSchema(key)?.permissions as { check?: unknown[] } | undefined)?.check;
  if (!Array.isArray(check)) throw new Error(`${key}: no permission check in the schema`);
  // ["and", first, …]: a token without any write privilege fails the first operand.
  const perm = (check[0] === 'and' ? check[1] : check) as [string, string, string[], ...unknown[]];
  const [, path, privs, ...opts] = perm;
  return `Permission check failed (${path.replace('{vmid}', String(vmid))}, ${opts.includes('any') ? privs.join('|') : privs[0]})`;
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, seed: 11, nodes: 3, guests: 60, taskDelayMs: 30 });
  const res = await fetch(`${sim.url}/api2/json/cluster/resources?type=vm`, {
    headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` },
  });
  const guests = ((await res.json()) as { data: Array<{ vmid: number; node: string; type: 'qemu' | 'lxc' }> }).data;
  const pick = (type: 'qemu' | 'lxc'): Target => {
    const g = guests.find((e) => e.type === type);
    if (!g) throw new Error(`no ${type} guest`);
    return { vmid: g.vmid, node: g.node };
  };
  targets = { qemu: pick('qemu'), lxc: pick('lxc') };
});

afterAll(async () => {
  await sim?.close();
});

describe('authentication (401, empty body, reason in the status line)', () => {
  it('no Authorization header → 401 "No ticket"', async () => {
    const res = await raw('GET', '/cluster/resources', { auth: null });
    expect([res.status, res.reason, res.text]).toEqual([401, 'No ticket', '']);
    expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
  });

  it.each([
    ['a wrong secret', (): string => `PVEAPIToken=${sim.tokens.full.id}=00000000-0000-0000-0000-000000000000`],
    ['an unknown token id', (): string => `PVEAPIToken=root@pam!nope=${sim.tokens.full.secret}`],
    [
      'the auditor id with the full token secret',
      (): string => `PVEAPIToken=${sim.tokens.auditor.id}=${sim.tokens.full.secret}`,
    ],
  ])('%s → 401 "Authentication failed!"', async (_label, header) => {
    const res = await raw('GET', '/version', { auth: header() });
    expect([res.status, res.reason, res.text]).toEqual([401, 'Authentication failed!', '']);
    expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
  });

  it('a wrong secret is "Authentication failed!", on unknown routes too (auth comes before routing)', async () => {
    const wrong = `PVEAPIToken=${sim.tokens.full.id}=wrong`;
    expect((await raw('GET', '/cluster/status', { auth: wrong })).reason).toBe('Authentication failed!');
    const unknown = await raw('GET', '/nope', { auth: wrong });
    expect([unknown.status, unknown.reason]).toEqual([401, 'Authentication failed!']);
  });

  it('the token also works as "PVEAPIToken <id>=<secret>" (space instead of "=")', async () => {
    const res = await raw('GET', '/version', { auth: `PVEAPIToken ${sim.tokens.full.id}=${sim.tokens.full.secret}` });
    expect(res.status).toBe(200);
  });
});

describe('501 for routes the API does not have', () => {
  it.each([
    ['GET', '/nope'],
    ['POST', '/version'],
    ['GET', '/nodes/pve1/qemu/100/nothing'],
  ])('%s %s', async (method, path) => {
    const res = await raw(method, path);
    expect(res.status).toBe(501);
    expect(res.reason).toBe(`Method '${method} ${path}' not implemented`);
    expect(res.body).toEqual({ message: `Method '${method} ${path}' not implemented\n`, data: null });
    expect(checkErrorResponse(res.status, res.reason, res.text)).toEqual([]);
  });
});

describe('the auditor token (VM.Audit, Sys.Audit, …)', () => {
  it('may read', async () => {
    for (const path of [
      '/cluster/resources',
      '/cluster/status',
      `/nodes/${targets.qemu.node}/qemu/${targets.qemu.vmid}/config`,
      '/storage',
      `/nodes/${targets.qemu.node}/storage/local/status`,
    ]) {
      expect((await raw('GET', path, { auth: auditor() })).status, path).toBe(200);
    }
  });

  it('gets 403 on guest-agent exec-status (VM.GuestAgent.Unrestricted)', async () => {
    const { node, vmid } = targets.qemu;
    const res = await raw('GET', `/nodes/${node}/qemu/${vmid}/agent/exec-status`, {
      auth: auditor(),
      params: { pid: '1' },
    });
    expect([res.status, res.reason]).toEqual([
      403,
      `Permission check failed (/vms/${vmid}, VM.GuestAgent.Unrestricted)`,
    ]);
  });

  it('is refused before parameters are checked, and before an offline node is contacted (rest_handler order)', async () => {
    const { node, vmid } = targets.qemu;
    const bad = await raw('POST', `/nodes/${node}/qemu/${vmid}/status/start`, {
      auth: auditor(),
      params: { bogus: '1' },
    });
    expect([bad.status, bad.reason]).toEqual([403, `Permission check failed (/vms/${vmid}, VM.PowerMgmt)`]);
    sim.setNodeOnline(node, false);
    try {
      const offline = await raw('POST', `/nodes/${node}/qemu/${vmid}/status/start`, { auth: auditor() });
      expect(offline.status).toBe(403);
      expect((await raw('POST', `/nodes/${node}/qemu/${vmid}/status/start`)).status).toBe(595);
    } finally {
      sim.setNodeOnline(node, true);
    }
  });

  it.each(WRITE_ROUTES)('gets 403 with the schema privilege on %s', async (key) => {
    const target = targets[typeOf(key)];
    const { method, path } = pathFor(key, target.vmid, target.node);
    const res = await raw(method, path, { auth: auditor(), params: requiredParams(key, target) });
    expect(res.status).toBe(403);
    expect(res.reason).toBe(expectedPermissionReason(key, target.vmid));
    expect(res.body).toEqual({ message: `${res.reason}\n`, data: null });
    expect(errorProblems(res)).toEqual([]);
  });
});

describe('parameter verification and missing guests on every write endpoint', () => {
  it('covers all 26 write routes the simulator serves', () => {
    expect(WRITE_ROUTES).toHaveLength(26);
    expect(new Set(WRITE_ROUTES.map((k) => k.split(' ')[0]))).toEqual(new Set(['POST', 'PUT', 'DELETE']));
  });

  it.each(WRITE_ROUTES)('%s: an unknown parameter → 400 errors.<param>', async (key) => {
    const target = targets[typeOf(key)];
    const { method, path } = pathFor(key, target.vmid, target.node);
    const res = await raw(method, path, { params: { ...requiredParams(key, target), bogus: '1' } });
    expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(res.body?.errors).toEqual({
      bogus: 'property is not defined in schema and the schema does not allow additional properties',
    });
    expect(res.body?.data).toBeNull();
    expect(errorProblems(res)).toEqual([]);
  });

  it.each(WRITE_ROUTES)('%s: vmid "abc" → 400 type check', async (key) => {
    const target = targets[typeOf(key)];
    const { method, path } = pathFor(key, 'abc', target.node);
    const res = await raw(method, path, { params: requiredParams(key, target) });
    expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(res.body?.errors).toEqual({ vmid: "type check ('integer') failed - got 'abc'" });
    expect(errorProblems(res)).toEqual([]);
  });

  it.each(WRITE_ROUTES)('%s: a vmid that does not exist → 500 "Configuration file … does not exist"', async (key) => {
    const type = typeOf(key);
    const target = { vmid: 999999, node: 'pve1' };
    const { method, path } = pathFor(key, target.vmid, target.node);
    const res = await raw(method, path, { params: requiredParams(key, target) });
    const message = `Configuration file 'nodes/pve1/${type === 'qemu' ? 'qemu-server' : 'lxc'}/999999.conf' does not exist`;
    expect([res.status, res.reason]).toEqual([500, message]);
    expect(res.body).toEqual({ message: `${message}\n`, data: null });
    expect(errorProblems(res)).toEqual([]);
  });

  it('a guest on another node is "does not exist" on this one (config lives under the node)', async () => {
    const { node, vmid } = targets.qemu;
    const other = node === 'pve1' ? 'pve2' : 'pve1';
    const res = await raw('POST', `/nodes/${other}/qemu/${vmid}/status/start`);
    expect([res.status, res.reason]).toEqual([
      500,
      `Configuration file 'nodes/${other}/qemu-server/${vmid}.conf' does not exist`,
    ]);
    const wrongType = await raw('GET', `/nodes/${node}/lxc/${vmid}/config`);
    expect([wrongType.status, wrongType.reason]).toEqual([
      500,
      `Configuration file 'nodes/${node}/lxc/${vmid}.conf' does not exist`,
    ]);
  });

  const REQUIRED = WRITE_ROUTES.flatMap((key) =>
    Object.keys(requiredParams(key, { vmid: 100, node: 'pve1' })).map((name): [string, string] => [key, name]),
  );

  it('the endpoints with required body parameters are snapshot, clone, migrate and agent exec', () => {
    expect(REQUIRED.map(([key, name]) => `${key.split('/').slice(3).join('/')} ${name}`).sort()).toEqual([
      'lxc/{vmid}/clone newid',
      'lxc/{vmid}/migrate target',
      'lxc/{vmid}/snapshot snapname',
      'qemu/{vmid}/agent/exec command',
      'qemu/{vmid}/clone newid',
      'qemu/{vmid}/migrate target',
      'qemu/{vmid}/snapshot snapname',
    ]);
  });

  it.each(REQUIRED)('%s without %s → 400 "property is missing"', async (key, name) => {
    const target = targets[typeOf(key)];
    const { method, path } = pathFor(key, target.vmid, target.node);
    const params = requiredParams(key, target);
    delete params[name];
    const res = await raw(method, path, { params });
    expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(res.body?.errors).toEqual({ [name]: 'property is missing and it is not optional' });
    expect(errorProblems(res)).toEqual([]);
  });

  it('all problems land in one errors object (unknown + malformed + missing)', async () => {
    const { node, vmid } = targets.qemu;
    const res = await raw('POST', `/nodes/${node}/qemu/${vmid}/clone`, { params: { full: 'maybe', bogus: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body?.errors).toEqual({
      full: "type check ('boolean') failed - got 'maybe'",
      bogus: 'property is not defined in schema and the schema does not allow additional properties',
      newid: 'property is missing and it is not optional',
    });
  });

  it('out-of-range and enum violations name the parameter', async () => {
    const { node, vmid } = targets.qemu;
    const low = await raw('POST', `/nodes/${node}/qemu/${vmid}/clone`, { params: { newid: '5' } });
    expect(low.body?.errors).toEqual({ newid: 'value must have a minimum value of 100' });
    const tasks = await raw('GET', `/nodes/${node}/tasks`, { params: { source: 'everything' } });
    expect(tasks.status).toBe(400);
    expect(Object.keys(tasks.body?.errors ?? {})).toEqual(['source']);
  });

  it('a parameter given in the URI and again in the body is a duplicate', async () => {
    const { node, vmid } = targets.qemu;
    const res = await raw('POST', `/nodes/${node}/qemu/${vmid}/status/start`, { params: { vmid: String(vmid) } });
    expect([res.status, res.body?.errors]).toEqual([400, { vmid: 'duplicate parameter (already defined in URI)' }]);
  });

  it('an unknown UPID → 400 errors.upid "no such task"', async () => {
    const upid = `UPID:${targets.qemu.node}:00000001:00000001:00000001:qmstart:100:root@pam:`;
    const res = await raw('GET', `/nodes/${targets.qemu.node}/tasks/${upid}/status`);
    expect(res.status).toBe(400);
    expect(res.body?.errors).toEqual({ upid: 'no such task' });
    expect(errorProblems(res)).toEqual([]);
  });

  it('none of the rejected requests started a task', async () => {
    const res = await fetch(`${sim.url}/api2/json/cluster/tasks`, {
      headers: { Authorization: `PVEAPIToken=${sim.tokens.full.id}=${sim.tokens.full.secret}` },
    });
    expect(((await res.json()) as { data: unknown[] }).data).toEqual([]);
  });
});
