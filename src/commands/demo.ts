/** `demo`: a simulated cluster, the daemon syncing it, and the MCP endpoint, with how to connect a client. */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig } from '../config.js';
import { holdSignalsWhileStarting, runUntilStopped, type SignalHold } from '../lifecycle.js';
import { createDaemon, sharedRedis, startActions, startHttp, type Actions } from '../main.js';
import type { McpHttpEndpoint } from '../mcp/http.js';
import { createLogger, type Logger } from '../log.js';
import { createProgress } from '../progress.js';
import { stopLeftoverRedis } from '../queue/embedded-redis.js';
import { startChurn } from '../sim/churn.js';
import { startSimulator } from '../sim/server.js';
import { startScheduler, type LiveClusterStatus, type Scheduler } from '../sync/scheduler.js';
import { DEMO } from './demo-settings.js';
import { writeSimEnv } from './sim.js';
import { describeCycle } from './sync-once.js';

/**
 * `demo`: a simulated 300-guest cluster over HTTPS, the daemon syncing it into
 * data/demo/inventory.db every 5 s while the simulator makes out-of-band changes, and the MCP
 * endpoint; it prints how to connect an MCP client.
 */
export async function runDemo(): Promise<number> {
  const startLog = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const holding = holdSignalsWhileStarting(startLog);
  try {
    return await startDemo(holding, startLog);
  } finally {
    holding.release(); // done already unless the start failed
  }
}

async function startDemo(holding: SignalHold, startLog: Logger): Promise<number> {
  const dataDir = resolve('data/demo');
  const envFile = resolve(dataDir, 'sim.env');
  // Each demo starts from an empty inventory; a Redis an interrupted demo left there is stopped first.
  await stopLeftoverRedis(dataDir, startLog);
  rmSync(dataDir, { recursive: true, force: true });
  const sim = await startSimulator({ guests: DEMO.guests, nodes: DEMO.nodes, seed: 42 });
  writeSimEnv(sim, envFile);
  // With ACTIONS, write tools are on: over HTTP they need a bearer token, made here and printed.
  const actionKinds = process.env.ACTIONS ?? '';
  const token = actionKinds ? randomBytes(24).toString('hex') : undefined;
  const config = loadConfig({
    env: {
      PVE_URL: sim.url,
      PVE_TOKEN_ID: sim.tokens.full.id,
      PVE_TOKEN_SECRET: sim.tokens.full.secret,
      PVE_FINGERPRINT: sim.fingerprint,
      PVE_CLUSTER_NAME: 'demo',
      DATA_DIR: dataDir,
      SYNC_INTERVAL_SECONDS: String(DEMO.syncSeconds),
      SNAPSHOT_SCHEDULE: '* * * * *',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      MCP_HTTP_PORT: process.env.MCP_HTTP_PORT ?? '8765',
      ...(actionKinds ? { ACTIONS: actionKinds, MCP_BEARER_TOKEN: token } : {}),
    },
    listensOnHttp: true,
  });
  const daemon = createDaemon(config);
  const out = process.stdout;
  out.write(
    `\nproxmox-inventory demo\n  simulated Proxmox VE: ${sim.url} (HTTPS, certificate pinned by fingerprint), credentials in ${envFile}\n`,
  );
  out.write(`  inventory database:   ${config.dbPath}\n\nfirst sync:\n  `);
  const [first] = await Promise.all(
    daemon.syncs.map((s) => s.runCycle({ onProgress: createProgress(process.stderr, daemon.log, s.cluster) })),
  );
  out.write(`${describeCycle(first!)}\n\n`);
  const started: { scheduler?: Scheduler } = {}; // the schedules start once the endpoint is printed
  const live = (): LiveClusterStatus[] => started.scheduler?.liveStatus() ?? [];
  const redis = sharedRedis(config, daemon.log);
  const actions: Actions | undefined = config.actions.kinds.length
    ? await startActions(daemon, await redis.target())
    : undefined;
  let http: McpHttpEndpoint;
  try {
    http = await startHttp(daemon, live, actions);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    http = await startHttp(
      { ...daemon, config: { ...config, mcp: { ...config.mcp, http: { ...config.mcp.http, port: 0 } } } },
      live,
      actions,
    );
  }
  const cli = resolve('src/cli.ts');
  out.write(`MCP, for agents (answers from the inventory, never from Proxmox):\n`);
  out.write(`  Streamable HTTP: ${http.url}\n`);
  const headers = token ? { headers: { Authorization: `Bearer ${token}` } } : {};
  out.write(`    ${JSON.stringify({ mcpServers: { proxmox: { type: 'http', url: http.url, ...headers } } })}\n`);
  if (token) {
    writeFileSync(resolve(dataDir, 'mcp-token'), `${token}\n`, { mode: 0o600 });
    out.write(
      `    write tools on (ACTIONS=${actionKinds}): the bearer token above is also in ${resolve(dataDir, 'mcp-token')}\n`,
    );
  }
  out.write(`  stdio (Claude Desktop and clients that start servers), beside the daemon:\n`);
  const stdioEnv = { DATA_DIR: dataDir, ...(actionKinds ? { ACTIONS: actionKinds } : {}) };
  out.write(
    `    ${JSON.stringify({ mcpServers: { proxmox: { command: 'npx', args: ['tsx', cli, 'mcp'], env: stdioEnv } } })}\n`,
  );
  out.write(
    `  try it: npx mcp-inspector --cli -e DATA_DIR=${dataDir} npx tsx ${cli} mcp --method tools/call --tool-name list_guests --tool-arg tag=prod --tool-arg limit=5\n`,
  );
  out.write(
    '  questions to ask: "Which running VMs are tagged prod, and on which nodes?" · "What changed in the last\n',
  );
  out.write('  10 minutes?" · "Show me guest 120: its disks, NICs and recent tasks." · "Is the inventory fresh?"\n\n');
  // 4 bulk calls is the floor; each changed guest adds its config read, and the sweep's batch a few more.
  out.write(
    `Now a sync every ${DEMO.syncSeconds} s (4 bulk API calls, plus a config read per changed guest) and a snapshot every\n`,
  );
  out.write(
    `minute; the simulator makes an out-of-band change every ${DEMO.churnSeconds} s, and each cycle that sees one prints it,\n`,
  );
  out.write('with the calls it made. Ctrl-C stops the demo.\n\n');
  const stopChurn = startChurn(sim.cluster, DEMO.churnSeconds * 1000);
  const scheduler = startScheduler({
    syncs: daemon.syncs,
    store: daemon.store,
    intervalSeconds: config.sync.intervalSeconds,
    snapshots: config.snapshots,
    log: daemon.log,
    requestsInFlight: daemon.requestsInFlight,
    onCycle: (s) => {
      if (!s.ok || Object.keys(s.changes).length)
        out.write(`${new Date().toISOString().slice(11, 19)} ${describeCycle(s)}\n`);
    },
  });
  started.scheduler = scheduler;
  return runUntilStopped(
    async () => {
      stopChurn();
      await http.close();
      await actions?.close();
      await redis.stop();
      await scheduler.stop();
      await daemon.close();
      await sim.close();
    },
    daemon.log,
    { holding },
  );
}
