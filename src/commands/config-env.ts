/**
 * The configuration of a command that never listens: this process's environment and the config
 * file named. Its own small module, so a command that needs no daemon (snapshot, cluster reset,
 * webhooks) does not load main.ts for it.
 */
import { loadConfig, type Config } from '../config.js';

export function configFromEnv(configPath: string | undefined, clustersOptional = false): Config {
  return loadConfig({ env: process.env, configPath, clustersOptional });
}
