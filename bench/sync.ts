/**
 * Sync benchmark: API calls and wall time of the first sync and of steady-state cycles, and the
 * daemon's peak RSS, at 100, 1,000 and 10,000 guests, measured on the built daemon (run
 * `npm run build` first; `npm run bench` does). Each size runs twice: with Node's default heap
 * sizing, and with `--max-old-space-size=192` (README: memory).
 */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

const SIZES = [
  { guests: 100, nodes: 3 },
  { guests: 1_000, nodes: 8 },
  { guests: 10_000, nodes: 16 },
];
const FLAGS = [[], ['--max-old-space-size=192']];

export async function benchSync(): Promise<void> {
  process.stdout.write(
    '\nsync: the built daemon (`serve`, a cycle a second) against the simulator in its own process over HTTP;\n',
  );
  process.stdout.write(
    'first sync reads every config (concurrency 8); 15 steady-state cycles (no sweep batch); figures from sync_runs\n',
  );
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n\n`,
  );
  process.stdout.write(
    '| guests | nodes | node flags | first sync calls | first sync s | steady calls/cycle | steady median ms | steady p95 ms | peak RSS MiB |\n',
  );
  process.stdout.write('|---:|---:|---|---:|---:|---:|---:|---:|---:|\n');
  for (const { guests, nodes } of SIZES) {
    for (const flags of FLAGS) {
      const line = execFileSync(
        process.execPath,
        ['--import', 'tsx', 'bench/sync-one.ts', String(guests), String(nodes), '15', ...flags],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const r = JSON.parse(line.trim().split('\n').pop()!) as Record<string, number | string>;
      process.stdout.write(
        `| ${guests.toLocaleString('en')} | ${nodes} | ${flags.join(' ') || '(default)'} | ${Number(r.firstCalls).toLocaleString('en')} | ${(Number(r.firstMs) / 1000).toFixed(2)} | ${r.steadyCalls} | ${r.steadyMedianMs} | ${r.steadyP95Ms} | ${r.peakRssMiB} |\n`,
      );
    }
  }
}
