/**
 * MCP over Streamable HTTP: the real SDK client against the endpoint `serve` runs, and what stands
 * before it: the bearer token, Host and Origin checks, the body limit, /healthz and /readyz.
 */
import { request } from 'node:http';
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
    expect(badHost.text).toContain('Host header \\"evil.example:80\\" is not this server');
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
    expect((await raw(open.url, {}, 'not json')).status).toBe(400);
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
