/** `serve`: the daemon until a signal or a fault. */
import { loadConfig } from '../config.js';
import { runUntilStopped, startServing } from '../main.js';

/** `serve`: the schedules until SIGINT/SIGTERM, then a clean shutdown. */
export async function runServe(configPath: string | undefined): Promise<number> {
  // Read with the HTTP endpoint's own rule (a host beyond loopback needs a bearer token), which
  // the commands that never listen do not apply.
  const config = loadConfig({ env: process.env, configPath, listensOnHttp: true });
  const serving = await startServing(config);
  return runUntilStopped(() => serving.close(), serving.log);
}
