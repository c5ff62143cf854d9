/**
 * The simulated Proxmox VE API over HTTP(S) on 127.0.0.1: `/api2/json/…` as pveproxy serves it
 * (token auth, status-line reasons, `errors` objects, 501 for unknown routes, 595 for offline
 * nodes) and `/_sim/…`, a control API for tests and benchmarks (docs/simulator.md has the table):
 *
 *   GET  /_sim/counters, POST /_sim/counters/reset      requests per route pattern
 *   GET  /_sim/writes,   POST /_sim/writes/reset        every write request with its real path
 *   GET|POST|DELETE /_sim/faults                        request faults (latency, errors, hang)
 *   GET|POST|DELETE /_sim/task-faults                   write faults: fail, hang, reject
 *   POST /_sim/nodes/{node}/offline|online              a node down or back
 *   POST /_sim/quorum/lost|restored                     quorum lost with every node online
 *   GET|POST /_sim/settings                             taskDelayMs, statusLagMs at runtime
 *   GET  /_sim/state                                    nodes, quorum, guest and task counts
 *   POST /_sim/guests, GET|PATCH|DELETE /_sim/guests/{vmid}   out-of-band guest changes
 *   POST /_sim/tokens, POST /_sim/pveum                 API tokens with chosen privileges; pveum lines
 *
 * `startSimulator()` runs it in-process; the `Simulator` it returns does the same in process.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSelfSignedCertificate } from './cert.js';
import { SimulatorPortError } from './errors.js';
import {
  createGuest,
  deleteGuest,
  setNodeOnline,
  updateGuest,
  type CreateGuestInput,
  type Faults,
  type UpdateGuestInput,
} from './control.js';
import { checkHandlerPermission, LIST_FILTERS, SimAccess } from './access.js';
import { generateCluster, type GenerateOptions } from './generator.js';
import { checkPermission, verifyParams, type Privileges, type RawParams } from './params.js';
import { noSuchConfig, Reply, ROUTES, type Route } from './routes.js';
import { paramError, PveHttpError, type SimCluster } from './state.js';
import { parseTaskFaults, TaskFaultState, type TaskFaults } from './task-faults.js';
import { maskSecrets, WriteLog, type WriteRecord } from './write-log.js';
import { isLoopbackHost } from '../net.js';

export interface SimulatorOptions extends GenerateOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Serve HTTPS with a fresh self-signed certificate (default) or plain HTTP. */
  tls?: boolean;
  /** Proxmox delays 401 answers to ≥3 s; 0 keeps tests fast. */
  authFailDelayMs?: number;
  /** Fixed token secrets (default: random UUIDs per start). */
  tokenSecrets?: { full?: string; auditor?: string };
}

export interface Timing {
  taskDelayMs?: number;
  statusLagMs?: number;
}

export interface SimToken {
  id: string;
  secret: string;
}

/** A token made for a test: its own user holding `privileges` on `/` through a role of the same name. */
export interface TokenRequest {
  /** `user@realm!name`; the user is created when it does not exist. */
  id: string;
  privileges: readonly string[];
  secret?: string;
}

export interface Simulator {
  /** Base URL without `/api2/json`, e.g. `https://127.0.0.1:40123`. */
  url: string;
  /** SHA-256 of the certificate (undefined over plain HTTP). */
  fingerprint: string | undefined;
  /** PEM of the self-signed certificate, usable as a CA file. */
  certificate: string | undefined;
  tokens: { full: SimToken; auditor: SimToken };
  cluster: SimCluster;
  counters(): { total: number; byEndpoint: Record<string, number> };
  resetCounters(): void;
  setFaults(faults: Faults): void;
  /** Replaces the write faults; clearing `hang` lets the tasks it held finish. */
  setTaskFaults(faults: TaskFaults): void;
  /** The write faults in force, with the counts not yet spent. */
  taskFaults(): TaskFaults;
  /** Every write request so far (accepted or refused), oldest first. */
  writes(): WriteRecord[];
  /** `"POST /nodes/pve1/qemu/101/status/start": n` over the write log. */
  writeCounts(): Record<string, number>;
  resetWrites(): void;
  /** false: quorum lost while every node stays online; true: quorum follows the online nodes again. */
  setQuorate(quorate: boolean): void;
  /** Changes how long new write tasks run, or the status lag, while the simulator runs. */
  setTiming(timing: Timing): void;
  setNodeOnline(node: string, online: boolean): void;
  createGuest(input: CreateGuestInput): number;
  updateGuest(vmid: number, input: UpdateGuestInput): void;
  deleteGuest(vmid: number, silent?: boolean): void;
  /** Users, roles, tokens and ACL entries on `/`; `access.pveum(line)` runs a documented `pveum` command. */
  access: SimAccess;
  /** A token with exactly these privileges (on `/`, propagated); answers its id and secret. */
  addToken(request: TokenRequest): SimToken;
  close(): Promise<void>;
}

interface CompiledRoute extends Route {
  re: RegExp;
  names: string[];
  key: string;
}

const COMPILED: CompiledRoute[] = ROUTES.map((route) => {
  const names: string[] = [];
  // Schema paths hold only letters, digits, '-', '_' and {params}: nothing else needs escaping.
  const pattern = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { ...route, re: new RegExp(`^${pattern}$`), names, key: `${route.method} ${route.path}` };
});

const MAX_BODY = 1 << 20;

/** Status-line reasons are the first line of Proxmox's message, restricted to what HTTP allows. */
const reasonPhrase = (text: string): string =>
  text
    .split('\n')[0]!
    .replace(/[^\t\x20-\x7e]/g, '?')
    .slice(0, 200);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(new PveHttpError(413, 'request entity too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function addParam(params: RawParams, key: string, value: string): void {
  const prev = params[key];
  params[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
}

/** Query string for every method, plus a form or JSON body for writes (AnyEvent.pm `extract_params`). */
async function extractParams(req: IncomingMessage, url: URL): Promise<RawParams> {
  const params: RawParams = {};
  for (const [k, v] of url.searchParams) addParam(params, k, v);
  if (req.method === 'GET') return params;
  const body = await readBody(req);
  if (!body) return params;
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new PveHttpError(400, 'unable to parse JSON body');
    }
    for (const [k, v] of Object.entries((json ?? {}) as Record<string, unknown>)) {
      if (Array.isArray(v)) params[k] = v.map(String);
      else if (v !== null && v !== undefined) params[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
    }
  } else {
    for (const [k, v] of new URLSearchParams(body)) addParam(params, k, v);
  }
  return params;
}

/** The path as Proxmox's own logs show it: under /api2/json, ids decoded (a UPID keeps its colons). */
function apiPath(url: URL): string {
  const path = url.pathname.slice('/api2/json'.length) || '/';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const MAX_DELAY_MS = 3_600_000;

/** `POST /_sim/settings`: `{ taskDelayMs?, statusLagMs? }`, each 0–3,600,000 ms. */
function parseTiming(body: Record<string, unknown>): Timing {
  const timing: Timing = {};
  for (const [key, value] of Object.entries(body)) {
    if (key !== 'taskDelayMs' && key !== 'statusLagMs')
      throw new PveHttpError(400, `settings: ${key} is not a setting; use taskDelayMs or statusLagMs`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_DELAY_MS)
      throw new PveHttpError(400, `settings: ${key} must be a number of milliseconds from 0 to ${MAX_DELAY_MS}`);
    timing[key] = value;
  }
  return timing;
}

/**
 * `POST /_sim/tokens` and `sim.addToken()`: the user (created if new), a role named after the token
 * with exactly these privileges granted on `/` to the user and to a privilege-separated token, so
 * the token holds exactly that set whatever else its user holds.
 */
function addToken(access: SimAccess, request: TokenRequest): SimToken {
  const [user, name] = request.id.split('!');
  if (!user || !name) throw new PveHttpError(400, `tokens: id must be user@realm!name, not ${request.id}`);
  if (access.privilegesOf(user) === undefined) access.addUser(user);
  const role = `sim-${user.replace(/[^A-Za-z0-9.\-_]/g, '_')}-${name}`;
  access.addRole(role, request.privileges);
  access.grant('/', [role], [user]);
  const token = access.addToken(user, name, { privsep: true, secret: request.secret });
  access.grant('/', [role], [token.id]);
  return token;
}

function parseTokenRequest(body: Record<string, unknown>): TokenRequest {
  const { id, privileges, secret } = body;
  if (typeof id !== 'string' || !Array.isArray(privileges) || !privileges.every((p) => typeof p === 'string'))
    throw new PveHttpError(400, 'tokens: send { "id": "user@realm!name", "privileges": ["VM.Audit", …] }');
  if (secret !== undefined && typeof secret !== 'string')
    throw new PveHttpError(400, 'tokens: secret must be a string');
  return { id, privileges: privileges as string[], secret: secret as string | undefined };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const { host = '127.0.0.1', port = 0, tls = true, authFailDelayMs = 0 } = options;
  // The control API has no authentication and the tokens are test credentials: loopback only.
  if (!isLoopbackHost(host)) throw new Error(`the simulator listens on loopback only (127.0.0.1, ::1), not ${host}`);
  const cluster = generateCluster(options);
  const access = new SimAccess();
  // Tokens without privilege separation hold what their user holds (RPCEnvironment.pm `permissions`).
  const tokens = {
    full: access.addToken('root@pam', 'inventory', { privsep: false, secret: options.tokenSecrets?.full }),
    auditor: (() => {
      access.addUser('auditor@pve');
      access.grant('/', ['PVEAuditor'], ['auditor@pve']);
      return access.addToken('auditor@pve', 'readonly', { privsep: false, secret: options.tokenSecrets?.auditor });
    })(),
  };
  const counts = new Map<string, number>();
  let total = 0;
  let faults: Faults = {};
  const taskFaults = new TaskFaultState();
  const writeLog = new WriteLog();
  const hanging = new Set<ServerResponse>();
  const cert = tls ? await createSelfSignedCertificate() : undefined;

  function send(res: ServerResponse, status: number, reason: string, payload: unknown, close = false): void {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    res.writeHead(status, reasonPhrase(reason), {
      Server: 'pve-api-daemon/3.0',
      'Content-Type': 'application/json;charset=UTF-8',
      'Cache-Control': 'max-age=0',
      Pragma: 'no-cache',
      Expires: new Date().toUTCString(),
      'Content-Length': Buffer.byteLength(body),
      ...(close ? { Connection: 'close' } : {}),
    });
    res.end(body);
  }

  function sendError(res: ServerResponse, err: PveHttpError): void {
    if (err.status === 401) return send(res, 401, err.reason, undefined, true); // Proxmox: empty body
    const body: Record<string, unknown> = { message: `${err.reason}\n`, data: null };
    if (err.errors) body.errors = err.errors;
    send(res, err.status, err.reason, body, true);
  }

  /** Token auth as pve-http-server parses it: `PVEAPIToken=USER@REALM!ID=SECRET` (or a space after the scheme). */
  function authenticate(req: IncomingMessage): { user: string; privs: Privileges } {
    const header = req.headers.authorization ?? '';
    const m = /(?:^|\s)PVEAPIToken(?:=| )([^;]*)/.exec(header);
    if (!m) throw new PveHttpError(401, 'No ticket');
    const user = access.authenticate(m[1]!.trim());
    const privs = user === undefined ? undefined : access.privilegesOf(user);
    if (user === undefined || !privs) throw new PveHttpError(401, 'Authentication failed!');
    return { user, privs };
  }

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    record: WriteRecord | undefined,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname.slice('/api2/json'.length) || '/';
    let route: CompiledRoute | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of COMPILED) {
      if (r.method !== method) continue;
      match = r.re.exec(path);
      if (match) {
        route = r;
        break;
      }
    }
    const key = route?.key ?? 'unmatched';
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;

    if (!faults.endpoint || faults.endpoint === key) {
      if (faults.hang) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if (faults.latencyMs) await sleep(faults.latencyMs);
      if (faults.errorRate && cluster.rng() < faults.errorRate) {
        throw new PveHttpError(faults.errorStatus ?? 500, 'simulated fault (injected through /_sim/faults)');
      }
    }

    let auth: { user: string; privs: Privileges };
    try {
      auth = authenticate(req);
    } catch (err) {
      if (authFailDelayMs) await sleep(authFailDelayMs);
      throw err;
    }
    if (record) record.user = auth.user;
    if (!route || !match) throw new PveHttpError(501, `Method '${method} ${path}' not implemented`);

    // pve-manager HTTPServer.pm `rest_handler`: merge URI and request parameters, check
    // permissions, proxy /nodes/{node}/… to that node, and only then validate parameters.
    const pathParams: Record<string, string> = {};
    route.names.forEach((name, i) => (pathParams[name] = decodeURIComponent(match![i + 1]!)));
    const raw = await extractParams(req, url);
    if (record) record.params = maskSecrets(raw);
    for (const name of Object.keys(raw)) {
      if (name in pathParams) throw paramError({ [name]: 'duplicate parameter (already defined in URI)' });
    }
    const merged = { ...raw, ...pathParams };
    checkPermission(route.key, auth.privs, merged);
    // HTTPServer.pm proxies unless the node is `localhost` or itself: `localhost` is the answering (local) node.
    const nodeName = pathParams.node === 'localhost' ? cluster.nodes[0]?.name : pathParams.node;
    const node = nodeName === undefined ? undefined : cluster.node(nodeName);
    if (pathParams.node !== undefined) {
      if (!node)
        throw new PveHttpError(
          500,
          `hostname lookup '${pathParams.node}' failed - failed to get address info for: ${pathParams.node}: Name or service not known`,
        );
      if (!node.online)
        throw new PveHttpError(595, 'Errors during connection establishment, proxy handshake: No route to host');
    }
    const params = verifyParams(route.key, merged);
    // Writes go through pmxcfs, which refuses them without quorum (PVE::Cluster::check_cfs_quorum).
    if (method !== 'GET' && !cluster.quorate()) throw new PveHttpError(500, 'cluster not ready - no quorum?');

    let guest;
    if (pathParams.vmid !== undefined) {
      const type = route.path.includes('/qemu/') ? 'qemu' : 'lxc';
      guest = cluster.guests.get(Number(params.vmid));
      if (!guest || guest.node !== node!.name || guest.type !== type)
        throw noSuchConfig(node!.name, type, String(params.vmid));
    }
    checkHandlerPermission(route.key, auth.user, auth.privs, params, guest);
    if (record) {
      const rejection = taskFaults.rejection(route.key, guest?.vmid);
      if (rejection) throw rejection;
    }
    const privilegesOf = (userid: string): Privileges | undefined => access.privilegesOf(userid);
    // Handlers are synchronous: the hook reaches exactly the tasks this request starts.
    cluster.injectFault = record ? (task) => taskFaults.forTask(task) : undefined;
    let result: unknown;
    try {
      result = route.handler({
        cluster,
        params,
        user: auth.user,
        privs: auth.privs,
        privilegesOf,
        fingerprint: cert?.fingerprint,
        node,
        guest,
      });
    } finally {
      cluster.injectFault = undefined;
    }
    if (record) {
      record.status = 200;
      if (typeof result === 'string' && result.startsWith('UPID:')) record.upid = result;
    }
    // root@pam sees everything: its lists skip the per-entry checks (10,000-guest benchmarks).
    const visible = auth.privs.has('*') ? undefined : LIST_FILTERS[route.key];
    if (visible) result = visible(result, auth.user, auth.privs);
    if (result instanceof Reply) send(res, 200, 'OK', { ...result.extra, data: result.data });
    else send(res, 200, 'OK', { data: result ?? null });
  }

  const simulator: Simulator = {
    url: '',
    fingerprint: cert?.fingerprint,
    certificate: cert?.cert,
    tokens,
    cluster,
    counters: () => ({ total, byEndpoint: Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b))) }),
    resetCounters: () => {
      counts.clear();
      total = 0;
    },
    setFaults: (f) => {
      faults = { ...f };
      if (!faults.hang) for (const res of hanging) res.destroy();
    },
    setTaskFaults: (f) => {
      taskFaults.set(f);
      if (!taskFaults.hanging) cluster.releaseHungTasks();
    },
    taskFaults: () => taskFaults.get(),
    writes: () => writeLog.list(),
    writeCounts: () => writeLog.byRequest(),
    resetWrites: () => writeLog.reset(),
    setQuorate: (quorate) => {
      cluster.quorumLost = !quorate;
    },
    setTiming: (timing) => {
      if (timing.taskDelayMs !== undefined) cluster.options.taskDelayMs = timing.taskDelayMs;
      if (timing.statusLagMs !== undefined) cluster.options.statusLagMs = timing.statusLagMs;
    },
    setNodeOnline: (node, online) => setNodeOnline(cluster, node, online),
    createGuest: (input) => createGuest(cluster, input).vmid,
    updateGuest: (vmid, input) => void updateGuest(cluster, vmid, input),
    deleteGuest: (vmid, silent) => deleteGuest(cluster, vmid, silent),
    access,
    addToken: (request) => addToken(access, request),
    close: async () => {
      cluster.close();
      for (const res of hanging) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  /** `/_sim/…`: JSON in, JSON out, for tests, benchmarks and the demo. */
  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean).slice(1);
    const body =
      method === 'GET' || method === 'DELETE'
        ? {}
        : (JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>);
    const ok = (data: unknown): void => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(data ?? { ok: true }));
    };
    const [a, b, c] = parts;
    if (a === 'counters' && method === 'GET') return ok(simulator.counters());
    if (a === 'counters' && b === 'reset' && method === 'POST') return ok(simulator.resetCounters());
    if (a === 'faults' && method === 'GET') return ok(faults);
    if (a === 'faults' && method === 'POST') return ok(simulator.setFaults(body as Faults));
    if (a === 'faults' && method === 'DELETE') return ok(simulator.setFaults({}));
    if (a === 'task-faults' && method === 'GET') return ok(simulator.taskFaults());
    if (a === 'task-faults' && method === 'POST') return ok(simulator.setTaskFaults(parseTaskFaults(body)));
    if (a === 'task-faults' && method === 'DELETE') return ok(simulator.setTaskFaults({}));
    if (a === 'writes' && !b && method === 'GET') {
      const writes = simulator.writes();
      return ok({ total: writes.length, byRequest: simulator.writeCounts(), writes });
    }
    if (a === 'writes' && b === 'reset' && method === 'POST') return ok(simulator.resetWrites());
    if (a === 'quorum' && (b === 'lost' || b === 'restored') && method === 'POST')
      return ok(simulator.setQuorate(b === 'restored'));
    if (a === 'settings' && method === 'GET')
      return ok({ taskDelayMs: cluster.options.taskDelayMs, statusLagMs: cluster.options.statusLagMs });
    if (a === 'settings' && method === 'POST') return ok(simulator.setTiming(parseTiming(body)));
    if (a === 'nodes' && b && (c === 'offline' || c === 'online') && method === 'POST')
      return ok(simulator.setNodeOnline(b, c === 'online'));
    if (a === 'state' && method === 'GET') {
      return ok({
        cluster: cluster.options.name,
        nodes: cluster.nodes.map((n) => ({ name: n.name, online: n.online })),
        quorate: cluster.quorate(),
        guests: cluster.guests.size,
        tasks: cluster.tasks.length,
      });
    }
    if (a === 'tokens' && !b && method === 'POST') return ok(simulator.addToken(parseTokenRequest(body)));
    if (a === 'pveum' && !b && method === 'POST') {
      if (typeof body.command !== 'string')
        throw new PveHttpError(400, 'pveum: send { "command": "pveum role add …" }');
      return ok({ data: access.pveum(body.command) ?? null });
    }
    if (a === 'guests' && !b && method === 'POST') return ok({ vmid: simulator.createGuest(body as CreateGuestInput) });
    if (a === 'guests' && b) {
      const vmid = Number(b);
      if (method === 'GET') {
        const g = cluster.guests.get(vmid);
        if (!g) throw new PveHttpError(404, `no guest ${vmid}`);
        return ok({
          vmid,
          type: g.type,
          node: g.node,
          status: g.status,
          pool: g.pool ?? null,
          config: g.values,
          digest: cluster.digest(g),
        });
      }
      if (method === 'PATCH') return ok(simulator.updateGuest(vmid, body as UpdateGuestInput));
      if (method === 'DELETE') return ok(simulator.deleteGuest(vmid, url.searchParams.get('silent') === '1'));
    }
    throw new PveHttpError(404, `no control route ${method} ${url.pathname}; see docs/simulator.md`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const isApi = url.pathname.startsWith('/api2/json/') || url.pathname === '/api2/json';
    const record = isApi && req.method !== 'GET' ? writeLog.begin(req.method ?? 'POST', apiPath(url)) : undefined;
    try {
      if (isApi) await handleApi(req, res, url, record);
      else if (url.pathname.startsWith('/_sim/')) await handleControl(req, res, url);
      else send(res, 501, `Method '${req.method} ${url.pathname}' not implemented`, { data: null }, true);
    } catch (err) {
      if (res.headersSent) return;
      if (url.pathname.startsWith('/_sim/')) {
        const status = err instanceof PveHttpError ? err.status : 400;
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: (err as Error).message }));
      } else {
        const error = err instanceof PveHttpError ? err : new PveHttpError(500, (err as Error).message);
        if (record) Object.assign(record, { status: error.status, error: reasonPhrase(error.reason) });
        sendError(res, error);
      }
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => void handle(req, res);
  const server: Server = cert
    ? createHttpsServer({ key: cert.key, cert: cert.cert }, listener)
    : createHttpServer(listener);
  server.keepAliveTimeout = 30_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new SimulatorPortError(host, port, err) : err),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  simulator.url = `${cert ? 'https' : 'http'}://${host}:${boundPort}`;
  return simulator;
}
