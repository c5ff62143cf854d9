#!/usr/bin/env node
/** Command-line entry: parses arguments and hands over to the composition root in main.ts. */
import { parseArgs } from 'node:util';
import { ConfigError } from './config.js';
import { StoreError } from './store/db.js';
import {
  EXIT_FATAL,
  runCheck,
  runClusterReset,
  runDemo,
  runMcpStdio,
  runServe,
  runSim,
  runSnapshot,
  runSyncOnce,
} from './main.js';
import { isLoopbackHost } from './net.js';
import { SIM_PROFILES } from './sim/generator.js';

const USAGE = `proxmox-inventory <command> [options]

Commands:
  serve [--config FILE]       sync every cluster on a schedule and take inventory snapshots, until Ctrl-C
  sync --once [--config FILE] one sync cycle of every cluster, with a summary line each
  snapshot [--label TEXT]     take an inventory snapshot now
  cluster reset NAME          accept that another cluster answers at NAME's URL: tombstone the old inventory
  mcp [--config FILE]         the MCP server on stdio, answering from the inventory (read-only)
  check [--config FILE]       connect to every configured cluster and report what it sees
  sim [options]               run a simulated Proxmox VE cluster on 127.0.0.1
      --guests N (30)  --nodes N (3)  --seed N (1)  --lxc-ratio R (0.3)
      --profile realistic|dense (realistic; dense: the old 30-105x vCPU overcommit, nodes at 100 % memory)
      --port N (8006)  --host ADDR (127.0.0.1)  --http (plain HTTP instead of HTTPS)
      --task-delay MS (1000)  --status-lag MS (0)  --auth-delay MS (0)
      --churn MS (0: off; else an out-of-band change every MS)
      --write-env FILE (./data/sim.env: where the credentials are written, mode 600)
  demo                        a simulated cluster plus the client, with changes every 5 s
  help                        this text

Configuration (check): PVE_URL, PVE_TOKEN_ID, PVE_TOKEN_SECRET or PVE_TOKEN_SECRET_FILE,
PVE_FINGERPRINT or PVE_CA_FILE; several clusters: PROXMOX_INVENTORY_CONFIG=FILE (README.md).`;

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name}: expected a whole number, got "${value}"`);
  return Number(value);
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'sim': {
      const { values } = parseArgs({
        args: rest,
        options: {
          guests: { type: 'string' },
          nodes: { type: 'string' },
          seed: { type: 'string' },
          'lxc-ratio': { type: 'string' },
          profile: { type: 'string' },
          port: { type: 'string' },
          host: { type: 'string' },
          http: { type: 'boolean' },
          'task-delay': { type: 'string' },
          'status-lag': { type: 'string' },
          'auth-delay': { type: 'string' },
          churn: { type: 'string' },
          'write-env': { type: 'string' },
        },
      });
      const host = values.host ?? '127.0.0.1';
      if (!isLoopbackHost(host))
        throw new UsageError(`--host: the simulator listens on loopback only (127.0.0.1, ::1), not ${host}`);
      const nodes = integer('nodes', values.nodes, 3);
      if (nodes < 1) throw new UsageError('--nodes: at least 1');
      const lxcRatio = values['lxc-ratio'] === undefined ? 0.3 : Number(values['lxc-ratio']);
      if (!(lxcRatio >= 0 && lxcRatio <= 1))
        throw new UsageError(`--lxc-ratio: expected a number from 0 to 1, got "${values['lxc-ratio']}"`);
      const profile = SIM_PROFILES.find((p) => p === (values.profile ?? 'realistic'));
      if (!profile) throw new UsageError(`--profile: expected ${SIM_PROFILES.join(' or ')}, got "${values.profile}"`);
      return runSim({
        guests: integer('guests', values.guests, 30),
        nodes,
        seed: integer('seed', values.seed, 1),
        lxcRatio,
        profile,
        port: integer('port', values.port, 8006),
        host,
        tls: !values.http,
        taskDelayMs: integer('task-delay', values['task-delay'], 1000),
        statusLagMs: integer('status-lag', values['status-lag'], 0),
        authFailDelayMs: integer('auth-delay', values['auth-delay'], 0),
        churnMs: integer('churn', values.churn, 0),
        envFile: values['write-env'] ?? 'data/sim.env',
      });
    }
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
      return runServe(values.config);
    }
    case 'sync': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, once: { type: 'boolean' } } });
      if (!values.once) throw new UsageError('sync: only `sync --once` exists; `serve` syncs on a schedule');
      return runSyncOnce(values.config);
    }
    case 'cluster': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { config: { type: 'string' } },
        allowPositionals: true,
      });
      const [sub, name, ...extra] = positionals;
      if (sub !== 'reset' || !name || extra.length)
        throw new UsageError('cluster: usage is `cluster reset NAME` (NAME as in sync_status)');
      return runClusterReset(values.config, name);
    }
    case 'snapshot': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, label: { type: 'string' } } });
      return runSnapshot(values.config, values.label);
    }
    case 'mcp': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
      await runMcpStdio(values.config);
      return 0;
    }
    case 'check': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
      return runCheck(values.config);
    }
    case 'demo':
      return runDemo();
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // After a fault, handles in an unknown state (a socket, a timer) must not keep the process alive.
    if (code === EXIT_FATAL) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof StoreError) process.stderr.write(`${err.message}\n`);
    else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    else process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
  },
);
