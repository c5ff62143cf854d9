/** `sim`: a simulated Proxmox VE cluster on this machine, its credentials written to an env file. */
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { configFromEnv } from './config-env.js';
import { runUntilStopped } from '../lifecycle.js';
import { createLogger } from '../log.js';
import { startChurn } from '../sim/churn.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../sim/server.js';
import { createPrivateDir } from '../store/files.js';

/** Writes the simulator's connection settings as an env file only its owner can read. */
export function writeSimEnv(sim: Simulator, path: string): void {
  createPrivateDir(dirname(path)); // ./data by default, where the inventory goes too
  const lines = [
    `PVE_URL=${sim.url}`,
    `PVE_TOKEN_ID=${sim.tokens.full.id}`,
    `PVE_TOKEN_SECRET=${sim.tokens.full.secret}`,
    sim.fingerprint ? `PVE_FINGERPRINT=${sim.fingerprint}` : '',
    `# read-only token: PVE_TOKEN_ID=${sim.tokens.auditor.id} PVE_TOKEN_SECRET=${sim.tokens.auditor.secret}`,
  ].filter(Boolean);
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
  chmodSync(path, 0o600); // `mode` applies only when the file is created
}

export interface SimCommandOptions extends SimulatorOptions {
  envFile: string;
  churnMs: number;
}

export async function runSim(options: SimCommandOptions): Promise<number> {
  const log = createLogger(configFromEnv(undefined, true).log);
  const started = Date.now();
  const sim = await startSimulator(options);
  const envFile = resolve(options.envFile);
  writeSimEnv(sim, envFile);
  const stopChurn =
    options.churnMs > 0
      ? startChurn(sim.cluster, options.churnMs, (e) => log.info(e, 'out-of-band change'))
      : (): void => {};
  const out = process.stdout;
  out.write(
    `Simulated Proxmox VE ${sim.cluster.options.pveVersion} "${sim.cluster.options.name}": ${sim.cluster.nodes.length} nodes, ${sim.cluster.guests.size} guests (ready in ${Date.now() - started} ms)\n`,
  );
  out.write(`  API          ${sim.url}/api2/json\n`);
  if (sim.fingerprint) out.write(`  fingerprint  ${sim.fingerprint}\n`);
  out.write(`  tokens       ${sim.tokens.full.id} (full), ${sim.tokens.auditor.id} (audit only)\n`);
  out.write(
    `  credentials  ${envFile} (mode 600; \`set -a; . ${options.envFile}; set +a\` then run proxmox-inventory)\n`,
  );
  out.write(`  control      ${sim.url}/_sim/counters, /_sim/faults, /_sim/guests (docs/simulator.md)\n`);
  out.write('Ctrl-C stops it.\n');
  return runUntilStopped(async () => {
    stopChurn();
    await sim.close();
  }, log);
}
