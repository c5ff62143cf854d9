/**
 * tools/list over the HTTP endpoint is served from a prepared answer: the JSON is built once per
 * process and choice of toolsets, and a request gets it without an MCP server or transport being
 * made for it (the endpoint is stateless: every other request makes both). The answer is the one
 * the SDK gives through a server; requests the transport would refuse or treat otherwise (a wrong
 * Accept, an unsupported protocol version, a batch, a cursor) still go through it.
 */
import { request } from 'node:http';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startMcpHttp, type McpHttpEndpoint } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import type { ToolsetName } from '../../src/mcp/toolsets.js';

const log = createLogger({ level: 'silent' });
const made: Record<string, number> = {};
const endpoints: McpHttpEndpoint[] = [];

const serverFor = (toolsets?: ToolsetName[]) => () => {
  made[String(toolsets)] = (made[String(toolsets)] ?? 0) + 1;
  return createMcpServer({ store: undefined, now: Date.now, staleAfterMs: Infinity, log, version: 'test', toolsets });
};

async function endpoint(toolsets?: ToolsetName[]): Promise<McpHttpEndpoint> {
  const e = await startMcpHttp(
    { host: '127.0.0.1', port: 0, token: undefined, allowedOrigins: [], allowedHosts: [], maxBodyBytes: 64 * 1024 },
    { createServer: serverFor(toolsets), readiness: () => ({ ready: true, clusters: [] }), log },
  );
  endpoints.push(e);
  return e;
}

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** tools/list as the SDK answers it through a server, over an in-memory transport. */
async function throughServer(toolsets?: ToolsetName[]): Promise<unknown> {
  const client = new Client({ name: 'list', version: '1' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([serverFor(toolsets)().connect(a), client.connect(b)]);
  const listed = await client.listTools();
  await client.close();
  return listed;
}

let all: McpHttpEndpoint;
beforeAll(async () => {
  all = await endpoint();
});
afterAll(async () => {
  for (const e of endpoints) await e.close();
});

describe('tools/list over HTTP from a prepared answer', () => {
  it('answers as a server would, making one server for the first request and none after', async () => {
    const expected = await throughServer();
    const before = made.undefined ?? 0;
    for (const id of [1, 'list-2', 3, 4, 5]) {
      const r = await post(all.url, { jsonrpc: '2.0', id, method: 'tools/list' });
      expect(r.status).toBe(200);
      expect(r.type).toBe('application/json');
      expect(JSON.parse(r.text)).toEqual({ jsonrpc: '2.0', id, result: expected });
    }
    expect((made.undefined ?? 0) - before).toBe(1);
    // Another request still gets a server of its own (the endpoint is stateless).
    await post(all.url, { jsonrpc: '2.0', id: 9, method: 'ping' });
    expect((made.undefined ?? 0) - before).toBe(2);
  });

  it('is prepared per choice of toolsets', async () => {
    const status = await endpoint(['status']);
    const r = await post(status.url, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    expect(JSON.parse(r.text)).toEqual({ jsonrpc: '2.0', id: 1, result: await throughServer(['status']) });
    expect(
      (JSON.parse(r.text) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name),
    ).toEqual(['sync_status']);
  });

  it('leaves to the transport what it would refuse or answer otherwise', async () => {
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect((await post(all.url, list, { accept: 'application/json' })).status).toBe(406);
    expect((await post(all.url, list, { 'content-type': 'text/plain' })).status).toBe(415);
    const version = await post(all.url, list, { 'mcp-protocol-version': '1999-01-01' });
    expect(version.status).toBe(400);
    expect(version.text).toContain('Unsupported protocol version');
    const batch = await post(all.url, [list, { ...list, id: 2 }]);
    expect(batch.status).toBe(200);
    expect((JSON.parse(batch.text) as unknown[]).length).toBe(2);
    const paged = await post(all.url, { ...list, params: { cursor: 'x' } });
    expect(paged.status).toBe(200);
  });

  it('serves the SDK client over HTTP', async () => {
    const client = new Client({ name: 'http', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(all.url)));
    expect(await client.listTools()).toEqual(await throughServer());
    await client.close();
  });
});
