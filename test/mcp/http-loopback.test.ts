/**
 * What counts as loopback (src/net.ts): all of 127.0.0.0/8 and ::1, bare, in URL brackets or
 * IPv4-mapped, and `localhost`. Config decides on it whether the MCP endpoint needs a token, and
 * the endpoint whether pages on this machine may call it; both are checked here through the real
 * config loader and a real listener on 127.0.0.2.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startMcpHttp } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { isLoopbackHost, isWildcardHost } from '../../src/net.js';
import { openStore } from '../../src/store/db.js';

describe('isLoopbackHost', () => {
  it.each([
    'localhost',
    'LocalHost',
    '127.0.0.1',
    '127.0.0.2',
    '127.255.255.254',
    '127.1.2.3',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    '[::ffff:127.0.0.9]',
  ])('%s is loopback', (host) => expect(isLoopbackHost(host)).toBe(true));

  it.each([
    '128.0.0.1',
    '126.255.255.255',
    '10.0.0.1',
    '0.0.0.0',
    '::',
    '::2',
    '::ffff:10.0.0.1',
    '127.1', // a name to the resolver, not a strict literal
    '2130706433',
    'localhost.example',
    '127.0.0.1.nip.io',
    '',
  ])('%s is not loopback', (host) => expect(isLoopbackHost(host)).toBe(false));
});

describe('isWildcardHost', () => {
  it('is true for the unspecified addresses only', () => {
    expect(['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0'].map(isWildcardHost)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['127.0.0.1', '192.0.2.1', '::1', 'localhost', '0.0.0.1'].map(isWildcardHost)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

const base = {
  PVE_URL: 'https://pve1.example.com:8006',
  PVE_TOKEN_ID: 'inventory@pve!sync',
  PVE_TOKEN_SECRET: '5f1e2d3c-aaaa-bbbb-cccc-0123456789ab',
};

function httpProblems(host: string): string[] {
  try {
    loadConfig({ env: { ...base, MCP_HTTP_HOST: host }, listensOnHttp: true });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.filter((p) => p.startsWith('MCP_HTTP_HOST'));
  }
}

describe('the MCP endpoint on a loopback address', () => {
  it('needs no token anywhere in 127.0.0.0/8 or on ::1; any other address still does', () => {
    for (const host of ['127.0.0.2', '::1', '::ffff:127.0.0.1', 'localhost']) expect(httpProblems(host)).toEqual([]);
    for (const host of ['0.0.0.0', '128.0.0.1', '::'])
      expect(httpProblems(host)).toEqual([expect.stringContaining('set MCP_BEARER_TOKEN')]);
  });

  it('listening on 127.0.0.2, answers Host 127.0.0.2:PORT and a page on this machine', async () => {
    const store = openStore(':memory:');
    const log = createLogger({ level: 'silent' });
    const endpoint = await startMcpHttp(
      { host: '127.0.0.2', port: 0, token: undefined, allowedOrigins: [], allowedHosts: [], maxBodyBytes: 65_536 },
      {
        createServer: () => createMcpServer({ store, now: Date.now, staleAfterMs: Infinity, log, version: 'test' }),
        readiness: () => ({ ready: true, clusters: [] }),
        log,
      },
    );
    try {
      expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/mcp$/);
      expect(await post(endpoint.url, { origin: 'http://localhost:6274' })).toBe(200);
      expect(await post(endpoint.url, { origin: 'http://evil.example' })).toBe(403);
    } finally {
      await endpoint.close();
      store.close();
    }
  });
});

function post(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  });
}
