/**
 * What any client that reaches the port can send: malformed request lines, headers, methods and
 * bodies, written raw to a running `serve` process. Each gets a status or a closed socket, never a
 * dead daemon: /healthz answers after every one, and the process is still running at the end.
 * Clients that hang up mid-request or mid-answer, read in the daemon's own log (debug, no stack).
 * Also the streamed (chunked) body limit, which has no content-length to check first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startMcpHttp, type McpHttpEndpoint } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { startSimulator, type Simulator } from '../../src/sim/server.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

let sim: Simulator;
let daemon: ChildProcess;
let port: number;
let exited: number | null | undefined;
let stderr = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address() as { port: number };
      probe.close(() => resolve(p));
    });
  });
}

/** Writes `bytes` as they are and collects what comes back until the server closes or 2 s pass. */
function rawExchange(bytes: string | Buffer, p = port): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(p, '127.0.0.1');
    let text = '';
    const done = (): void => {
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(done, 2_000);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', () => {}); // a reset is an answer too; the health check below decides
    socket.write(bytes, () => socket.end());
  });
}

const statusOf = (answer: string): number | undefined => {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
  return m ? Number(m[1]) : undefined;
};

async function healthz(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  sim = await startSimulator({ tls: false, guests: 40, nodes: 2, seed: 71 });
  port = await freePort();
  daemon = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      PVE_URL: sim.url,
      PVE_TOKEN_ID: sim.tokens.auditor.id,
      PVE_TOKEN_SECRET: sim.tokens.auditor.secret,
      PVE_CLUSTER_NAME: 'lab',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'pi-fuzz-')),
      SYNC_INTERVAL_SECONDS: '2',
      SNAPSHOT_SCHEDULE: 'off',
      MCP_HTTP_PORT: String(port),
      LOG_LEVEL: 'debug', // the hang-up tests read the debug lines
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  daemon.on('exit', (code) => (exited = code));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`serve exited with ${exited}: ${stderr}`);
    try {
      if ((await healthz()) === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve did not answer /healthz within 30 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 40_000);

afterAll(async () => {
  daemon?.kill('SIGKILL');
  await sim?.close();
});

const host = (): string => `Host: 127.0.0.1:${port}\r\n`;

describe('serve against malformed requests', () => {
  it('answers a request target that is not a URL (GET http://[) with 400 and keeps running', async () => {
    const answer = await rawExchange(`GET http://[ HTTP/1.1\r\n${host()}\r\n`);
    expect(statusOf(answer)).toBe(400);
    expect(answer).toContain('malformed request target');
    expect(await healthz()).toBe(200);
    expect(exited).toBeUndefined();
  });

  const cases: Array<[string, () => string | Buffer]> = [
    ['an invalid port in an absolute target', () => `GET http://a:99999/healthz HTTP/1.1\r\n${host()}\r\n`],
    ['a bare bracket path', () => `GET [ HTTP/1.1\r\n${host()}\r\n`],
    [
      'an absolute /mcp target with an IPv6 fragment',
      () => `POST http://[::1/mcp HTTP/1.1\r\n${host()}content-length: 2\r\n\r\n{}`,
    ],
    ['a request line without a version', () => 'GET /healthz\r\n\r\n'],
    ['an unknown HTTP version', () => `GET /healthz HTTP/9.9\r\n${host()}\r\n`],
    ['garbage instead of a request line', () => '\u0000\u0001\u0002 nonsense \r\n\r\n'],
    ['an unknown method', () => `BREW /mcp HTTP/1.1\r\n${host()}\r\n`],
    ['a header without a colon', () => `GET /healthz HTTP/1.1\r\n${host()}no colon here\r\n\r\n`],
    ['headers over the size limit', () => `GET /healthz HTTP/1.1\r\n${host()}x-big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['a negative content-length', () => `POST /mcp HTTP/1.1\r\n${host()}content-length: -1\r\n\r\n`],
    ['a content-length that is not a number', () => `POST /mcp HTTP/1.1\r\n${host()}content-length: abc\r\n\r\n`],
    [
      'content-length and chunked together',
      () => `POST /mcp HTTP/1.1\r\n${host()}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    [
      'a bad chunk size',
      () =>
        `POST /mcp HTTP/1.1\r\n${host()}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    ],
    [
      'a body cut short',
      () => `POST /mcp HTTP/1.1\r\n${host()}content-type: application/json\r\ncontent-length: 500\r\n\r\n{"jsonrpc":`,
    ],
    [
      'a body that is not JSON',
      () => `POST /mcp HTTP/1.1\r\n${host()}content-type: application/json\r\ncontent-length: 3\r\n\r\n{{{`,
    ],
    [
      'JSON that is not JSON-RPC',
      () =>
        `POST /mcp HTTP/1.1\r\n${host()}content-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: 9\r\n\r\n[1,null,"`,
    ],
    [
      'a non-UTF-8 host header',
      () =>
        Buffer.concat([
          Buffer.from('GET /healthz HTTP/1.1\r\nHost: '),
          Buffer.from([0xff, 0xfe, 0x80]),
          Buffer.from('\r\n\r\n'),
        ]),
    ],
    [
      'a huge bearer token',
      () => `POST /mcp HTTP/1.1\r\n${host()}authorization: Bearer ${'x'.repeat(12_000)}\r\ncontent-length: 2\r\n\r\n{}`,
    ],
    [
      'an absolute-form target with user info',
      () => `GET http://user:pass@127.0.0.1:${port}/readyz HTTP/1.1\r\n${host()}\r\n`,
    ],
    ['a percent-encoding that does not decode', () => `GET /%zz%%/mcp HTTP/1.1\r\n${host()}\r\n`],
  ];
  it.each(cases)('survives %s', async (_name, bytes) => {
    const answer = await rawExchange(bytes());
    const status = statusOf(answer);
    // A status the client can read, or the connection closed by the parser; never a 5xx from us.
    if (status !== undefined) expect(status).toBeLessThan(500);
    expect(await healthz()).toBe(200);
    expect(exited).toBeUndefined();
  });

  it('survives random request lines and header blocks', async () => {
    const line = fc.tuple(
      fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'G\u0000T', ''),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', ''),
      fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 30 })), { maxLength: 4 }),
    );
    const samples = fc.sample(line, { numRuns: 60, seed: 4242 });
    for (const [method, target, version, headers] of samples) {
      const head = headers.map(([k, v]) => `${k}: ${v}\r\n`).join('');
      await rawExchange(Buffer.from(`${method} ${target} ${version}\r\n${host()}${head}\r\n`, 'utf8'));
    }
    expect(await healthz()).toBe(200);
    expect(exited).toBeUndefined();
  }, 60_000);

  it('still syncs after all of it: a second cycle has run', async () => {
    const deadline = Date.now() + 20_000;
    let body: { clusters: Array<{ lastSuccessAt: string | null }> } | undefined;
    while (Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      body = (await res.json()) as typeof body;
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(body?.clusters[0]?.lastSuccessAt).toBeTruthy();
    expect(exited).toBeUndefined();
  }, 30_000);
});

/** The daemon's log lines from the HTTP endpoint (module mcp), parsed. */
function mcpLogLines(from = 0): Array<{ level: number; msg: string; err?: unknown }> {
  return stderr
    .slice(from)
    .split('\n')
    .filter((line) => line.includes('"module":"mcp"'))
    .map((line) => JSON.parse(line) as { level: number; msg: string; err?: unknown });
}

/** Sends `bytes`, then hangs up after `ms` with a reset (RST) or a plain close (FIN), never reading the answer. */
function hangUp(bytes: string, how: 'reset' | 'close', ms: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      setTimeout(() => (how === 'reset' ? socket.resetAndDestroy() : socket.destroy()), ms);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });
}

describe('clients that hang up', () => {
  const head = (extra: string): string =>
    `POST /mcp HTTP/1.1\r\n${host()}content-type: application/json\r\naccept: application/json, text/event-stream\r\n${extra}\r\n`;
  const call = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'list_guests', arguments: { limit: 100 } },
  });

  it('are logged at debug without a stack, mid-body (reset or close, sized or chunked) and mid-answer', async () => {
    const from = stderr.length;
    await hangUp(head('content-length: 4000\r\n') + '{"jsonrpc":"2.0",', 'reset', 100);
    await hangUp(head('content-length: 4000\r\n') + '{"jsonrpc":"2.0",', 'close', 100);
    await hangUp(head('transfer-encoding: chunked\r\n') + '10\r\n{"jsonrpc":"2.0",\r\n', 'reset', 100);
    for (let ms = 0; ms < 5; ms++) await hangUp(head(`content-length: ${call.length}\r\n`) + call, 'reset', ms);
    // Each mid-body hang-up fails the body read (an 'aborted' error): three of them, all at debug.
    const deadline = Date.now() + 10_000;
    while (mcpLogLines(from).filter((l) => l.msg === 'HTTP client hung up').length < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const lines = mcpLogLines(from);
    expect(lines.filter((l) => l.msg === 'HTTP client hung up')).toHaveLength(3);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(stderr.slice(from)).not.toContain('"stack"');
    expect(await healthz()).toBe(200);
    expect(exited).toBeUndefined();
  });
});

describe('the streamed body limit', () => {
  const LIMIT = 64 * 1024;
  let h: SyncHarness;
  let endpoint: McpHttpEndpoint;
  let endpointPort: number;
  beforeAll(async () => {
    h = await startHarness({ guests: 10, nodes: 1, seed: 5 });
    await h.sync.runCycle();
    const log = createLogger({ level: 'silent' });
    endpoint = await startMcpHttp(
      { host: '127.0.0.1', port: 0, token: undefined, allowedOrigins: [], allowedHosts: [], maxBodyBytes: LIMIT },
      {
        createServer: () =>
          createMcpServer({ store: h.store, now: Date.now, staleAfterMs: Infinity, log, version: 'test' }),
        readiness: () => ({ ready: true, clusters: [] }),
        log,
      },
    );
    endpointPort = Number(new URL(endpoint.url).port);
  });
  afterAll(async () => {
    await endpoint?.close();
    await h?.close();
  });

  /** A valid tools/list request padded to `size` bytes, sent in 8 KiB chunks without content-length. */
  function chunked(size: number): string {
    const base = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"pad":""}}}';
    const body = base.replace('"pad":""', `"pad":"${'p'.repeat(size - base.length)}"`);
    let out = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${endpointPort}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n`;
    for (let i = 0; i < body.length; i += 8192) {
      const part = body.slice(i, i + 8192);
      out += `${part.length.toString(16)}\r\n${part}\r\n`;
    }
    return `${out}0\r\n\r\n`;
  }

  it('answers a chunked body one byte over the limit with a 413 the client can read', async () => {
    const answer = await rawExchange(chunked(LIMIT + 1), endpointPort);
    expect(statusOf(answer)).toBe(413);
    expect(answer).toContain(`request body over ${LIMIT} bytes`);
  });

  it('accepts a chunked body at the limit', async () => {
    const answer = await rawExchange(chunked(LIMIT), endpointPort);
    expect(statusOf(answer)).toBe(200);
    expect(answer).toContain('list_guests');
  });
});
