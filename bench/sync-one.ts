/**
 * One sync benchmark run against the real daemon: the built `proxmox-inventory serve`
 * (dist/cli.js) syncs a simulated cluster (its own process, like a real one) once a second.
 * Cycle times and call counts come from the daemon's sync_runs rows; peak RSS is the kernel's
 * high-water mark (VmHWM) for the daemon process. Prints one JSON line.
 * Usage: tsx bench/sync-one.ts GUESTS NODES [STEADY_CYCLES] [NODE_FLAG…]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const [guestsArg = '1000', nodesArg = '3', steadyArg = '15', ...nodeFlags] = process.argv.slice(2);
const [guests, nodes, steady] = [Number(guestsArg), Number(nodesArg), Number(steadyArg)];
const dir = mkdtempSync(join(tmpdir(), 'pi-bench-'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function waitForLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing "${text}"`)));
  });
}

const envFile = join(dir, 'sim.env');
const sim = spawn(
  process.execPath,
  [
    'dist/cli.js',
    'sim',
    '--http',
    '--port',
    '0',
    '--guests',
    String(guests),
    '--nodes',
    String(nodes),
    '--write-env',
    envFile,
    ...(process.env.SIM_PROFILE ? ['--profile', process.env.SIM_PROFILE] : []),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await waitForLine(sim, 'Ctrl-C stops it.');
const env = Object.fromEntries(
  readFileSync(envFile, 'utf8')
    .split('\n')
    .filter((l) => /^PVE_/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

// Steady state is what runs between sweep batches; the sweep's cost is reported on its own.
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  'sync: { intervalSeconds: 1, sweepEverySeconds: 0, configConcurrency: 8 }\nsnapshots: { schedule: "off" }\n',
);
const daemon = spawn(process.execPath, [...nodeFlags, 'dist/cli.js', 'serve', '--config', configFile], {
  env: { PATH: process.env.PATH ?? '', ...env, DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'error' },
  stdio: ['ignore', 'ignore', 'inherit'],
});

const dbPath = join(dir, 'data', 'inventory.db');
type Run = { duration_ms: number; calls_total: number; configs_fetched: number; ok: number };
let runs: Run[] = [];
const deadline = Date.now() + 120_000;
while (runs.length < steady + 1 && Date.now() < deadline) {
  await sleep(250);
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    runs = db.prepare('SELECT duration_ms, calls_total, configs_fetched, ok FROM sync_runs ORDER BY id').all() as Run[];
    db.close();
  } catch {
    // not created yet
  }
}
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))?.[1] ?? 0);
daemon.kill('SIGTERM');
sim.kill('SIGTERM');
if (runs.length < steady + 1 || runs.some((r) => !r.ok))
  throw new Error(`expected ${steady + 1} successful cycles, got ${JSON.stringify(runs)}`);
const [first, ...rest] = runs.slice(0, steady + 1) as [Run, ...Run[]];
const times = rest.map((r) => r.duration_ms).sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    guests,
    nodes,
    nodeFlags: nodeFlags.join(' '),
    firstCalls: first.calls_total,
    firstMs: first.duration_ms,
    firstConfigs: first.configs_fetched,
    steadyCalls: Math.max(...rest.map((r) => r.calls_total)),
    steadyMedianMs: times[Math.floor(times.length / 2)],
    steadyP95Ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))],
    peakRssMiB: Math.round(hwm / 1024),
  }) + '\n',
);
