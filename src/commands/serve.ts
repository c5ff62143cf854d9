/** `serve`: the daemon until a signal or a fault. */
import { configFromEnv, runUntilStopped, startServing } from '../main.js';

/** `serve`: the schedules until SIGINT/SIGTERM, then a clean shutdown. */
export async function runServe(configPath: string | undefined): Promise<number> {
  const serving = await startServing(configFromEnv(configPath));
  return runUntilStopped(() => serving.close(), serving.log);
}
