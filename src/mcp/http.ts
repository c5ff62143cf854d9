/**
 * MCP over Streamable HTTP at /mcp (stateless: a server and transport per request, JSON answers),
 * plus /healthz and /readyz. Before a request reaches MCP: the Host header must name this server
 * (DNS rebinding), a browser Origin must be allowed, the bearer token must match when one is set,
 * and the body must fit the limit. Each refusal says why.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpHttpConfig } from '../config.js';
import type { Logger } from '../log.js';
import { isLoopbackHost } from '../net.js';
import type { RunningCycle } from './tool.js';

export type McpHttpOptions = Omit<McpHttpConfig, 'enabled' | 'readyMaxAgeSeconds'>;

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
}

export interface McpHttpDeps {
  /** A fresh MCP server for one request. */
  createServer: () => McpServer;
  readiness: () => Readiness;
  log: Logger;
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

/** JSON-RPC error for refusals, so MCP clients show the reason. */
const refuse = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void =>
  send(res, status, { jsonrpc: '2.0', error: { code: -32000, message }, id: null }, headers);

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

export async function startMcpHttp(options: McpHttpOptions, deps: McpHttpDeps): Promise<McpHttpEndpoint> {
  const { log } = deps;
  let hosts = new Set<string>();
  const origins = new Set(options.allowedOrigins);
  const expectedToken = options.token ? digest(`Bearer ${options.token.reveal()}`) : undefined;

  /** The request carries the bearer token (compared as digests: equal length, constant time, never echoed). */
  const hasToken = (req: IncomingMessage): boolean =>
    !expectedToken || timingSafeEqual(digest(req.headers.authorization ?? ''), expectedToken);

  /** The Host header names this server (no DNS rebinding) and a browser Origin, if any, is allowed. */
  const hostOk = (req: IncomingMessage): boolean => hosts.has((req.headers.host ?? '').toLowerCase());
  const originOk = (req: IncomingMessage): boolean =>
    req.headers.origin === undefined || origins.has(req.headers.origin);

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostOk(req))
      return refuse(
        res,
        403,
        `Host header "${(req.headers.host ?? '').toLowerCase()}" is not this server's; add it to MCP_ALLOWED_HOSTS if a proxy forwards it`,
      );
    if (!originOk(req))
      return refuse(res, 403, `Origin "${req.headers.origin}" is not allowed; list it in MCP_ALLOWED_ORIGINS`);
    if (!hasToken(req))
      return refuse(res, 401, 'missing or wrong bearer token', {
        'www-authenticate': 'Bearer realm="proxmox-inventory"',
      });
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
      return refuse(res, 400, 'the request body is not JSON');
    }
    const server = deps.createServer();
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
    if (path === '/healthz' && req.method === 'GET') return send(res, 200, { ok: true });
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
  const { port } = http.address() as AddressInfo;
  const bound = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  hosts = new Set([
    `${bound}:${port}`,
    ...(isLoopbackHost(options.host) ? [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`] : []),
    ...options.allowedHosts.map((h) => h.toLowerCase()),
  ]);
  return {
    url: `http://${bound}:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
