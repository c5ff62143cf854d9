#!/usr/bin/env node
/**
 * Command-line entry: parses arguments and hands over to the command's function in src/commands/.
 * A command's module is imported only once its arguments are read, so `--version`, `help` and a
 * usage error load no command, and each command loads only what it uses (not the simulator for `mcp`).
 */
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import type { ActionKindName } from './actions/catalogue.js';
import { describeFailure, UsageError } from './cli-errors.js';
import { DEMO } from './commands/demo-settings.js';
import { readPastTime, TIME_FORMS } from './mcp/time.js';
import { isLoopbackHost } from './net.js';
import { SIM_PROFILES } from './sim/generator.js';
import { EXIT_FATAL, packageVersion } from './version.js';

const USAGE = `proxmox-inventory <command> [options]

Commands:
  serve [--config FILE]                    sync every cluster on a schedule and take inventory snapshots, until Ctrl-C
  sync --once [--config FILE]              one sync cycle of every cluster, with a summary line each
  snapshot [--label TEXT] [--config FILE]  take an inventory snapshot now
  cluster reset NAME [--yes] [--config FILE]
                                           accept that another cluster answers at NAME's URL: tombstone the old inventory (a plan without --yes)
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
  --version                                the version of proxmox-inventory (also -V)

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
  cluster: { yes: null, config: 'FILE' },
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

const list = (items: string[]): string =>
  items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');

function describeOptions(command: string): string {
  const options = Object.entries(OPTIONS[command]!).map(([name, value]) => `--${name}${value ? ` ${value}` : ''}`);
  return options.length ? `its options are ${list(options)}` : 'it takes no options';
}

/**
 * `--timeout -1` as `--timeout=-1`: parseArgs takes any word starting with "-" for an option, so
 * a negative number after an option that takes a value would be "needs a value" instead of the
 * range the value is checked against.
 */
function attachNegativeValues(args: string[], options: Record<string, string | null>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (word === '--') return [...out, ...args.slice(i)];
    const name = /^--([a-z][a-z-]*)$/.exec(word)?.[1];
    const next = args[i + 1];
    if (name && options[name] && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${word}=${next}`);
      i++;
    } else out.push(word);
  }
  return out;
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
    return parseArgs({ args: attachNegativeValues(args, OPTIONS[command]!), options, allowPositionals, strict: true });
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

interface WholeRange {
  min?: number;
  max?: number;
  unit?: string;
}

/** "a whole number of seconds from 1 to 3600" */
function describeWhole({ min = 0, max, unit }: WholeRange): string {
  const range = max !== undefined ? ` from ${min} to ${max}` : min > 0 ? ` of ${min} or more` : '';
  return `a whole number${unit ? ` of ${unit}` : ''}${range}`;
}

/** An option's whole number, its default when not given; a usage error naming the option and its range. */
function integer(
  label: string,
  name: string,
  value: string | boolean | undefined,
  fallback: number,
  range: WholeRange = {},
): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (n >= (range.min ?? 0) && n <= (range.max ?? Number.MAX_SAFE_INTEGER)) return n;
  throw new UsageError(`${label}: --${name}: expected ${describeWhole(range)}, got "${String(value)}"`);
}

async function sim(args: string[]): Promise<number> {
  const { values } = parse('sim', args);
  const host = text(values.host) ?? '127.0.0.1';
  if (!isLoopbackHost(host))
    throw new UsageError(`--host: the simulator listens on loopback only (127.0.0.1, ::1), not ${host}`);
  const nodes = integer('sim', 'nodes', values.nodes, 3, { min: 1 });
  const lxcRatio = values['lxc-ratio'] === undefined ? 0.3 : Number(values['lxc-ratio']);
  if (!(lxcRatio >= 0 && lxcRatio <= 1))
    throw new UsageError(`--lxc-ratio: expected a number from 0 to 1, got "${values['lxc-ratio']}"`);
  const profile = SIM_PROFILES.find((p) => p === (values.profile ?? 'realistic'));
  if (!profile) throw new UsageError(`--profile: expected ${SIM_PROFILES.join(' or ')}, got "${values.profile}"`);
  const options = {
    guests: integer('sim', 'guests', values.guests, 30),
    nodes,
    seed: integer('sim', 'seed', values.seed, 1),
    lxcRatio,
    profile,
    port: integer('sim', 'port', values.port, 8006, { max: 65_535 }),
    host,
    tls: !values.http,
    taskDelayMs: integer('sim', 'task-delay', values['task-delay'], 1000),
    statusLagMs: integer('sim', 'status-lag', values['status-lag'], 0),
    authFailDelayMs: integer('sim', 'auth-delay', values['auth-delay'], 0),
    churnMs: integer('sim', 'churn', values.churn, 0),
    envFile: text(values['write-env']) ?? 'data/sim.env',
  };
  const { runSim } = await import('./commands/sim.js');
  return runSim(options);
}

type Values = Record<string, string | boolean | undefined>;

/** Proxmox VE's vmid range. */
const VMID = { min: 100, max: 999_999_999 };

/** `action KIND` options: the parameter of the kind's schema each sets, and the unit of a number. */
const KIND_OPTIONS: Record<string, { param: string; unit?: string }> = {
  timeout: { param: 'timeout', unit: 'seconds' },
  'force-stop': { param: 'forceStop' },
  todisk: { param: 'todisk' },
  name: { param: 'name' },
  description: { param: 'description' },
  vmstate: { param: 'vmstate' },
  start: { param: 'start' },
  force: { param: 'force' },
};

/** The CLI spells kinds with "-" (snapshot-create), ACTIONS and MCP with "_". */
const cliKind = (kind: string): string => kind.replace(/_/g, '-');

const optionWords = (names: string[]): string =>
  list(names.map((name) => `--${name}${OPTIONS.action![name] ? ` ${OPTIONS.action![name]}` : ''}`));

/** An option given that this use of `action` does not read: named, rather than silently ignored. */
function onlyOptions(label: string, values: Values, allowed: string[]): void {
  const stray = Object.keys(values).find((o) => values[o] !== undefined && o !== 'config' && !allowed.includes(o));
  if (stray)
    throw new UsageError(
      `${label}: --${stray} is not an option of ${label}; ${allowed.length ? `its options are ${optionWords(allowed)}` : 'it takes only --config FILE'}`,
    );
}

/** The action kinds and their parameters' schemas, loaded (with zod) only when an action is asked for. */
async function loadKinds() {
  const [{ z }, { ACTION_KINDS, CATALOGUE, isActionKind }] = await Promise.all([
    import('zod'),
    import('./actions/catalogue.js'),
  ]);
  return { z, ACTION_KINDS, CATALOGUE, isActionKind };
}

type Kinds = Awaited<ReturnType<typeof loadKinds>>;

function actionKind(word: string, { ACTION_KINDS, isActionKind }: Kinds): ActionKindName {
  const name = word.replace(/-/g, '_');
  if (isActionKind(name)) return name;
  throw new UsageError(
    `action: unknown kind "${word}"; the kinds are ${ACTION_KINDS.map(cliKind).join(', ')} (and list, show ID, cancel ID)`,
  );
}

function guestVmid(label: string, word: string | undefined): number {
  if (word === undefined) throw new UsageError(`${label}: give the guest's vmid, e.g. ${label} 101`);
  const vmid = /^\d+$/.test(word) ? Number(word) : NaN;
  if (vmid >= VMID.min && vmid <= VMID.max) return vmid;
  throw new UsageError(
    `${label}: a vmid is a whole number from ${VMID.min} to ${VMID.max}, as Proxmox VE numbers guests; got "${word}"`,
  );
}

/**
 * The parameters a kind's options give (only those set), checked by the kind's own schema here so
 * that a mistake is said the shell's way (the option, its range) and exits 2 before anything is opened.
 */
function kindParams(
  label: string,
  kind: ActionKindName,
  values: Values,
  { z, CATALOGUE }: Kinds,
): Record<string, unknown> {
  const unwrap = (field: z.ZodType): z.ZodType =>
    field instanceof z.ZodOptional ? unwrap(field.unwrap() as z.ZodType) : field;
  const schema = CATALOGUE[kind].params;
  const fields = schema.shape as Record<string, z.ZodType>;
  const takes = Object.keys(KIND_OPTIONS).filter((option) => KIND_OPTIONS[option]!.param in fields);
  onlyOptions(label, values, ['cluster', 'yes', ...takes]);
  const field = (option: string): z.ZodType => unwrap(fields[KIND_OPTIONS[option]!.param]!);
  const params: Record<string, unknown> = {};
  for (const option of takes) {
    const value = values[option];
    if (value === undefined) continue;
    const numeric = field(option) instanceof z.ZodNumber && typeof value === 'string';
    params[KIND_OPTIONS[option]!.param] = numeric ? (/^-?\d+$/.test(value) ? Number(value) : NaN) : value;
  }
  const parsed = schema.safeParse(params);
  if (parsed.success) return params;
  const issue = parsed.error.issues[0]!;
  const option = takes.find((o) => KIND_OPTIONS[o]!.param === issue.path[0]);
  if (!option) throw new UsageError(`${label}: ${issue.message}`);
  const given = values[option];
  if (given === undefined) throw new UsageError(`${label}: ${optionWords([option])} is required`);
  const f = field(option);
  const expected =
    f instanceof z.ZodNumber
      ? `expected ${describeWhole({ min: f.minValue ?? 0, max: f.maxValue ?? undefined, unit: KIND_OPTIONS[option]!.unit })}`
      : issue.code === 'too_big'
        ? `at most ${String(issue.maximum)} characters`
        : issue.message;
  throw new UsageError(`${label}: --${option}: ${expected}, got "${String(given)}"`);
}

async function action(args: string[]): Promise<number> {
  const { values, positionals } = parse('action', args, true);
  const [sub, arg, ...extra] = positionals;
  const config = text(values.config);
  if (extra.length) throw new UsageError(`action: unexpected argument "${extra[0]}"`);
  switch (sub) {
    case 'list': {
      if (arg) throw new UsageError(`action list: unexpected argument "${arg}"; filter with --state, --since, --limit`);
      onlyOptions('action list', values, ['state', 'since', 'limit']);
      const filters = {
        state: text(values.state),
        since: sinceOption('action list', values.since),
        limit: integer('action list', 'limit', values.limit, 50, { min: 1, max: 10_000 }),
      };
      return (await import('./commands/action.js')).runActionList(config, filters);
    }
    case 'show':
    case 'cancel': {
      onlyOptions(`action ${sub}`, values, []);
      if (!arg) throw new UsageError(`action ${sub}: give the action id (act_…), as \`action list\` shows it`);
      const { runActionShow, runActionCancel } = await import('./commands/action.js');
      return sub === 'show' ? runActionShow(config, arg) : runActionCancel(config, arg);
    }
    case undefined:
      throw new UsageError('action: give a kind and a vmid (action start 101), or list, show ID, cancel ID');
    default: {
      const kinds = await loadKinds();
      const kind = actionKind(sub, kinds);
      const label = `action ${cliKind(kind)}`;
      const vmid = guestVmid(label, arg);
      const ask = {
        kind,
        vmid,
        cluster: text(values.cluster),
        params: kindParams(label, kind, values, kinds),
        yes: values.yes === true,
      };
      return (await import('./commands/action.js')).runActionAsk(config, ask);
    }
  }
}

const WEBHOOK_SUBCOMMANDS =
  'add URL, list, show ID, disable ID, enable ID, remove ID, rotate-secret ID, test ID, deliveries [ID], replay ID';

/** --since as a time back from now; a usage error naming the forms otherwise. */
function sinceOption(label: string, value: string | boolean | undefined): number | undefined {
  const since = text(value);
  if (since === undefined) return undefined;
  const read = readPastTime(since, Date.now());
  if (!read.ok) throw new UsageError(`${label}: --since: ${read.problem}; use ${TIME_FORMS}`);
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
  // Each subcommand's arguments are checked before the webhooks module (and its HTTP client) is loaded.
  const commands = () => import('./commands/webhooks.js');
  switch (sub) {
    case 'add': {
      if (!arg)
        throw new UsageError(
          "webhooks add: give the receiver's URL, e.g. webhooks add https://hooks.example.com/proxmox --events 'guest.*'",
        );
      const add = {
        url: arg,
        events: text(values.events),
        cluster: text(values.cluster),
        tag: text(values.tag),
        description: text(values.description),
        secretFile: text(values['secret-file']),
      };
      return (await commands()).runWebhooksAdd(config, add);
    }
    case 'list':
      return (await commands()).runWebhooksList(config);
    case 'show': {
      const id = needId();
      return (await commands()).runWebhooksShow(config, id);
    }
    case 'disable':
    case 'enable': {
      const id = needId();
      return (await commands()).runWebhooksSetEnabled(config, id, sub === 'enable');
    }
    case 'remove': {
      const id = needId();
      return (await commands()).runWebhooksRemove(config, id);
    }
    case 'rotate-secret': {
      const id = needId();
      return (await commands()).runWebhooksRotateSecret(config, id, text(values['secret-file']));
    }
    case 'test': {
      const id = needId();
      return (await commands()).runWebhooksTest(config, id);
    }
    case 'deliveries': {
      const filters = {
        id: arg,
        failed: values.failed === true,
        since: sinceOption('webhooks deliveries', values.since),
        limit: integer('webhooks deliveries', 'limit', values.limit, 50, { min: 1, max: 10_000 }),
      };
      return (await commands()).runWebhooksDeliveries(config, filters);
    }
    case 'replay': {
      const id = needId();
      const since = sinceOption('webhooks replay', values.since);
      const eventId = text(values.event);
      if ((since === undefined) === (eventId === undefined))
        throw new UsageError(
          'webhooks replay: give either --since TIME (every matching event since then) or --event EVT (one event by id)',
        );
      return (await commands()).runWebhooksReplay(config, id, since === undefined ? { eventId: eventId! } : { since });
    }
    case undefined:
      throw new UsageError(`webhooks: give a subcommand: ${WEBHOOK_SUBCOMMANDS}`);
    default:
      throw new UsageError(`webhooks: unknown subcommand "${sub}"; the subcommands are ${WEBHOOK_SUBCOMMANDS}`);
  }
}

/** `--config FILE`, the one option of a command that takes only that. */
const configOption = (command: string, args: string[]): string | undefined => text(parse(command, args).values.config);

/** Each command: its arguments read (a usage error before anything is loaded), then its module imported and run. */
const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  sim,
  async serve(args) {
    const config = configOption('serve', args);
    return (await import('./commands/serve.js')).runServe(config);
  },
  async sync(args) {
    const { values } = parse('sync', args);
    if (!values.once) throw new UsageError('sync: only `sync --once` exists; `serve` syncs on a schedule');
    return (await import('./commands/sync-once.js')).runSyncOnce(text(values.config));
  },
  async cluster(args) {
    const { values, positionals } = parse('cluster', args, true);
    const [sub, name, ...extra] = positionals;
    if (sub !== 'reset' || !name || extra.length)
      throw new UsageError(
        'cluster: usage is `cluster reset NAME [--yes]` (NAME as `proxmox-inventory check` prints it)',
      );
    return (await import('./commands/cluster-reset.js')).runClusterReset(
      text(values.config),
      name,
      values.yes === true,
    );
  },
  async snapshot(args) {
    const { values } = parse('snapshot', args);
    return (await import('./commands/snapshot.js')).runSnapshot(text(values.config), text(values.label));
  },
  async mcp(args) {
    const config = configOption('mcp', args);
    await (await import('./commands/mcp-stdio.js')).runMcpStdio(config);
    return 0;
  },
  async check(args) {
    const config = configOption('check', args);
    return (await import('./commands/check.js')).runCheck(config);
  },
  action,
  webhooks,
  async demo(args) {
    parse('demo', args);
    return (await import('./commands/demo.js')).runDemo();
  },
  async help(args) {
    parse('help', args);
    process.stdout.write(`${USAGE}\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  if (command === '--version' || command === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command === '--help' || command === '-h' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, command))
    throw new UsageError(`unknown command "${command}"; the commands are ${list(Object.keys(OPTIONS))}`);
  return COMMANDS[command]!(rest);
}

/** The inventory file a command's configuration names, for a message about its disk; undefined when unknown. */
function inventoryFile(
  command: string,
  args: string[],
  configFromEnv: (path: string | undefined, clustersOptional: boolean) => { dbPath: string },
): string | undefined {
  if (command === 'sim') return undefined;
  if (command === 'demo') return 'data/demo/inventory.db';
  try {
    const { values } = parseArgs({
      args,
      options: { config: { type: 'string' } },
      strict: false,
      allowPositionals: true,
    });
    return configFromEnv(text(values.config), true).dbPath;
  } catch {
    return undefined;
  }
}

async function report(err: unknown, argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  // Only a failure past the command line can name the inventory; the command that met it has loaded its configuration already.
  const { configFromEnv } =
    err instanceof UsageError ? { configFromEnv: undefined } : await import('./commands/config-env.js');
  const { exitCode, text: message } = describeFailure(err, {
    command,
    help: Object.hasOwn(OPTIONS, command) ? `proxmox-inventory ${command} --help` : 'proxmox-inventory --help',
    inventoryFile: () => (configFromEnv ? inventoryFile(command, rest, configFromEnv) : undefined),
    root: process.getuid?.() === 0,
  });
  process.stderr.write(`${message}\n`);
  return exitCode;
}

// A reader that goes away (`… | head -1`) is no failure of the command: it finishes its work (the
// store closed cleanly, a subscription saved) and stops writing, where Node threw EPIPE with a stack.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    // After a fault, handles in an unknown state (a socket, a timer) must not keep the process alive.
    if (code === EXIT_FATAL) process.exit(code);
    process.exitCode = code;
  },
  async (err: unknown) => {
    process.exitCode = await report(err, process.argv.slice(2));
  },
);
