/**
 * GET /metrics on the HTTP endpoint `serve` runs: a real sync of the simulator through the
 * scheduler, real tool calls through the SDK client over HTTP, and the exposition scraped over
 * HTTP and parsed line by line. It checks the series and their labels, that no label carries a
 * vmid, a guest name or a URL, that /metrics is held to /mcp's token and Host rules, and that
 * MCP_METRICS=off leaves it unanswered (404).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startMcpHttp, type McpHttpEndpoint, type McpHttpOptions } from '../../src/mcp/http.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { Secret } from '../../src/secret.js';
import { startScheduler, type Scheduler } from '../../src/sync/scheduler.js';
import { startHarness, type SyncHarness } from '../sync/helpers.js';

const log = createLogger({ level: 'silent' });
const TOKEN = 'a-metrics-test-token-of-sufficient-length';
const P = 'proxmox_inventory_';

let h: SyncHarness;
let scheduler: Scheduler;
let metrics: Metrics;
const endpoints: McpHttpEndpoint[] = [];

const BASE: McpHttpOptions = {
  host: '127.0.0.1',
  port: 0,
  token: undefined,
  allowedOrigins: [],
  allowedHosts: [],
  maxBodyBytes: 64 * 1024,
};

async function endpoint(options: Partial<McpHttpOptions> = {}): Promise<McpHttpEndpoint> {
  const e = await startMcpHttp(
    { ...BASE, ...options },
    {
      createServer: (caller) =>
        createMcpServer({ store: h.store, now: Date.now, staleAfterMs: Infinity, log, version: 'test', caller }),
      readiness: () => ({ ready: true, clusters: [] }),
      log,
      metrics,
    },
  );
  endpoints.push(e);
  return e;
}

const metricsUrl = (e: McpHttpEndpoint): string => e.url.replace(/\/mcp$/, '/metrics');

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = new RegExp(`(${NAME})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`, 'g');
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL.source})(?:,${LABEL.source})*,?)?\\})? (\\S+)(?: -?\\d+)?$`);
const COMMENT = new RegExp(`^# (?:HELP ${NAME} .*|TYPE ${NAME} (?:counter|gauge|histogram|summary|untyped))$`);

/**
 * A sample value as Prometheus reads it (Go's ParseFloat): a number, or NaN/Inf in any case with a
 * sign. prom-client writes `Nan` for the event-loop lag before its monitor has a sample.
 */
function sampleValue(text: string): number | undefined {
  if (/^nan$/i.test(text)) return NaN;
  if (/^[+-]?inf$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  const value = Number(text);
  return text.trim() === '' || Number.isNaN(value) ? undefined : value;
}

/** The Prometheus text format, line by line: every line a comment, a sample, or empty; a line that is neither fails. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || COMMENT.test(line)) continue;
    const m = SAMPLE.exec(line);
    expect(m, `not a Prometheus text line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const l of (m![2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const value = sampleValue(m![m!.length - 1]!);
    expect(value, `bad value: ${line}`).not.toBeUndefined();
    samples.push({ name: m![1]!, labels, value: value! });
  }
  return samples;
}

async function scrape(e: McpHttpEndpoint): Promise<Sample[]> {
  const res = await fetch(metricsUrl(e));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

async function callTools(url: string, headers: Record<string, string> = {}): Promise<void> {
  const client = new Client({ name: 'metrics-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  await client.callTool({ name: 'list_guests', arguments: {} });
  const miss = await client.callTool({ name: 'get_guest', arguments: { vmid: 987654 } });
  expect(miss.isError).toBe(true);
  await client.close();
}

beforeAll(async () => {
  h = await startHarness({ guests: 60, nodes: 3, seed: 1313 });
  scheduler = startScheduler({
    syncs: [h.sync],
    store: h.store,
    intervalSeconds: 0,
    snapshots: { schedule: 'off', keep: 0, maxAgeDays: 0 },
    log,
  });
  const [summary] = await scheduler.syncNow();
  expect(summary?.ok).toBe(true);
  metrics = createMetrics(h.store, { syncIntervalSeconds: 15 });
}, 60_000);

afterAll(async () => {
  for (const e of endpoints) await e.close();
  await scheduler?.stop();
  await h?.close();
});

describe('GET /metrics', () => {
  it('parses and carries the sync, inventory, tool, queue and process series after a sync and tool calls', async () => {
    const open = await endpoint();
    await callTools(open.url);
    const samples = await scrape(open);

    expect(find(samples, `${P}sync_cycles_total`, { cluster: 'lab', outcome: 'ok' })[0]?.value).toBe(1);
    expect(find(samples, `${P}sync_cycle_duration_seconds_count`, { cluster: 'lab' })[0]?.value).toBe(1);
    expect(find(samples, `${P}sync_cycle_duration_seconds_bucket`, { cluster: 'lab', le: '+Inf' })[0]?.value).toBe(1);
    expect(
      find(samples, `${P}proxmox_api_requests_total`, { endpoint: 'GET /cluster/resources', status: '200' })[0]?.value,
    ).toBe(1);
    expect(find(samples, `${P}events_written_total`, { cluster: 'lab' }).length).toBeGreaterThan(0);

    const lastSuccess = find(samples, `${P}sync_last_success_timestamp_seconds`, { cluster: 'lab' })[0]!;
    expect(Math.abs(lastSuccess.value - Date.now() / 1000)).toBeLessThan(60);
    const age = find(samples, `${P}inventory_age_seconds`, { cluster: 'lab' })[0]!;
    expect(age.value).toBeGreaterThanOrEqual(0);
    expect(age.value).toBeLessThan(60);
    expect(find(samples, `${P}sync_consecutive_failures`, { cluster: 'lab' })[0]?.value).toBe(0);
    expect(find(samples, `${P}sync_interval_seconds`)[0]?.value).toBe(15);
    expect(find(samples, `${P}stale_nodes`, { cluster: 'lab' })[0]?.value).toBe(0);

    // Guests per cluster/status/type add up to the live guests, with no per-guest series.
    const guests = find(samples, `${P}guests`, { cluster: 'lab' });
    const live = h.store.sqlite.prepare('SELECT count(*) FROM guests WHERE deleted_at IS NULL').pluck().get();
    expect(guests.reduce((n, s) => n + s.value, 0)).toBe(live);
    for (const s of guests) expect(Object.keys(s.labels).sort()).toEqual(['cluster', 'status', 'type']);

    expect(find(samples, `${P}mcp_tool_calls_total`, { tool: 'list_guests', outcome: 'ok' })[0]?.value).toBe(1);
    expect(find(samples, `${P}mcp_tool_calls_total`, { tool: 'get_guest', outcome: 'miss' })[0]?.value).toBe(1);
    expect(find(samples, `${P}mcp_tool_duration_seconds_count`, { tool: 'list_guests' })[0]?.value).toBe(1);

    expect(find(samples, `${P}actions`).map((s) => [s.labels.state, s.value])).toEqual([
      ['queued', 0],
      ['running', 0],
    ]);
    expect(find(samples, `${P}webhook_dead_letters`)[0]?.value).toBe(0);
    expect(find(samples, 'process_cpu_user_seconds_total').length).toBe(1);
    expect(find(samples, 'nodejs_heap_size_used_bytes').length).toBe(1);
  });

  it('puts no vmid, guest name or URL in a label', async () => {
    const samples = await scrape(await endpoint());
    const guests = h.store.sqlite.prepare('SELECT vmid, name FROM guests').all() as Array<{
      vmid: number;
      name: string | null;
    }>;
    const vmids = new Set(guests.map((g) => String(g.vmid)));
    const names = guests.map((g) => g.name).filter((n): n is string => Boolean(n));
    const simHost = new URL(h.sim.url).host;
    // `le` is a histogram bucket's bound, a number by design.
    const values = new Set(
      samples.flatMap((s) =>
        Object.entries(s.labels)
          .filter(([k]) => k !== 'le')
          .map(([, v]) => v),
      ),
    );
    for (const value of values) {
      expect(vmids.has(value), `vmid as a label: ${value}`).toBe(false);
      expect(
        names.find((n) => value.includes(n)),
        `guest name in a label: ${value}`,
      ).toBeUndefined();
      expect(value).not.toContain('://');
      expect(value).not.toContain(simHost);
    }
  });

  it('refuses a scrape /mcp would refuse: no token, a wrong token, a Host that is not this server', async () => {
    const guarded = await endpoint({ token: new Secret(TOKEN) });
    const url = metricsUrl(guarded);
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(await none.text()).not.toContain(P);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-token-wrong-token-wrong' } })).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(`${P}sync_cycles_total`);

    const open = await endpoint();
    const port = new URL(open.url).port;
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(metricsUrl(open), { headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('answers 404 with MCP_METRICS=off, and only GET/HEAD otherwise', async () => {
    const config = loadConfig({ env: { MCP_METRICS: 'off', DATA_DIR: '/tmp/pi-metrics-off' }, clustersOptional: true });
    expect(config.mcp.http.metrics).toBe(false);
    const off = await endpoint({ ...config.mcp.http, port: 0 });
    expect((await fetch(metricsUrl(off))).status).toBe(404);

    const on = await endpoint({ ...loadConfig({ env: {}, clustersOptional: true }).mcp.http, port: 0 });
    expect((await fetch(metricsUrl(on))).status).toBe(200);
    expect((await fetch(metricsUrl(on), { method: 'POST', body: '' })).status).toBe(405);
    const head = await fetch(metricsUrl(on), { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('counts API requests by the status Proxmox answered, a refusal apart from the successes', async () => {
    h.sim.setFaults({ errorRate: 1, errorStatus: 500, endpoint: 'GET /cluster/resources' });
    try {
      const [summary] = await scheduler.syncNow();
      expect(summary?.ok).toBe(false);
    } finally {
      h.sim.setFaults({});
    }
    const samples = await scrape(await endpoint());
    const resources = find(samples, `${P}proxmox_api_requests_total`, { endpoint: 'GET /cluster/resources' });
    expect(resources.map((s) => [s.labels.status, s.value]).sort()).toEqual([
      ['200', 1],
      ['500', 1],
    ]);
  });
});
