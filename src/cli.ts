#!/usr/bin/env node
/** Command-line entry: parses arguments and hands over to the command's function in src/commands/. */
import { parseArgs } from 'node:util';
import { ConfigError } from './config.js';
import { StoreError } from './store/db.js';
import { runActionAsk, runActionCancel, runActionList, runActionShow } from './commands/action.js';
import { runCheck } from './commands/check.js';
import { runClusterReset } from './commands/cluster-reset.js';
import { DEMO, runDemo } from './commands/demo.js';
import { runMcpStdio } from './commands/mcp-stdio.js';
import { runServe } from './commands/serve.js';
import { runSim } from './commands/sim.js';
import { runSnapshot } from './commands/snapshot.js';
import { runSyncOnce } from './commands/sync-once.js';
import {
  runWebhooksAdd,
  runWebhooksDeliveries,
  runWebhooksList,
  runWebhooksRemove,
  runWebhooksReplay,
  runWebhooksRotateSecret,
  runWebhooksSetEnabled,
  runWebhooksShow,
  runWebhooksTest,
} from './commands/webhooks.js';
import { EXIT_FATAL } from './main.js';
import { readPastTime, TIME_FORMS } from './mcp/time.js';
import { isLoopbackHost } from './net.js';
import { SIM_PROFILES } from './sim/generator.js';
import { SimulatorPortError } from './sim/server.js';

const USAGE = `proxmox-inventory <command> [options]

Commands:
  serve [--config FILE]                    sync every cluster on a schedule and take inventory snapshots, until Ctrl-C
  sync --once [--config FILE]              one sync cycle of every cluster, with a summary line each
  snapshot [--label TEXT] [--config FILE]  take an inventory snapshot now
  cluster reset NAME [--config FILE]       accept that another cluster answers at NAME's URL: tombstone the old inventory
  mcp [--config FILE]                      the MCP server on stdio, answering from the inventory (write tools only with ACTIONS)
  check [--config FILE]                    connect to every configured cluster and report what it sees
  action KIND VMID [--cluster NAME] [--yes] [--config FILE]   queue an action (ACTIONS must enable KIND; destructive kinds need --yes)
      KIND: start, shutdown, stop, reboot, suspend, resume, snapshot-create, snapshot-rollback, snapshot-delete
      --timeout S --force-stop (shutdown)  --todisk (suspend)  --name N --description T --vmstate --start --force (snapshots)
      --state S --since TIME --limit N: action list, the outbox newest first; action show ID; action cancel ID (queued only)
  webhooks SUB [ID|URL] [--events GLOBS] [--cluster NAME] [--tag TAG] [--description TEXT] [--secret-file FILE] [--config FILE]
      SUB: add URL --events GLOBS (a secret is generated and printed once unless --secret-file), list, show ID,
           disable ID, enable ID, remove ID, rotate-secret ID, test ID (one signed webhook.test now, not queued)
      --failed --since TIME --limit N: webhooks deliveries [ID], newest first
      --since TIME --event EVT: webhooks replay ID, past events delivered again by the running serve
  sim [options]                            run a simulated Proxmox VE cluster on 127.0.0.1
      --guests N (30)  --nodes N (3)  --seed N (1)  --lxc-ratio R (0.3)
      --profile realistic|dense (realistic; dense: the old 30-105x vCPU overcommit, nodes at 100 % memory)
      --port N (8006; 0 picks a free port)  --host ADDR (127.0.0.1)  --http (plain HTTP instead of HTTPS)
      --task-delay MS (1000)  --status-lag MS (0)  --auth-delay MS (0)
      --churn MS (0: off; else an out-of-band change every MS)
      --write-env FILE (./data/sim.env: where the credentials are written, mode 600)
  demo                                     a simulated ${DEMO.guests}-guest cluster synced every ${DEMO.syncSeconds} s into ./data/demo, an
                                           out-of-band change every ${DEMO.churnSeconds} s, a snapshot every minute, and the MCP endpoint
  help                                     this text (also --help or -h after any command)

The inventory lives in DATA_DIR (./data): serve, sync, snapshot and cluster reset write it; mcp reads it.
One cluster: PVE_URL, PVE_TOKEN_ID, PVE_TOKEN_SECRET or PVE_TOKEN_SECRET_FILE, PVE_FINGERPRINT or PVE_CA_FILE;
several: a config file, --config FILE or PROXMOX_INVENTORY_CONFIG=FILE. Every setting: README.md, Configuration.`;

/**
 * Each command's options: the placeholder of an option that takes a value, `null` for a switch.
 * What parseArgs accepts and what an unknown option's message lists both come from here.
 */
const OPTIONS: Record<string, Record<string, string | null>> = {
  serve: { config: 'FILE' },
  sync: { once: null, config: 'FILE' },
  snapshot: { label: 'TEXT', config: 'FILE' },
  cluster: { config: 'FILE' },
  mcp: { config: 'FILE' },
  check: { config: 'FILE' },
  action: {
    config: 'FILE',
    cluster: 'NAME',
    yes: null,
    timeout: 'S',
    'force-stop': null,
    todisk: null,
    name: 'N',
    description: 'T',
    vmstate: null,
    start: null,
    force: null,
    state: 'S',
    since: 'TIME',
    limit: 'N',
  },
  webhooks: {
    config: 'FILE',
    events: 'GLOBS',
    cluster: 'NAME',
    tag: 'TAG',
    description: 'TEXT',
    'secret-file': 'FILE',
    failed: null,
    since: 'TIME',
    limit: 'N',
    event: 'EVT',
  },
  sim: {
    guests: 'N',
    nodes: 'N',
    seed: 'N',
    'lxc-ratio': 'R',
    profile: 'realistic|dense',
    port: 'N',
    host: 'ADDR',
    http: null,
    'task-delay': 'MS',
    'status-lag': 'MS',
    'auth-delay': 'MS',
    churn: 'MS',
    'write-env': 'FILE',
  },
  demo: {},
  help: {},
};

/** A mistake in the command line: its message, then the usage text. */
class UsageError extends Error {}

const list = (items: string[]): string =>
  items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');

function describeOptions(command: string): string {
  const options = Object.entries(OPTIONS[command]!).map(([name, value]) => `--${name}${value ? ` ${value}` : ''}`);
  return options.length ? `its options are ${list(options)}` : 'it takes no options';
}

/** parseArgs with the command's options; its errors become a sentence naming the command and what it takes. */
function parse(
  command: string,
  args: string[],
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(OPTIONS[command]!).map(([name, value]) => [name, { type: value ? 'string' : 'boolean' } as const]),
  );
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    const { code, message } = err as { code?: string; message: string };
    const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      throw new UsageError(`${command}: unknown option ${quoted}; ${describeOptions(command)}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
      throw new UsageError(
        `${command}: ${quoted.replace(/ <value>$/, '')} needs a value (${describeOptions(command)})`,
      );
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
      throw new UsageError(`${command}: unexpected argument "${quoted}"; ${describeOptions(command)}`);
    throw err;
  }
}

const text = (value: string | boolean | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

function integer(
  name: string,
  value: string | boolean | undefined,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) > max)
    throw new UsageError(
      `--${name}: expected a whole number${max < Number.MAX_SAFE_INTEGER ? ` from 0 to ${max}` : ''}, got "${value}"`,
    );
  return Number(value);
}

function sim(args: string[]): Promise<number> {
  const { values } = parse('sim', args);
  const host = text(values.host) ?? '127.0.0.1';
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
    port: integer('port', values.port, 8006, 65_535),
    host,
    tls: !values.http,
    taskDelayMs: integer('task-delay', values['task-delay'], 1000),
    statusLagMs: integer('status-lag', values['status-lag'], 0),
    authFailDelayMs: integer('auth-delay', values['auth-delay'], 0),
    churnMs: integer('churn', values.churn, 0),
    envFile: text(values['write-env']) ?? 'data/sim.env',
  });
}

/** The parameters a kind's options give (only those set): checked by the kind's own schema when asked. */
function actionParams(values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const params: Record<string, unknown> = {
    timeout: values.timeout === undefined ? undefined : integer('timeout', values.timeout, 0, 3600),
    forceStop: values['force-stop'],
    todisk: values.todisk,
    name: text(values.name),
    description: text(values.description),
    vmstate: values.vmstate,
    start: values.start,
    force: values.force,
  };
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
}

async function action(args: string[]): Promise<number> {
  const { values, positionals } = parse('action', args, true);
  const [sub, arg, ...extra] = positionals;
  const config = text(values.config);
  if (extra.length) throw new UsageError(`action: unexpected argument "${extra[0]}"`);
  switch (sub) {
    case 'list': {
      const since = text(values.since);
      const read = since === undefined ? undefined : readPastTime(since, Date.now());
      if (read && !read.ok) throw new UsageError(`--since: ${read.problem}; use ${TIME_FORMS}`);
      return runActionList(config, {
        state: text(values.state),
        since: read?.ok ? read.at : undefined,
        limit: integer('limit', values.limit, 50, 10_000),
      });
    }
    case 'show':
    case 'cancel':
      if (!arg) throw new UsageError(`action ${sub}: give the action id (act_…), as \`action list\` shows it`);
      return sub === 'show' ? runActionShow(config, arg) : runActionCancel(config, arg);
    case undefined:
      throw new UsageError('action: give a kind and a vmid (action start 101), or list, show ID, cancel ID');
    default: {
      if (!arg || !/^\d+$/.test(arg))
        throw new UsageError(`action ${sub}: give the guest's vmid, e.g. action ${sub} 101`);
      return runActionAsk(config, {
        kind: sub.replace(/-/g, '_'),
        vmid: Number(arg),
        cluster: text(values.cluster),
        params: actionParams(values),
        yes: values.yes === true,
      });
    }
  }
}

const WEBHOOK_SUBCOMMANDS =
  'add URL, list, show ID, disable ID, enable ID, remove ID, rotate-secret ID, test ID, deliveries [ID], replay ID';

/** --since as a time back from now; a usage error naming the forms otherwise. */
function sinceOption(value: string | boolean | undefined): number | undefined {
  const since = text(value);
  if (since === undefined) return undefined;
  const read = readPastTime(since, Date.now());
  if (!read.ok) throw new UsageError(`--since: ${read.problem}; use ${TIME_FORMS}`);
  return read.at;
}

async function webhooks(args: string[]): Promise<number> {
  const { values, positionals } = parse('webhooks', args, true);
  const [sub, arg, ...extra] = positionals;
  const config = text(values.config);
  if (extra.length) throw new UsageError(`webhooks: unexpected argument "${extra[0]}"`);
  const needId = (): string => {
    if (!arg) throw new UsageError(`webhooks ${sub}: give the subscription id (wh_…), as \`webhooks list\` shows it`);
    return arg;
  };
  switch (sub) {
    case 'add':
      if (!arg)
        throw new UsageError(
          "webhooks add: give the receiver's URL, e.g. webhooks add https://hooks.example.com/proxmox --events 'guest.*'",
        );
      return runWebhooksAdd(config, {
        url: arg,
        events: text(values.events),
        cluster: text(values.cluster),
        tag: text(values.tag),
        description: text(values.description),
        secretFile: text(values['secret-file']),
      });
    case 'list':
      return runWebhooksList(config);
    case 'show':
      return runWebhooksShow(config, needId());
    case 'disable':
    case 'enable':
      return runWebhooksSetEnabled(config, needId(), sub === 'enable');
    case 'remove':
      return runWebhooksRemove(config, needId());
    case 'rotate-secret':
      return runWebhooksRotateSecret(config, needId(), text(values['secret-file']));
    case 'test':
      return runWebhooksTest(config, needId());
    case 'deliveries':
      return runWebhooksDeliveries(config, {
        id: arg,
        failed: values.failed === true,
        since: sinceOption(values.since),
        limit: integer('limit', values.limit, 50, 10_000),
      });
    case 'replay': {
      const id = needId();
      const since = sinceOption(values.since);
      const eventId = text(values.event);
      if ((since === undefined) === (eventId === undefined))
        throw new UsageError(
          'webhooks replay: give either --since TIME (every matching event since then) or --event EVT (one event by id)',
        );
      return runWebhooksReplay(config, id, since === undefined ? { eventId: eventId! } : { since });
    }
    case undefined:
      throw new UsageError(`webhooks: give a subcommand: ${WEBHOOK_SUBCOMMANDS}`);
    default:
      throw new UsageError(`webhooks: unknown subcommand "${sub}"; the subcommands are ${WEBHOOK_SUBCOMMANDS}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  if (command === '--help' || command === '-h' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  switch (command) {
    case 'sim':
      return sim(rest);
    case 'serve':
      return runServe(text(parse(command, rest).values.config));
    case 'sync': {
      const { values } = parse(command, rest);
      if (!values.once) throw new UsageError('sync: only `sync --once` exists; `serve` syncs on a schedule');
      return runSyncOnce(text(values.config));
    }
    case 'cluster': {
      const { values, positionals } = parse(command, rest, true);
      const [sub, name, ...extra] = positionals;
      if (sub !== 'reset' || !name || extra.length)
        throw new UsageError('cluster: usage is `cluster reset NAME` (NAME as in sync_status)');
      return runClusterReset(text(values.config), name);
    }
    case 'snapshot': {
      const { values } = parse(command, rest);
      return runSnapshot(text(values.config), text(values.label));
    }
    case 'mcp':
      await runMcpStdio(text(parse(command, rest).values.config));
      return 0;
    case 'check':
      return runCheck(text(parse(command, rest).values.config));
    case 'action':
      return action(rest);
    case 'webhooks':
      return webhooks(rest);
    case 'demo':
      parse(command, rest);
      return runDemo();
    case 'help':
      parse(command, rest);
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"; the commands are ${list(Object.keys(OPTIONS))}`);
  }
}

/** What a file-system call was doing, in words, by its syscall. */
const DOING: Record<string, string> = {
  mkdir: 'create the directory',
  open: 'open',
  write: 'write',
  rename: 'replace',
  unlink: 'remove',
  link: 'create',
  chmod: 'change the mode of',
  access: 'use',
};

/** What a file-system error code means, and what to do about it given where the path comes from. */
const FS_FAILURES: Record<string, { reason: string; fix: (where: string) => string }> = {
  EACCES: {
    reason: 'permission denied',
    fix: (where) => `let this user write there, or choose another directory ${where}`,
  },
  EPERM: { reason: 'not permitted', fix: (where) => `let this user write there, or choose another directory ${where}` },
  EROFS: { reason: 'read-only file system', fix: (where) => `choose a directory on a writable file system ${where}` },
  ENOSPC: { reason: 'no space left on the disk', fix: () => 'free some space' },
  EDQUOT: { reason: 'disk quota exceeded', fix: () => 'free some space' },
  ENOTDIR: { reason: 'a part of the path is a file', fix: (where) => `move it, or choose another directory ${where}` },
  EEXIST: { reason: 'a file is in the way', fix: (where) => `move it, or choose another directory ${where}` },
  ENOENT: { reason: 'a directory on the way is missing', fix: (where) => `create it, or choose another ${where}` },
};

/**
 * A file-system failure as one sentence: what could not be done to which path, why, and the
 * setting that chooses the path (DATA_DIR for the inventory, --write-env for the simulator's file).
 */
function describeFsFailure(err: NodeJS.ErrnoException, command: string): string | undefined {
  const failure = err.code ? FS_FAILURES[err.code] : undefined;
  if (!failure || !err.path) return undefined;
  const where =
    command === 'sim'
      ? 'with --write-env FILE'
      : command === 'demo'
        ? 'by running it from another directory (it writes ./data/demo)'
        : 'with DATA_DIR (dataDir in a config file)';
  const doing = DOING[err.syscall ?? ''] ?? 'use';
  return `${command}: cannot ${doing} ${err.path} (${err.code}: ${failure.reason}); ${failure.fix(where)}`;
}

function report(err: unknown, command: string): number {
  if (err instanceof ConfigError || err instanceof SimulatorPortError) {
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  if (err instanceof StoreError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  const fsFailure = describeFsFailure(err as NodeJS.ErrnoException, command);
  if (fsFailure) {
    process.stderr.write(`${fsFailure}\n`);
    return 1;
  }
  // Anything else is a bug: the stack is what its report needs.
  process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    // After a fault, handles in an unknown state (a socket, a timer) must not keep the process alive.
    if (code === EXIT_FATAL) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = report(err, process.argv[2] ?? 'help');
  },
);
