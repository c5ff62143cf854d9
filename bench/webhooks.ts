/**
 * Webhook delivery under a burst (`npm run bench -- webhooks`): 10,000 events committed into a real
 * inventory file in 20 transactions of 500 (what a 10,000-guest churn's cycles write), relayed to 3
 * subscriptions (`*`) and delivered by the service as `serve` runs it (startWebhooks with the
 * default settings, the private redis-server, the SSRF-guarded agent through the loopback
 * allowlist) to 3 receivers in a child process, so this process's RSS is the service's. Then a
 * steady 50 events a second for 20 s, the latency a sustained rate sees. Commit → receipt is the
 * time from the transaction's return to the request's arrival (same clock, one machine).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/log.js';
import { redisConnection, startEmbeddedRedis } from '../src/queue/redis.js';
import { openStore, type Store } from '../src/store/db.js';
import { insertEvents, type NewEvent } from '../src/store/events.js';
import { addSubscription } from '../src/store/webhooks.js';
import { startWebhooks } from '../src/webhooks/service.js';
import { generateWebhookSecret } from '../src/webhooks/secret.js';
import { createAddressPolicy, createWebhookAgent } from '../src/webhooks/ssrf.js';

const BURST = 10_000;
const BATCH = 500;
const STEADY_PER_SECOND = 50;
const STEADY_SECONDS = 20;
const SUBSCRIPTIONS = 3;

/** webhook-id → receiver index → first arrival time. */
type Arrivals = Record<string, Record<number, number>>;

export async function benchWebhooks(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-bench-webhooks-'));
  const log = createLogger({ level: 'silent' });
  const store = openStore(join(dir, 'inventory.db'));
  const redis = await startEmbeddedRedis({ dataDir: dir, log });
  const receivers = await startReceivers();
  for (const port of receivers.ports)
    addSubscription(
      store,
      {
        url: `http://127.0.0.1:${port}/hook`,
        description: null,
        events: ['*'],
        cluster: null,
        tag: null,
        secret: generateWebhookSecret(),
        source: 'cli',
      },
      Date.now(),
    );
  const service = startWebhooks({
    store,
    connection: redisConnection(redis.path, 'worker'),
    agent: createWebhookAgent({ policy: createAddressPolicy(['127.0.0.1/32']) }),
    log,
    now: Date.now,
  });
  const rss = sampleRss();
  try {
    const burst = await measure(receivers, async (committed) => {
      for (let i = 0; i < BURST; i += BATCH) commit(store, BATCH, i, committed);
    });
    const steady = await measure(receivers, async (committed) => {
      for (let s = 0; s < STEADY_SECONDS * 10; s++) {
        commit(store, STEADY_PER_SECOND / 10, BURST + s * 10, committed);
        await sleep(100);
      }
    });
    report(burst, steady, rss.stop());
  } finally {
    await service.stop();
    await receivers.close();
    await redis.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Run {
  events: number;
  latencies: number[];
  wallMs: number;
  rssDuringMiB: number;
}

/** Commits with `work`, waits for every event at every receiver, and reads the latencies. */
async function measure(receivers: Receivers, work: (committed: Map<string, number>) => Promise<void>): Promise<Run> {
  const committed = new Map<string, number>();
  const started = Date.now();
  let peak = 0;
  const peakTimer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  await work(committed);
  const arrivals = await receivers.waitFor([...committed.keys()], SUBSCRIPTIONS);
  clearInterval(peakTimer);
  const latencies: number[] = [];
  let last = 0;
  for (const [id, at] of committed)
    for (const t of Object.values(arrivals[id]!)) {
      latencies.push(t - at);
      last = Math.max(last, t);
    }
  return { events: committed.size, latencies, wallMs: last - started, rssDuringMiB: peak / 2 ** 20 };
}

function commit(store: Store, n: number, from: number, committed: Map<string, number>): void {
  const list: NewEvent[] = Array.from({ length: n }, (_, i) => ({
    type: 'guest.status_changed',
    cluster: 'bench',
    subject: { kind: 'guest', id: `bench/${100 + from + i}` },
    data: { vmid: 100 + from + i, name: `vm-${100 + from + i}`, node: 'pve1', from: 'running', to: 'stopped' },
  }));
  const before = store.sqlite.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number;
  store.write(() => insertEvents(store, list, Date.now()));
  const at = Date.now();
  for (const id of store.sqlite.prepare('SELECT id FROM events WHERE seq > ?').pluck().all(before) as string[])
    committed.set(id, at);
}

function sampleRss(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  return {
    stop() {
      clearInterval(timer);
      return peak / 2 ** 20;
    },
  };
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};

function report(burst: Run, steady: Run, peakMiB: number): void {
  const cpu = cpus();
  const out = process.stdout;
  out.write(
    `\nwebhooks: ${BURST.toLocaleString('en')} events in ${BURST / BATCH} transactions of ${BATCH}, then ${STEADY_PER_SECOND}/s for ${STEADY_SECONDS} s; ${SUBSCRIPTIONS} subscriptions (*) on loopback receivers in another process; defaults (16 slots, 4 per subscription, relay every 250 ms), the private redis-server\n`,
  );
  out.write(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n\n`,
  );
  out.write('| measure | burst of 10,000 | steady 50/s |\n|---|---|---|\n');
  const row = (name: string, f: (r: Run) => string): void =>
    void out.write(`| ${name} | ${f(burst)} | ${f(steady)} |\n`);
  row('deliveries', (r) => r.latencies.length.toLocaleString('en'));
  row('commit → receipt, median', (r) => `${(quantile(r.latencies, 0.5) / 1000).toFixed(2)} s`);
  row('commit → receipt, p95', (r) => `${(quantile(r.latencies, 0.95) / 1000).toFixed(2)} s`);
  row('commit → receipt, max', (r) => `${(Math.max(...r.latencies) / 1000).toFixed(2)} s`);
  row('first commit → last receipt', (r) => `${(r.wallMs / 1000).toFixed(1)} s`);
  row('deliveries per second', (r) => ((r.latencies.length * 1000) / r.wallMs).toFixed(0));
  row('RSS of the service process, peak', (r) => `${r.rssDuringMiB.toFixed(0)} MiB`);
  out.write(`\nRSS peak over the whole run: ${peakMiB.toFixed(0)} MiB\n`);
}

interface Receivers {
  ports: number[];
  waitFor(ids: string[], copies: number): Promise<Arrivals>;
  close(): Promise<void>;
}

/** The receivers in a child process (this file run with --receivers), reporting arrivals over IPC. */
async function startReceivers(): Promise<Receivers> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--receivers'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ports = await new Promise<number[]>((resolve) => child.once('message', (m) => resolve(m as number[])));
  return {
    ports,
    waitFor(ids, copies) {
      // The child answers once every id has arrived `copies` times: no polling that would
      // serialise the whole arrival map over IPC while the service is being measured.
      return new Promise<Arrivals>((resolve) => {
        child.once('message', (m) => resolve(m as Arrivals));
        child.send({ ids, copies });
      });
    },
    async close() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function runReceivers(): Promise<void> {
  const arrivals: Arrivals = {};
  const ports: number[] = [];
  let waiting: { ids: string[]; copies: number } | undefined;
  const answerWhenComplete = (): void => {
    if (!waiting || !waiting.ids.every((id) => Object.keys(arrivals[id] ?? {}).length >= waiting!.copies)) return;
    waiting = undefined;
    process.send!(arrivals);
  };
  let completeCheck: NodeJS.Timeout | undefined;
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const id = String(req.headers['webhook-id']);
        (arrivals[id] ??= {})[i] ??= Date.now();
        res.writeHead(204).end();
        completeCheck ??= setTimeout(() => {
          completeCheck = undefined;
          answerWhenComplete();
        }, 100);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    ports.push((server.address() as { port: number }).port);
  }
  process.send!(ports);
  process.on('message', (m) => {
    waiting = m as { ids: string[]; copies: number };
    answerWhenComplete();
  });
}

if (process.argv.includes('--receivers')) await runReceivers();
