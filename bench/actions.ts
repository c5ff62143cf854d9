/**
 * Action queue benchmark (`npm run bench -- actions`): the queue as `serve` runs it (the private
 * redis-server, the BullMQ worker, SQLite outbox, read-back through the cluster sync) against the
 * simulator in its own process (plain HTTP, task delay 50 ms, 16 nodes, 1,200 guests).
 *   1. submit → action id: checkRequest + submitAction in process (row, event, BullMQ job), with
 *      no worker running; then the same through the real `mcp` stdio process (timeStdioCalls),
 *      beside the two floors under both: one fsynced SQLite commit on this disk, and a JSON-RPC ping.
 *   2. 1,000 power actions on 1,000 guests, each asked as fast as the submits return while the
 *      worker (concurrency 16, 4 per node) runs them: wall time from the first submit to the last
 *      final state, achieved concurrency (Σ running time / wall time, and the most seen at once),
 *      requests per action from the simulator's write log, and task end → the store showing the
 *      new status (the status_changed event's time minus the POST's arrival plus the task delay).
 *      Behind a backlog the read-backs wait their turn (one at a time per cluster, as the sync's
 *      cycles do), so the same latency is also taken for actions asked one after the other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, type StdioServerParameters } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ActionKindName } from '../src/actions/catalogue.js';
import { createActionQueue, startActionWorker } from '../src/actions/queue.js';
import { checkRequest, submitAction, type SubmitDeps } from '../src/actions/submit.js';
import { createLogger } from '../src/log.js';
import { createHttpProxmoxClient } from '../src/proxmox/http-client.js';
import { redisConnection, startEmbeddedRedis } from '../src/queue/redis.js';
import { Secret } from '../src/secret.js';
import { cancelAction, FINAL_STATES, getAction } from '../src/store/actions.js';
import { openStore, type Store } from '../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../src/sync/cycle.js';

const GUESTS = 1_200;
const NODES = 16;
const TASK_DELAY_MS = 50;
const ACTIONS = 1_000;
const SUBMIT_SAMPLES = 300;
const STDIO_SAMPLES = 100;
const COMMIT_SAMPLES = 300;
const SINGLE_ACTIONS = 30;
const CLUSTER = 'bench';
const REQUESTER = { transport: 'bench', client: null, principal: 'bench' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};

/** Resolves once the child prints `text`; its stderr is kept for the error when it exits first. */
function waitForLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) =>
      reject(new Error(`the simulator exited with ${code} before it was ready: ${err.slice(-500)}`)),
    );
  });
}

async function startSim(dir: string): Promise<{ child: ChildProcess; env: Record<string, string> }> {
  const envFile = join(dir, 'sim.env');
  const child = spawn(
    process.execPath,
    [
      // From the source, as the bench itself runs: `npm run build` need not have run since the simulator changed.
      ...['--import', 'tsx', 'src/cli.ts'],
      'sim',
      '--http',
      ...['--port', '0', '--guests', String(GUESTS), '--nodes', String(NODES)],
      ...['--task-delay', String(TASK_DELAY_MS), '--write-env', envFile],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitForLine(child, 'Ctrl-C stops it.');
  const env = Object.fromEntries(
    readFileSync(envFile, 'utf8')
      .split('\n')
      .filter((l) => /^PVE_/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { child, env };
}

export async function benchActions(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-bench-actions-'));
  const { child: sim, env } = await startSim(dir);
  const log = createLogger({ level: 'silent' });
  const client = createHttpProxmoxClient({
    cluster: CLUSTER,
    url: env.PVE_URL!,
    tokenId: env.PVE_TOKEN_ID!,
    tokenSecret: new Secret(env.PVE_TOKEN_SECRET!),
    tls: {},
    retries: 0,
    timeoutMs: 10_000,
  });
  const store = openStore(join(dir, 'data', 'inventory.db'));
  const sync = createClusterSync({
    store,
    client,
    cluster: CLUSTER,
    settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
    log,
  });
  await sync.runCycle();
  const redis = await startEmbeddedRedis({ dataDir: join(dir, 'data'), log });
  try {
    const guests = store.sqlite
      .prepare(
        `SELECT vmid, status FROM guests WHERE cluster = ? AND deleted_at IS NULL AND NOT template
           AND lock IS NULL AND hastate IS NULL ORDER BY vmid LIMIT ?`,
      )
      .all(CLUSTER, ACTIONS) as Array<{ vmid: number; status: string }>;
    if (guests.length < ACTIONS) throw new Error(`only ${guests.length} guests can take an action`);

    const commitMs = timeCommits(join(dir, 'data'));
    const submitMs = await timeSubmits(store, redis.path, guests);
    const stdio = await timeStdioCalls(store, { ...env, DATA_DIR: join(dir, 'data'), REDIS_URL: redis.path }, guests);
    const queue = createActionQueue(redisConnection(redis.path, 'queue'), 'bench');
    const worker = startActionWorker({
      store,
      client: () => client,
      refresh: async (_cluster, vmid, why) => {
        await sync.refreshGuest(vmid, why);
      },
      log,
      now: Date.now,
      connection: redisConnection(redis.path, 'worker'),
      prefix: 'bench',
      settings: { concurrency: 16, perNode: 4 },
    });
    const submit: SubmitDeps = { store, queue, settings: { ttlMs: 600_000, perMinute: 1e9 }, now: Date.now };
    let run: Awaited<ReturnType<typeof runThousand>>;
    let alone: { since: number };
    try {
      run = await runThousand(store, submit, guests);
      alone = await runOneByOne(store, submit, guests.slice(0, SINGLE_ACTIONS));
    } finally {
      await worker.stop();
      await queue.close();
    }
    const writes = await simWrites(env.PVE_URL!);
    const thousandWrites = writes.filter((w) => w.time < alone.since);

    const perGuest = new Map<number, number>();
    for (const w of thousandWrites) {
      const vmid = Number(/\/(?:qemu|lxc)\/(\d+)\//.exec(w.path)?.[1]);
      perGuest.set(vmid, (perGuest.get(vmid) ?? 0) + 1);
    }
    const shownMs = taskEndToStore(store, thousandWrites);
    const shownAloneMs = taskEndToStore(
      store,
      writes.filter((w) => w.time >= alone.since),
    );

    const cpu = cpus();
    process.stdout.write(
      `\nactions: ${ACTIONS.toLocaleString('en')} power actions against the simulator in its own process (HTTP, ${NODES} nodes, ${GUESTS.toLocaleString('en')} guests, task delay ${TASK_DELAY_MS} ms), the private redis-server, worker concurrency 16, 4 per node\n`,
    );
    process.stdout.write(
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}\n\n`,
    );
    const rows: Array<[string, string]> = [
      [
        `submit → action id, in process, no worker running (${SUBMIT_SAMPLES}): median / p95`,
        `${submitMs.idle.median.toFixed(2)} / ${submitMs.idle.p95.toFixed(2)} ms`,
      ],
      [
        `one SQLite commit on this disk, fsynced as the outbox's are (${COMMIT_SAMPLES}): median / p95`,
        `${commitMs.median.toFixed(2)} / ${commitMs.p95.toFixed(2)} ms`,
      ],
      [
        `JSON-RPC ping over stdio (the mcp process; the transport alone) (${STDIO_SAMPLES}): median / p95`,
        `${stdio.ping.median.toFixed(2)} / ${stdio.ping.p95.toFixed(2)} ms`,
      ],
      [
        `guest_power start over stdio (no confirmation) → action id (${STDIO_SAMPLES}): median / p95`,
        `${stdio.start.median.toFixed(2)} / ${stdio.start.p95.toFixed(2)} ms`,
      ],
      [
        `guest_power over stdio (the mcp process, elicitation accepted) → action id (${STDIO_SAMPLES}): median / p95`,
        `${stdio.elicited.median.toFixed(2)} / ${stdio.elicited.p95.toFixed(2)} ms`,
      ],
      [
        `guest_power over stdio with a confirmation token → action id (${STDIO_SAMPLES}): median / p95`,
        `${stdio.token.median.toFixed(2)} / ${stdio.token.p95.toFixed(2)} ms`,
      ],
      [
        `submit → action id while the worker runs the ${ACTIONS.toLocaleString('en')}: median / p95`,
        `${quantile(run.submitMs, 0.5).toFixed(2)} / ${quantile(run.submitMs, 0.95).toFixed(2)} ms`,
      ],
      [`wall time, first submit → last action final`, `${(run.wallMs / 1000).toFixed(1)} s`],
      [`actions per second`, `${((ACTIONS * 1000) / run.wallMs).toFixed(1)}`],
      [
        `achieved concurrency: mean (Σ running / wall) / most at once`,
        `${run.meanConcurrency.toFixed(1)} / ${run.maxConcurrency}`,
      ],
      [
        `final states`,
        Object.entries(run.states)
          .map(([s, n]) => `${n} ${s}`)
          .join(', '),
      ],
      [
        `POSTs per action (simulator write log) / most for one guest`,
        `${(thousandWrites.length / ACTIONS).toFixed(2)} / ${Math.max(...perGuest.values())}`,
      ],
      [
        `task end → store shows the new status, during the 1,000 (${shownMs.length}): median / p95`,
        `${quantile(shownMs, 0.5).toFixed(0)} / ${quantile(shownMs, 0.95).toFixed(0)} ms`,
      ],
      [
        `task end → store shows the new status, actions one after the other (${shownAloneMs.length}): median / p95`,
        `${quantile(shownAloneMs, 0.5).toFixed(0)} / ${quantile(shownAloneMs, 0.95).toFixed(0)} ms`,
      ],
    ];
    process.stdout.write('| measure | value |\n|---|---:|\n');
    for (const [name, value] of rows) process.stdout.write(`| ${name} | ${value} |\n`);
  } finally {
    await redis.stop();
    await client.close();
    store.close();
    sim.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The disk's share of every submit: single-row transactions on a scratch SQLite file beside the
 * inventory, in WAL mode with `synchronous = FULL` as the store opens it (one fsync per commit).
 */
function timeCommits(dataDir: string): { median: number; p95: number } {
  const path = join(dataDir, 'commit-probe.db');
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE probe (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO probe (body) VALUES (?)');
    const commit = db.transaction((body: string) => insert.run(body));
    const times: number[] = [];
    for (let i = 0; i < COMMIT_SAMPLES; i++) {
      const t = performance.now();
      commit.immediate('x'.repeat(600));
      times.push(performance.now() - t);
    }
    return { median: quantile(times, 0.5), p95: quantile(times, 0.95) };
  } finally {
    db.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
}

/** Submits on a queue no worker reads (its own prefix), then cancels the rows: the submit alone. */
async function timeSubmits(
  store: Store,
  redisPath: string,
  guests: Array<{ vmid: number }>,
): Promise<{ idle: { median: number; p95: number } }> {
  const queue = createActionQueue(redisConnection(redisPath, 'queue'), 'bench-submit');
  const deps: SubmitDeps = { store, queue, settings: { ttlMs: 300_000, perMinute: 1e9 }, now: Date.now };
  const times: number[] = [];
  const ids: string[] = [];
  try {
    for (let i = 0; i < SUBMIT_SAMPLES; i++) {
      const t = performance.now();
      const checked = checkRequest(store, { kind: 'reboot', vmid: guests[i]!.vmid, params: {} }, Date.now());
      const { action } = await submitAction(deps, checked, REQUESTER);
      times.push(performance.now() - t);
      ids.push(action.id);
    }
  } finally {
    await queue.close();
  }
  for (const id of ids) cancelAction(store, id, 'benchmark: the submit alone was timed', Date.now());
  return { idle: { median: quantile(times, 0.5), p95: quantile(times, 0.95) } };
}

/**
 * Tool call → action id as an agent sees it: the real `mcp` stdio process (the build, as an
 * installed package runs it; its queue on the same Redis under its own prefix, so no worker takes
 * the jobs), timed from callTool to the answer. A kind that needs no confirmation (start: one
 * round trip); a destructive one with form elicitation accepted by the client (two); and with a
 * confirmation token from a plan asked for beforehand (one, the submitting call). Beside them the
 * transport's own floor, a JSON-RPC ping. The rows are cancelled afterwards.
 */
async function timeStdioCalls(
  store: Store,
  env: Record<string, string>,
  guests: Array<{ vmid: number }>,
): Promise<Record<'ping' | 'start' | 'elicited' | 'token', { median: number; p95: number }>> {
  const params: StdioServerParameters = {
    command: process.execPath,
    args: ['dist/cli.js', 'mcp'],
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      PVE_CLUSTER_NAME: CLUSTER,
      ACTIONS: 'power',
      ACTIONS_PER_MINUTE: '100000',
      LOG_LEVEL: 'error',
    },
    stderr: 'inherit',
  };
  const client = new Client({ name: 'bench-actions', version: '1' }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { confirm: true } }));
  await client.connect(new StdioClientTransport(params));
  await client.listTools();
  const ping: number[] = [];
  const start: number[] = [];
  const elicited: number[] = [];
  const token: number[] = [];
  const ids: string[] = [];
  const actionId = (r: CallToolResult): string => {
    const id = (r.structuredContent as { action?: { id?: string } } | undefined)?.action?.id;
    if (r.isError || !id) throw new Error(`guest_power gave no action: ${JSON.stringify(r.content).slice(0, 300)}`);
    return id;
  };
  try {
    for (let i = 0; i < STDIO_SAMPLES; i++) {
      const t = performance.now();
      await client.ping();
      ping.push(performance.now() - t);
    }
    for (let i = 0; i < STDIO_SAMPLES; i++) {
      const vmid = guests[SUBMIT_SAMPLES + 2 * STDIO_SAMPLES + i]!.vmid;
      const t = performance.now();
      const r = (await client.callTool({
        name: 'guest_power',
        arguments: { vmid, action: 'start' },
      })) as CallToolResult;
      start.push(performance.now() - t);
      ids.push(actionId(r));
    }
    for (let i = 0; i < STDIO_SAMPLES; i++) {
      const vmid = guests[SUBMIT_SAMPLES + i]!.vmid;
      const t = performance.now();
      const r = (await client.callTool({
        name: 'guest_power',
        arguments: { vmid, action: 'reboot' },
      })) as CallToolResult;
      elicited.push(performance.now() - t);
      ids.push(actionId(r));
    }
    // Without elicitation the tool answers a plan and a token; the timed call is the one that submits.
    const plain = new Client({ name: 'bench-actions-plain', version: '1' });
    await plain.connect(new StdioClientTransport(params));
    try {
      for (let i = 0; i < STDIO_SAMPLES; i++) {
        const vmid = guests[SUBMIT_SAMPLES + STDIO_SAMPLES + i]!.vmid;
        const plan = (await plain.callTool({
          name: 'guest_power',
          arguments: { vmid, action: 'reboot' },
        })) as CallToolResult;
        const confirmation = (plan.structuredContent as { confirmation?: string } | undefined)?.confirmation;
        if (!confirmation) throw new Error(`guest_power gave no plan: ${JSON.stringify(plan.content).slice(0, 300)}`);
        const t = performance.now();
        const r = (await plain.callTool({
          name: 'guest_power',
          arguments: { vmid, action: 'reboot', confirmation },
        })) as CallToolResult;
        token.push(performance.now() - t);
        ids.push(actionId(r));
      }
    } finally {
      await plain.close();
    }
  } finally {
    await client.close();
  }
  for (const id of ids) cancelAction(store, id, 'benchmark: the stdio call alone was timed', Date.now());
  const summary = (v: number[]) => ({ median: quantile(v, 0.5), p95: quantile(v, 0.95) });
  return { ping: summary(ping), start: summary(start), elicited: summary(elicited), token: summary(token) };
}

const kindFor = (status: string, i: number): ActionKindName =>
  status === 'running' ? (i % 2 ? 'stop' : 'shutdown') : 'start';

const countFinal = (store: Store, since: number): number =>
  (
    store.sqlite
      .prepare(
        `SELECT count(*) AS n FROM actions WHERE created_at >= ? AND state IN (${FINAL_STATES.map(() => '?').join(',')})`,
      )
      .get(since, ...FINAL_STATES) as { n: number }
  ).n;

/** The 1,000, each asked as soon as the one before is queued, while the worker runs them. */
async function runThousand(
  store: Store,
  submit: SubmitDeps,
  guests: Array<{ vmid: number; status: string }>,
): Promise<{
  wallMs: number;
  submitMs: number[];
  meanConcurrency: number;
  maxConcurrency: number;
  states: Record<string, number>;
}> {
  const since = Date.now();
  const start = performance.now();
  const submitMs: number[] = [];
  const ids: string[] = [];
  let maxConcurrency = 0;
  const countRunning = store.sqlite.prepare(`SELECT count(*) AS n FROM actions WHERE state = 'running'`);
  for (const [i, g] of guests.entries()) {
    const t = performance.now();
    const checked = checkRequest(store, { kind: kindFor(g.status, i), vmid: g.vmid, params: {} }, Date.now());
    ids.push((await submitAction(submit, checked, REQUESTER)).action.id);
    submitMs.push(performance.now() - t);
    if (i % 20 === 0) maxConcurrency = Math.max(maxConcurrency, (countRunning.get() as { n: number }).n);
  }
  while (countFinal(store, since) < ACTIONS) {
    maxConcurrency = Math.max(maxConcurrency, (countRunning.get() as { n: number }).n);
    await sleep(50);
  }
  const wallMs = performance.now() - start;
  const rows = ids.map((id) => getAction(store, id)!);
  const busyMs = rows.reduce((sum, r) => sum + ((r.finishedAt ?? 0) - (r.startedAt ?? r.finishedAt ?? 0)), 0);
  const states: Record<string, number> = {};
  for (const r of rows) states[r.state] = (states[r.state] ?? 0) + 1;
  return { wallMs, submitMs, meanConcurrency: busyMs / wallMs, maxConcurrency, states };
}

/** Actions asked one after the other, each once the one before has ended: no backlog. */
async function runOneByOne(
  store: Store,
  submit: SubmitDeps,
  guests: Array<{ vmid: number }>,
): Promise<{ since: number }> {
  await sleep(1_000); // the write log's times split the phases
  const since = Date.now();
  for (const [i, g] of guests.entries()) {
    const status = (store.sqlite.prepare('SELECT status FROM guests WHERE vmid = ?').get(g.vmid) as { status: string })
      .status;
    const checked = checkRequest(store, { kind: kindFor(status, i), vmid: g.vmid, params: {} }, Date.now());
    const { action } = await submitAction(submit, checked, REQUESTER);
    while (!FINAL_STATES.includes(getAction(store, action.id)!.state)) await sleep(10);
  }
  return { since };
}

interface SimWrite {
  time: number;
  path: string;
  upid?: string;
}

async function simWrites(url: string): Promise<SimWrite[]> {
  const res = await fetch(`${url}/_sim/writes`);
  return ((await res.json()) as { writes: SimWrite[] }).writes;
}

/**
 * For each start/stop/shutdown: when the store showed its guest's new status (the status_changed
 * event's time, written in the transaction that wrote the row) minus when its task ended (the
 * POST's arrival plus the task delay).
 */
function taskEndToStore(store: Store, writes: SimWrite[]): number[] {
  const changes = store.sqlite.prepare(
    `SELECT min(occurred_at) AS at FROM events WHERE type = 'guest.status_changed' AND subject_id = ? AND occurred_at >= ?`,
  );
  const out: number[] = [];
  for (const w of writes) {
    const vmid = /\/(?:qemu|lxc)\/(\d+)\/status\/(?:start|stop|shutdown)$/.exec(w.path)?.[1];
    if (!vmid) continue;
    const { at } = changes.get(`${CLUSTER}/${vmid}`, w.time) as { at: number | null };
    if (at !== null) out.push(at - (w.time + TASK_DELAY_MS));
  }
  return out;
}
