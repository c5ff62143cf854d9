/**
 * One bulk read of a simulated cluster through the real client over HTTPS (pinned certificate):
 * the call the sync makes every cycle. Measures simulator generation time, response size, and
 * wall time of `clusterResources()` (request + JSON + coercion) at several cluster sizes.
 */
import { cpus } from 'node:os';
import { createHttpProxmoxClient } from '../src/proxmox/http-client.js';
import { Secret } from '../src/secret.js';
import { startSimulator } from '../src/sim/server.js';

const SIZES = [
  { guests: 100, nodes: 3 },
  { guests: 1_000, nodes: 8 },
  { guests: 10_000, nodes: 16 },
];
const RUNS = 40;

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
const ms = (n: number): string => n.toFixed(1);

export async function benchBulkRead(): Promise<void> {
  process.stdout.write(
    `\nbulk read: GET /cluster/resources through the client, HTTPS with a pinned certificate, ${RUNS} runs each (p95 of 40)\n`,
  );
  process.stdout.write(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n\n`);
  process.stdout.write(
    '| guests | nodes | sim start ms | response KiB | first call ms | median ms | p95 ms | calls counted | RSS MiB |\n',
  );
  process.stdout.write('|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const size of SIZES) {
    const t0 = performance.now();
    const sim = await startSimulator({ ...size, seed: 1 });
    const startMs = performance.now() - t0;
    const client = createHttpProxmoxClient({
      cluster: 'bench',
      url: sim.url,
      tokenId: sim.tokens.full.id,
      tokenSecret: new Secret(sim.tokens.full.secret),
      tls: { fingerprint: sim.fingerprint },
      retries: 0,
    });
    let first = 0;
    const times: number[] = [];
    let guests = 0;
    sim.resetCounters();
    for (let i = 0; i <= RUNS; i++) {
      const t = performance.now();
      const r = await client.clusterResources();
      const elapsed = performance.now() - t;
      guests = r.guests.length;
      if (i === 0) first = elapsed;
      else times.push(elapsed);
    }
    if (guests !== size.guests) throw new Error(`expected ${size.guests} guests, read ${guests}`);
    const bytes = JSON.stringify({ data: (await client.get('/cluster/resources')) as unknown }).length;
    times.sort((a, b) => a - b);
    const calls = sim.counters().byEndpoint['GET /cluster/resources'] ?? 0;
    process.stdout.write(
      `| ${size.guests.toLocaleString('en')} | ${size.nodes} | ${ms(startMs)} | ${(bytes / 1024).toFixed(0)} | ${ms(first)} | ${ms(percentile(times, 0.5))} | ${ms(percentile(times, 0.95))} | ${calls} | ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} |\n`,
    );
    await client.close();
    await sim.close();
  }
}
