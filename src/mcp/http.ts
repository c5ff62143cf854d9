/**
 * MCP over Streamable HTTP at /mcp (stateless: a server and transport per request, JSON answers),
 * plus /healthz, /readyz and /metrics (Prometheus; held to /mcp's Host, Origin and token checks).
 * Before a request reaches MCP: the Host header must name this server (DNS rebinding), a browser
 * Origin must be allowed, the bearer token must be one of those set (when any is), and the body
 * must fit the limit. Each refusal says why. The token names the caller: its label and the action
 * kinds its scope holds; without tokens (loopback only) the caller is "loopback" and read-only, so
 * writes over HTTP always need a token.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { McpHttpConfig } from '../config.js';
import type { HttpTokenConfig } from '../config-actions.js';
import type { Logger } from '../log.js';
import { isLoopbackHost, isWildcardHost, urlHost } from '../net.js';
import { toolsListJson } from './server.js';
import type { Caller, RunningCycle } from './tool.js';

/**
 * `tokens`: every bearer token accepted, with its label and scope. Without it, the single `token`
 * is accepted as "default", read-only (what callers before scopes passed).
 */
export type McpHttpOptions = Omit<McpHttpConfig, 'enabled' | 'readyMaxAgeSeconds' | 'tokens' | 'metrics'> & {
  tokens?: readonly HttpTokenConfig[];
  /** false (MCP_METRICS=off): /metrics answers 404 even with a metrics source. */
  metrics?: boolean;
};

export interface Readiness {
  ready: boolean;
  clusters: Array<{
    cluster: string;
    lastSuccessAt: string | null;
    ageMs: number | null;
    ready: boolean;
    /** The latest failure, while the cluster's syncs fail. */
    error?: string;
    /** Failures since the last success the store could not record (a full disk): not ready until one is written. */
    unrecordedFailures?: number;
    /** The cycle running now, shown when the cluster is not ready (a cycle that hangs). */
    cycle?: RunningCycle;
    /** Another cluster answers at the URL: not ready until it is the old one again or the cluster is reset. */
    identityChanged?: { expected: string; seen: string; since: string };
  }>;
  /** The action worker, when actions are enabled: it must take its canary job to be ready. */
  actionWorker?: { healthy: boolean; lastCanaryAt: string | null };
}

export interface McpHttpDeps {
  /** A fresh MCP server for one request, for the caller its token names. */
  createServer: (caller: Caller) => McpServer;
  readiness: () => Readiness;
  log: Logger;
  /** Prometheus exposition for GET /metrics (src/metrics.ts); absent: /metrics answers 404. */
  metrics?: { contentType: string; scrape(): Promise<string> };
  /** The package version, in /healthz (what is running, for whoever probes it). */
  version?: string;
}

export interface McpHttpEndpoint {
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendJson(res: ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The client an action row names. The stateless endpoint never sees a call's `initialize` (its
 * clientInfo went to another request), so the User-Agent header stands in: printable, cut short.
 */
function clientOf(req: IncomingMessage): string | null {
  const agent = (req.headers['user-agent'] ?? '').replace(/[^\x20-\x7e]/g, '').trim();
  return agent ? agent.slice(0, 80) : null;
}

/** JSON-RPC error for refusals, so MCP clients show the reason. */
const refuse = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void =>
  send(res, status, { jsonrpc: '2.0', error: { code: -32000, message }, id: null }, headers);

/** JSON-RPC's own code for text that does not parse, as the SDK answers it on stdio. */
const PARSE_ERROR = -32700;

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/** The path of a request target, or undefined when it is not one (`GET http://[ HTTP/1.1`). */
function requestPath(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://x').pathname;
  } catch {
    return undefined;
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The body as text, or 'too large' as soon as it passes `limit` bytes (a chunked body has no
 * content-length to check first). Reading stops there: the rest is never buffered.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string | 'too large'> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      resolve('too large');
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A 413 the client can read before the connection closes (the unread rest of the body is dropped). */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, limit: number): void {
  res.on('finish', () => req.destroy());
  refuse(
    res,
    413,
    `request body over ${limit} bytes; send less (mcp.http.maxBodyBytes in the config file sets the limit)`,
    { connection: 'close' },
  );
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** This machine's addresses (IPv6 in brackets) and host names: what clients use to reach a wildcard bind. */
function machineNames(): string[] {
  const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => urlHost(i.address)));
  const host = hostname().toLowerCase();
  return [...addresses, host, host.split('.')[0]!, ...LOOPBACK_NAMES];
}

/** The names a bind address is reached by, before MCP_ALLOWED_HOSTS. */
function bindNames(bind: string): string[] {
  if (isWildcardHost(bind)) return [urlHost(bind), ...machineNames()];
  return [urlHost(bind.toLowerCase()), ...(isLoopbackHost(bind) ? LOOPBACK_NAMES : [])];
}

/** Host header values: each name with the port (and bare on port 80, where clients leave it out). */
function acceptedHosts(bind: string, port: number, allowedHosts: string[]): Set<string> {
  const withPort = bindNames(bind).flatMap((n) => (port === 80 ? [n, `${n}:80`] : [`${n}:${port}`]));
  return new Set([...withPort, ...allowedHosts.map((h) => h.toLowerCase())]);
}

/** What a 403 says this server answers to; a wildcard bind's addresses are not listed to whoever asks. */
function describeHosts(bind: string, port: number, allowedHosts: string[]): string {
  const own = isWildcardHost(bind)
    ? `this machine's addresses, host names and localhost`
    : [...new Set(bindNames(bind))].join(', ');
  return `${own}, each with port ${port}${allowedHosts.length ? ', and MCP_ALLOWED_HOSTS' : ''}`;
}

/**
 * A browser page on this machine (`http://localhost:6274`, the MCP Inspector; any port, as the SDK's
 * localhost protection matches host names only). Only for a loopback bind: the Host check still
 * applies, and the token when one is set.
 */
function isLoopbackOrigin(origin: string): boolean {
  try {
    const { protocol, hostname: host } = new URL(origin);
    return (protocol === 'http:' || protocol === 'https:') && isLoopbackHost(host);
  } catch {
    return false; // `null` (a sandboxed page, a file) and other non-URLs
  }
}

/** The credentials of an `Authorization: Bearer …` header; the scheme is case-insensitive (RFC 7235). */
const BEARER = /^bearer +(.*)$/i;
const bearerToken = (header: string | undefined): string => BEARER.exec(header ?? '')?.[1] ?? '';

/** A client that hung up mid-request or mid-answer: any client can cause it, so it is no fault of ours. */
const HANGUP_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);
const clientHungUp = (req: IncomingMessage, err: unknown): boolean =>
  req.socket.destroyed && HANGUP_CODES.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');

/** JSON-RPC 2.0 answers an empty batch with one Invalid Request error (the transport would answer 202, as to notifications). */
const refuseEmptyBatch = (res: ServerResponse): void =>
  send(res, 400, {
    jsonrpc: '2.0',
    error: { code: -32600, message: 'Invalid Request: the batch is empty; send a JSON-RPC request' },
    id: null,
  });

/**
 * A lone tools/list request the transport would answer (both media types accepted, a JSON body, a
 * protocol version it supports): anything else goes through the transport, which says what is wrong.
 */
function isPlainToolsList(req: IncomingMessage, body: unknown): body is { id: string | number } {
  const m = body as { jsonrpc?: unknown; method?: unknown; id?: unknown; params?: unknown } | null;
  const accept = req.headers.accept ?? '';
  const version = req.headers['mcp-protocol-version'];
  return (
    typeof m === 'object' &&
    m !== null &&
    !Array.isArray(m) &&
    m.jsonrpc === '2.0' &&
    m.method === 'tools/list' &&
    (typeof m.id === 'string' || (typeof m.id === 'number' && Number.isInteger(m.id))) &&
    (m.params === undefined || (typeof m.params === 'object' && m.params !== null && !('cursor' in m.params))) &&
    accept.includes('application/json') &&
    accept.includes('text/event-stream') &&
    /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '') &&
    (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(String(version)))
  );
}

export async function startMcpHttp(options: McpHttpOptions, deps: McpHttpDeps): Promise<McpHttpEndpoint> {
  const { log } = deps;
  let port = 0;
  let hosts = new Set<string>();
  const origins = new Set(options.allowedOrigins);
  const loopbackOrigins = isLoopbackHost(options.host);
  const accepted = (
    options.tokens ?? (options.token ? [{ label: 'default', token: options.token, kinds: [] }] : [])
  ).map((t) => ({ label: t.label, digest: digest(t.token.reveal()), kinds: new Set(t.kinds) }));
  /** tools/list's answer per scope (the same for every request of a scope): sent without a server or transport. */
  const toolsLists = new Map<string, string | undefined>();

  /**
   * The caller a request's bearer token names (compared as digests: equal length, constant time,
   * every token compared so the time says nothing of which matched; never echoed), or undefined.
   */
  const callerOf = (req: IncomingMessage): Caller | undefined => {
    const client = clientOf(req);
    if (!accepted.length) return { transport: 'mcp-http', client, principal: 'loopback', kinds: new Set() };
    const presented = digest(bearerToken(req.headers.authorization));
    let found: (typeof accepted)[number] | undefined;
    for (const t of accepted) if (timingSafeEqual(presented, t.digest) && !found) found = t;
    return found && { transport: 'mcp-http', client, principal: found.label, kinds: found.kinds };
  };
  const hasToken = (req: IncomingMessage): boolean => callerOf(req) !== undefined;

  /**
   * The Host header names this server (no DNS rebinding). A wildcard bind's addresses can change
   * while it runs (DHCP, a VPN coming up): a name not known is looked up again before the refusal.
   */
  const hostOk = (req: IncomingMessage): boolean => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (hosts.has(host)) return true;
    if (isWildcardHost(options.host)) hosts = acceptedHosts(options.host, port, options.allowedHosts);
    return hosts.has(host);
  };
  /** A browser Origin, if any, is listed, or a page on this machine when the server listens on loopback only. */
  const originOk = (req: IncomingMessage): boolean => {
    const { origin } = req.headers;
    return origin === undefined || origins.has(origin) || (loopbackOrigins && isLoopbackOrigin(origin));
  };

  /** The caller of a request /mcp accepts (Host, Origin, token), or undefined once it is refused with the reason. */
  function admit(req: IncomingMessage, res: ServerResponse): Caller | undefined {
    if (!hostOk(req)) {
      const host = (req.headers.host ?? '').toLowerCase();
      const known = describeHosts(options.host, port, options.allowedHosts);
      refuse(
        res,
        403,
        `Host header "${host}" is not one of the ${hosts.size} names this server answers to (${known}); if clients reach it as "${host}", add that to MCP_ALLOWED_HOSTS`,
      );
      return undefined;
    }
    if (!originOk(req)) {
      refuse(res, 403, `Origin "${req.headers.origin}" is not allowed; list it in MCP_ALLOWED_ORIGINS`);
      return undefined;
    }
    const caller = callerOf(req);
    if (!caller)
      refuse(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="proxmox-inventory"' });
    return caller;
  }

  /** Prometheus scrapes: the same Host, Origin and token rules as /mcp, since the counts describe the inventory. */
  async function handleMetrics(
    req: IncomingMessage,
    res: ServerResponse,
    metrics: NonNullable<McpHttpDeps['metrics']>,
  ): Promise<void> {
    if (!admit(req, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return refuse(res, 405, `${req.method} /metrics: scrape it with GET`, { allow: 'GET, HEAD' });
    const text = await metrics.scrape();
    res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const caller = admit(req, res);
    if (!caller) return;
    // Stateless: no server-sent stream to GET (it would stay open forever and carry nothing) and no session to DELETE.
    if (req.method !== 'POST')
      return refuse(res, 405, `${req.method} /mcp: this endpoint is stateless; send JSON-RPC requests with POST`, {
        allow: 'POST',
      });
    if (Number(req.headers['content-length'] ?? 0) > options.maxBodyBytes)
      return refuseTooLarge(req, res, options.maxBodyBytes);
    const text = await readBody(req, options.maxBodyBytes);
    if (text === 'too large') return refuseTooLarge(req, res, options.maxBodyBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const error = { code: PARSE_ERROR, message: 'Parse error: the request body is not JSON' };
      return send(res, 400, { jsonrpc: '2.0', error, id: null });
    }
    if (Array.isArray(body) && body.length === 0) return refuseEmptyBatch(res);
    if (isPlainToolsList(req, body)) {
      const scope = [...caller.kinds].sort().join();
      if (!toolsLists.has(scope)) toolsLists.set(scope, toolsListJson(deps.createServer(caller)));
      const toolsList = toolsLists.get(scope);
      if (toolsList !== undefined)
        return sendJson(res, `{"result":${toolsList},"jsonrpc":"2.0","id":${JSON.stringify(body.id)}}`);
    }
    const server = deps.createServer(caller);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req.url);
    if (path === undefined) return refuse(res, 400, 'malformed request target; MCP is at /mcp');
    if (path === '/mcp') return handleMcp(req, res);
    if (path === '/metrics' && deps.metrics && options.metrics !== false) return handleMetrics(req, res, deps.metrics);
    if (path === '/healthz' && req.method === 'GET') return send(res, 200, { ok: true, version: deps.version });
    if (path === '/readyz' && req.method === 'GET') {
      const r = deps.readiness();
      // Errors, identities and requests in flight are for a request /mcp would accept (Host, Origin,
      // token); any other (a page rebinding a name to this address) learns only whether each cluster is ready.
      const detailed = hostOk(req) && originOk(req) && hasToken(req);
      const shown = detailed
        ? r
        : { ready: r.ready, clusters: r.clusters.map((c) => ({ cluster: c.cluster, ready: c.ready })) };
      return send(res, r.ready ? 200 : 503, shown);
    }
    send(res, 404, { error: `no route ${req.method} ${path}; MCP is at /mcp` });
  }

  // Every step of a request, parsing included, runs inside this guard: nothing a client sends
  // may throw past it and take the daemon (and its sync) down.
  const http: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (clientHungUp(req, err))
        return void log.debug({ code: (err as NodeJS.ErrnoException).code, method: req.method }, 'HTTP client hung up');
      log.error({ err, method: req.method }, 'HTTP request failed');
      if (!res.headersSent) refuse(res, 500, 'internal error; the server log has the details');
      else res.end();
    });
  });
  // Requests Node's parser rejects (bad request line, header overflow) and clients that hang up:
  // a plain status where the socket still takes one, logged at debug (any client can cause them).
  http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ code: err.code }, 'HTTP client error');
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => resolve());
  });
  port = (http.address() as AddressInfo).port;
  hosts = acceptedHosts(options.host, port, options.allowedHosts);
  return {
    url: `http://${urlHost(options.host)}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
