/**
 * An action worker in a process of its own, for faults.test.ts to SIGKILL mid-task as a crashed
 * `serve` would die: the same store file, Redis and BullMQ prefix as the test, the simulator
 * through the real HTTP client. Prints `ready` once the worker runs. Settings come from the
 * environment (ACTION_CHILD_*), the token secret included: it is the test's own simulator.
 */
import { startActionWorker } from '../../src/actions/queue.js';
import { createLogger } from '../../src/log.js';
import { createHttpProxmoxClient } from '../../src/proxmox/http-client.js';
import { redisConnection } from '../../src/queue/redis.js';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/store/db.js';
import { createClusterSync, DEFAULT_SYNC_SETTINGS } from '../../src/sync/cycle.js';

const env = (name: string): string => {
  const value = process.env[`ACTION_CHILD_${name}`];
  if (!value) throw new Error(`ACTION_CHILD_${name} is not set`);
  return value;
};

const cluster = env('CLUSTER');
const store = openStore(env('DB'));
const log = createLogger({ level: 'warn' });
const client = createHttpProxmoxClient({
  cluster,
  url: env('SIM_URL'),
  tokenId: env('TOKEN_ID'),
  tokenSecret: new Secret(env('TOKEN_SECRET')),
  tls: { fingerprint: env('FINGERPRINT') },
  retries: 0,
  timeoutMs: 5_000,
});
const sync = createClusterSync({
  store,
  client,
  cluster,
  settings: { ...DEFAULT_SYNC_SETTINGS, sweepEveryMs: 0 },
  log,
});
startActionWorker({
  store,
  client: (name) => (name === cluster ? client : undefined),
  refresh: async (_cluster, vmid, why) => {
    await sync.refreshGuest(vmid, why);
  },
  log,
  now: Date.now,
  connection: redisConnection(env('REDIS'), 'worker'),
  prefix: env('PREFIX'),
  settings: { reconcileEveryMs: 1_000, lockMs: Number(env('LOCK_MS')) },
});
process.stdout.write('ready\n');
