/**
 * `action …`: ask for an action from the shell, and look at the outbox. Asking needs ACTIONS to
 * enable the kind, as over MCP; a destructive kind needs `--yes` (the shell's confirmation), and
 * without it the plan is printed and nothing is queued.
 */
import { CATALOGUE, type ActionKindName } from '../actions/catalogue.js';
import { ActionRefused, checkRequest, submitAction } from '../actions/submit.js';
import { UsageError } from '../cli-errors.js';
import { configFromEnv } from './config-env.js';
import { daemonQueue, submitSettings } from '../main.js';
import { localPrincipal } from '../principal.js';
import { cancelAction, getAction, listActions, type ActionRow, type ActionState } from '../store/actions.js';
import { openStore } from '../store/db.js';
import { withStore } from './with-store.js';

export interface AskOptions {
  kind: ActionKindName;
  vmid: number;
  cluster?: string;
  params: Record<string, unknown>;
  yes: boolean;
}

const out = (line: string): boolean => process.stdout.write(`${line}\n`);
const err = (line: string): boolean => process.stderr.write(`${line}\n`);

/** `action KIND VMID [--cluster C] [params] [--yes]`; the kind, vmid and parameters are checked by the parser. */
export async function runActionAsk(configPath: string | undefined, o: AskOptions): Promise<number> {
  const config = configFromEnv(configPath);
  const { kind } = o;
  const label = `action ${kind.replace(/_/g, '-')}`;
  if (!config.actions.kinds.includes(kind)) {
    err(
      `${label}: ${kind} is not enabled; set ACTIONS (e.g. ACTIONS=${CATALOGUE[kind].group}) for serve and this command (enabled now: ${config.actions.kinds.join(', ') || 'none'})`,
    );
    return 2;
  }
  const clusters = config.clusters.map((c) => c.name);
  if (o.cluster !== undefined && !clusters.includes(o.cluster))
    throw new UsageError(`${label}: --cluster: no cluster ${o.cluster}; configured: ${clusters.join(', ')}`);
  const queue = daemonQueue(config);
  const store = openStore(config.dbPath);
  try {
    const checked = checkRequest(store, { kind, vmid: o.vmid, cluster: o.cluster, params: o.params }, Date.now());
    const g = checked.guest;
    const plan = `${kind} ${g.type} ${g.vmid}${g.name ? ` (${g.name})` : ''} on ${g.cluster}/${g.node}, ${g.status} now: ${CATALOGUE[kind].about}`;
    if (checked.kind.destructive && !o.yes) {
      out(`plan: ${plan}`);
      err(`${label}: this kind is destructive; add --yes to queue it`);
      return 1;
    }
    const done = await submitAction({ store, queue, settings: submitSettings(config), now: Date.now }, checked, {
      transport: 'cli',
      client: null,
      principal: localPrincipal(),
    });
    out(`${done.action.id} ${done.action.state}: ${plan}`);
    if (done.note) out(`note: ${done.note}`);
    return 0;
  } catch (e) {
    if (!(e instanceof ActionRefused)) throw e;
    err(`${label}: ${e.message}${e.shellHint ? ` ${e.shellHint}` : ''}`);
    return 1;
  } finally {
    store.close();
    await queue?.close();
  }
}

const STATES: readonly ActionState[] = ['queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'];

function line(a: ActionRow): string {
  const when = new Date(a.createdAt).toISOString();
  return [a.id, a.state.padEnd(9), when, a.kind, `${a.cluster}/${a.vmid}`, a.principal, a.reason ?? ''].join('  ');
}

/** `action list [--state S] [--since ISO|DURATION] [--limit N]`, newest first. */
export function runActionList(
  configPath: string | undefined,
  o: { state?: string; since?: number; limit: number },
): number {
  const config = configFromEnv(configPath, true);
  if (o.state !== undefined && !STATES.includes(o.state as ActionState))
    throw new UsageError(`action list: --state: expected one of ${STATES.join(', ')}, got "${o.state}"`);
  const rows = withStore(config, (store) =>
    listActions(store, { state: o.state as ActionState | undefined, since: o.since, limit: o.limit }),
  );
  if (!rows.length) out('no actions');
  for (const row of rows) out(line(row));
  return 0;
}

export function runActionShow(configPath: string | undefined, id: string): number {
  const config = configFromEnv(configPath, true);
  const row = withStore(config, (store) => getAction(store, id));
  if (!row) {
    err(`action show: no action ${id}; \`action list\` shows the recent ones`);
    return 1;
  }
  const shown = {
    ...row,
    params: JSON.parse(row.params) as unknown,
    taskLog: row.taskLog ? (JSON.parse(row.taskLog) as unknown) : null,
    createdAt: new Date(row.createdAt).toISOString(),
    expiresAt: new Date(row.expiresAt).toISOString(),
    startedAt: row.startedAt ? new Date(row.startedAt).toISOString() : null,
    postedAt: row.postedAt ? new Date(row.postedAt).toISOString() : null,
    finishedAt: row.finishedAt ? new Date(row.finishedAt).toISOString() : null,
  };
  out(JSON.stringify(shown, null, 2));
  return 0;
}

export function runActionCancel(configPath: string | undefined, id: string): number {
  const config = configFromEnv(configPath, true);
  return withStore(config, (store) => {
    const row = getAction(store, id);
    if (!row) {
      err(`action cancel: no action ${id}; \`action list --state queued\` shows what can be cancelled`);
      return 1;
    }
    const cancelled = cancelAction(store, id, `cancelled by ${localPrincipal()} from the command line`, Date.now());
    if (!cancelled) {
      err(`action cancel: ${id} is ${row.state}; only a queued action can be cancelled`);
      return 1;
    }
    out(`${id} cancelled`);
    return 0;
  });
}
