/**
 * MCP over Streamable HTTP: the real SDK client against the endpoint `serve` runs, and what stands
 * before it: the bearer token, Host and Origin checks, the body limit, /healthz and /readyz.
 */
import { request } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startMcpHttp, type McpHttpEndpoint, type McpHttpOptions, type Readiness } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { Secret } from '../../src/secret.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

const log = createLogger({ level: 'silent' });
const TOKEN = 'a-test-token-of-sufficient-length';
let h: SyncHarness;
let open: McpHttpEndpoint;
let guarded: McpHttpEndpoint;
let ready: Readiness = { ready: true, clusters: [] };

function endpoint(options: Partial<McpHttpOptions>): Promise<McpHttpEndpoint> {
  return startMcpHttp(
    {
      host: '127.0.0.1',
      port: 0,
      token: undefined,
      allowedOrigins: [],
      allowedHosts: [],
      maxBodyBytes: 64 * 1024,
      ...options,
    },
    {
      createServer: () =>
        createMcpServer({ store: h.store, now: Date.now, staleAfterMs: Infinity, log, version: 'test' }),
      readiness: () => ready,
      log,
    },
  );
}

async function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'http-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/** A raw request, to send headers an MCP client would not. */
function raw(
  url: string,
  headers: Record<string, string>,
  body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body ? 'POST' : 'GET',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body || undefined);
  });
}

const messageOf = (text: string): string => (JSON.parse(text) as { error: { message: string } }).error.message;

beforeAll(async () => {
  h = await startHarness({ guests: 60, nodes: 2, seed: 67 });
  await h.sync.runCycle();
  open = await endpoint({});
  guarded = await endpoint({
    token: new Secret(TOKEN),
    allowedOrigins: ['https://console.example'],
    allowedHosts: ['inventory.example:443'],
  });
}, 30_000);
afterAll(async () => {
  await open?.close();
  await guarded?.close();
  await h.close();
});

describe('MCP over Streamable HTTP', () => {
  it('answers tools/list and tool calls from the store, with no Proxmox request', async () => {
    const client = await connect(open.url);
    h.sim.resetCounters();
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('list_guests');
    const r = (await client.callTool({ name: 'list_guests', arguments: { limit: 5 } })) as CallToolResult;
    expect((r.structuredContent as { total: number }).total).toBe(60);
    expect(h.sim.counters().total).toBe(0);
    await client.close();
  });

  it('requires the bearer token when one is set: missing or wrong → 401, right → answers', async () => {
    expect((await raw(guarded.url, {})).status).toBe(401);
    const wrong = await raw(guarded.url, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('missing or wrong bearer token');
    expect(wrong.text).not.toContain(TOKEN);
    const client = await connect(guarded.url, { authorization: `Bearer ${TOKEN}` });
    expect(((await client.callTool({ name: 'sync_status', arguments: {} })) as CallToolResult).isError).toBeFalsy();
    await client.close();
  });

  it('refuses a Host header that is not this server (DNS rebinding) and a browser Origin not allowed: 403 with the reason', async () => {
    const badHost = await raw(open.url, { host: 'evil.example:80' });
    expect(badHost.status).toBe(403);
    expect(messageOf(badHost.text)).toBe(
      `Host header "evil.example:80" is not one of the 3 names this server answers to (127.0.0.1, localhost, [::1], each with port ${new URL(open.url).port}); if clients reach it as "evil.example:80", add that to MCP_ALLOWED_HOSTS`,
    );
    const badOrigin = await raw(open.url, { origin: 'https://evil.example' });
    expect(badOrigin.status).toBe(403);
    expect(badOrigin.text).toContain('Origin \\"https://evil.example\\" is not allowed');
    const allowed = await raw(guarded.url, {
      origin: 'https://console.example',
      authorization: `Bearer ${TOKEN}`,
      host: 'inventory.example:443',
    });
    expect(allowed.status).toBe(200);
  });

  it('refuses a body over the limit with 413 and a body that is not JSON with 400', async () => {
    const big = await raw(
      open.url,
      {},
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(70 * 1024) } }),
    );
    expect(big.status).toBe(413);
    const notJson = await raw(open.url, {}, 'not json');
    expect(notJson.status).toBe(400);
    // JSON-RPC's parse error, as on stdio, not the generic server error the other refusals use.
    expect(JSON.parse(notJson.text)).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
  });

  it('/healthz is up while the process is; /readyz follows the clusters’ freshness', async () => {
    const base = open.url.replace(/\/mcp$/, '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    ready = {
      ready: true,
      clusters: [{ cluster: 'lab', lastSuccessAt: new Date().toISOString(), ageMs: 1, ready: true }],
    };
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    ready = { ready: false, clusters: [{ cluster: 'lab', lastSuccessAt: null, ageMs: null, ready: false }] };
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual(ready);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('GET and DELETE on /mcp answer 405 with Allow: POST (no stream held open, no session to delete); the SDK client still works', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(open.url, { method, headers: { accept: 'text/event-stream' } });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        `${method} /mcp: this endpoint is stateless; send JSON-RPC requests with POST`,
      );
    }
    const client = await connect(open.url);
    expect((await client.listTools()).tools.length).toBeGreaterThan(10);
    await client.close();
  });

  it('/readyz to a Host that is not this server (DNS rebinding) says only whether each cluster is ready', async () => {
    ready = {
      ready: false,
      clusters: [
        { cluster: 'lab', lastSuccessAt: null, ageMs: null, ready: false, error: 'connect ECONNREFUSED 10.0.0.5:8006' },
      ],
    };
    const rebound = await raw(open.url.replace(/\/mcp$/, '/readyz'), { host: 'evil.example' }, '');
    expect(rebound.status).toBe(503);
    expect(JSON.parse(rebound.text)).toEqual({ ready: false, clusters: [{ cluster: 'lab', ready: false }] });
    const own = await raw(open.url.replace(/\/mcp$/, '/readyz'), {}, '');
    expect(JSON.parse(own.text)).toEqual(ready);
  });

  it('/readyz behind a token: the details (errors, identities) only with it, whether each cluster is ready without', async () => {
    const base = guarded.url.replace(/\/mcp$/, '');
    ready = {
      ready: false,
      clusters: [
        {
          cluster: 'lab',
          lastSuccessAt: null,
          ageMs: null,
          ready: false,
          error: 'GET /cluster/resources → 500 secret-ish detail',
        },
      ],
    };
    const bare = await fetch(`${base}/readyz`);
    expect(bare.status).toBe(503);
    expect(await bare.json()).toEqual({ ready: false, clusters: [{ cluster: 'lab', ready: false }] });
    const full = await fetch(`${base}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(full.status).toBe(503);
    expect(await full.json()).toEqual(ready);
  });
});

describe('the bearer scheme', () => {
  it('is case-insensitive (RFC 7235): bearer and BEARER carry the token too; the token part is still compared exactly', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR'])
      expect((await raw(guarded.url, { authorization: `${scheme} ${TOKEN}` })).status).toBe(200);
    const refused = [`Bearer ${TOKEN.toUpperCase()}`, `Basic ${TOKEN}`, `Bearer${TOKEN}`, TOKEN, `bearer ${TOKEN}x`];
    for (const authorization of refused) {
      const answer = await raw(guarded.url, { authorization });
      expect(answer.status).toBe(401);
      expect(answer.text).not.toContain(TOKEN);
    }
  });
});

describe('JSON-RPC batches', () => {
  it('answers an empty batch [] with 400 and Invalid Request (-32600), as JSON-RPC 2.0 says; a batch of one still works', async () => {
    const empty = await raw(open.url, {}, '[]');
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.text)).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'Invalid Request: the batch is empty; send a JSON-RPC request' },
      id: null,
    });
    const one = await raw(open.url, {}, '[{"jsonrpc":"2.0","id":7,"method":"ping"}]');
    expect(one.status).toBe(200);
    expect(JSON.parse(one.text)).toMatchObject({ id: 7, result: {} });
  });
});

describe('browser origins on a loopback bind', () => {
  const port = (): string => new URL(open.url).port;

  it('accepts a page on this machine at any port (localhost, 127.0.0.0/8, [::1], http or https): the conformance check and the MCP Inspector', async () => {
    const local = [
      `http://localhost:${port()}`,
      'http://localhost:6274',
      'https://localhost',
      'http://127.0.0.1:3000',
      'http://127.1.2.3:8080',
      'http://[::1]:6274',
      'http://LOCALHOST:6274',
    ];
    for (const origin of local) expect((await raw(open.url, { origin })).status, origin).toBe(200);
  });

  it('still refuses every other origin, look-alikes included, unless listed in MCP_ALLOWED_ORIGINS', async () => {
    const foreign = [
      'http://evil.example',
      'http://localhost.evil.example:6274',
      'http://127.0.0.1.nip.io',
      'http://[::2]:6274',
      'http://192.0.2.7',
      'null',
      'file://',
      'chrome-extension://abcdef',
      'ws://localhost:6274',
    ];
    for (const origin of foreign) {
      const answer = await raw(open.url, { origin });
      expect(answer.status, origin).toBe(403);
      expect(messageOf(answer.text)).toBe(`Origin "${origin}" is not allowed; list it in MCP_ALLOWED_ORIGINS`);
    }
  });

  it('keeps the Host check and the token: a local origin does not stand in for either', async () => {
    const origin = 'http://localhost:6274';
    expect((await raw(open.url, { origin, host: 'evil.example' })).status).toBe(403);
    expect((await raw(guarded.url, { origin })).status).toBe(401);
    expect((await raw(guarded.url, { origin, authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });
});

/** This machine's addresses as a client reaches them (IPv6 in brackets), loopback left out. */
function ownAddresses(family: 'IPv4' | 'IPv6'): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === family && !i.internal && !i.address.startsWith('fe80:'))
    .map((i) => (family === 'IPv6' ? `[${i.address}]` : i.address));
}

describe('a wildcard bind (0.0.0.0, ::)', () => {
  let v4: McpHttpEndpoint;
  let v6: McpHttpEndpoint;
  beforeAll(async () => {
    v4 = await endpoint({ host: '0.0.0.0', token: new Secret(TOKEN) });
    v6 = await endpoint({ host: '::', token: new Secret(TOKEN), allowedHosts: ['inventory.example'] });
  });
  afterAll(async () => {
    await v4?.close();
    await v6?.close();
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const at = (e: McpHttpEndpoint, host: string): string => `http://${host}:${new URL(e.url).port}/mcp`;

  it('answers clients at this machine’s own addresses and at loopback (each connection real, Host as the client sends it)', async () => {
    for (const host of ['127.0.0.1', ...ownAddresses('IPv4')])
      expect((await raw(at(v4, host), auth)).status, host).toBe(200);
    for (const host of ['127.0.0.1', '[::1]', ...ownAddresses('IPv4'), ...ownAddresses('IPv6')])
      expect((await raw(at(v6, host), auth)).status, host).toBe(200);
  });

  it('accepts the host name and localhost in the Host header, each with the bound port, and MCP_ALLOWED_HOSTS as before', async () => {
    const port = new URL(v4.url).port;
    for (const name of [hostname(), 'localhost', `0.0.0.0`])
      expect((await raw(v4.url, { ...auth, host: `${name}:${port}` })).status, name).toBe(200);
    expect((await raw(v4.url, { ...auth, host: `localhost:${Number(port) + 1}` })).status).toBe(403);
    expect((await raw(v6.url, { ...auth, host: 'inventory.example' })).status).toBe(200);
  });

  it('refuses any other Host with a 403 that says how to add it and does not list the machine’s addresses', async () => {
    const port = new URL(v4.url).port;
    const answer = await raw(v4.url, { ...auth, host: `inventory.lan:${port}` });
    expect(answer.status).toBe(403);
    const message = messageOf(answer.text);
    expect(message).toMatch(
      new RegExp(
        `^Host header "inventory\\.lan:${port}" is not one of the \\d+ names this server answers to \\(this machine's addresses, host names and localhost, each with port ${port}\\); if clients reach it as "inventory\\.lan:${port}", add that to MCP_ALLOWED_HOSTS$`,
      ),
    );
    for (const address of ownAddresses('IPv4')) expect(message).not.toContain(address);
  });

  it('does not accept loopback origins automatically: the server is reachable from other machines', async () => {
    const answer = await raw(v4.url, {
      ...auth,
      host: `127.0.0.1:${new URL(v4.url).port}`,
      origin: 'http://localhost:6274',
    });
    expect(answer.status).toBe(403);
  });
});
