/** `serve`: the daemon until a signal or a fault. */
import { loadConfig } from '../config.js';
import { holdSignalsWhileStarting, runUntilStopped } from '../lifecycle.js';
import { createLogger } from '../log.js';
import { startServing } from '../main.js';

/** `serve`: the schedules until SIGINT/SIGTERM, then a clean shutdown. */
export async function runServe(configPath: string | undefined): Promise<number> {
  // Read with the HTTP endpoint's own rule (a host beyond loopback needs a bearer token), which
  // the commands that never listen do not apply.
  const config = loadConfig({ env: process.env, configPath, listensOnHttp: true });
  const log = createLogger(config.log);
  const holding = holdSignalsWhileStarting(log);
  let serving;
  try {
    serving = await startServing(config, { log });
  } catch (err) {
    holding.release();
    throw err;
  }
  return runUntilStopped(() => serving.close(), log, { holding });
}
