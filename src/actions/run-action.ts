/**
 * Running one action from its outbox row, in phases: begin (expired? taken by someone else?),
 * send (the POST, its UPID stored at once), wait (the task), conclude (the outcome and a refresh of
 * the guest). Every phase starts from what the row says, so a job run again after a crash or a
 * Redis loss resumes where the last one stopped: a row with a UPID is waited on, never sent again.
 */
import type { Logger } from '../log.js';
import type { ProxmoxClient } from '../proxmox/client.js';
import { ProxmoxApiError } from '../proxmox/errors.js';
import { TaskTimeoutError, type TaskResult } from '../proxmox/tasks.js';
import type { Task } from '../proxmox/types.js';
import {
  finishAction,
  getAction,
  markPosting,
  markRunning,
  recordUpid,
  expireDue,
  type ActionRow,
  type Outcome,
} from '../store/actions.js';
import type { Store } from '../store/db.js';
import { CATALOGUE, isActionKind, type ActionKind, type ActionTarget } from './catalogue.js';

export interface RunDeps {
  store: Store;
  /** The client actions use for a cluster (the action token when one is configured). */
  client(cluster: string): ProxmoxClient | undefined;
  /**
   * The token id (`user@realm!name`) that client sends, when known: a task found after a crash must
   * be one this token started, not an operator's start of the same guest at the same moment.
   */
  tokenId?(cluster: string): string | undefined;
  /** Reads the guest back after its task, through the sync's diff-and-write path. */
  refresh(cluster: string, vmid: number, why: { snapshots: boolean }): Promise<void>;
  log: Logger;
  now: () => number;
  /** How long to wait for a task before leaving it to the reconciler (default 15 minutes). */
  taskTimeoutMs?: number;
  /** How long a crash's unrecorded POST is looked for in /cluster/tasks before deciding. */
  findTaskForMs?: number;
  signal?: AbortSignal;
}

const TASK_LOG_LINES = 20;

/** Runs (or resumes) the action; answers its row at the end, or undefined when it is not ours to run. */
export async function runAction(deps: RunDeps, id: string): Promise<ActionRow | undefined> {
  const row = begin(deps, id);
  if (!row) return getAction(deps.store, id);
  const kind = isActionKind(row.kind) ? CATALOGUE[row.kind] : undefined;
  const client = deps.client(row.cluster);
  if (!kind || !client) {
    const reason = !kind
      ? `unknown action kind "${row.kind}" (written by a newer version?)`
      : `cluster ${row.cluster} is no longer configured`;
    return finishAction(deps.store, id, { state: 'failed', reason }, deps.now());
  }
  const upid = row.upid ?? (await send(deps, client, kind, row));
  if (typeof upid !== 'string') return upid;
  const outcome = await wait(deps, client, kind, row, upid);
  if (!outcome) return getAction(deps.store, id); // still running: the reconciler resumes it
  if ('unreachable' in outcome)
    return finishAction(deps.store, id, { state: 'failed', reason: outcome.unreachable }, deps.now());
  return conclude(deps, client, row, kind, outcome);
}

/** queued → running (unless expired first); a running row is resumed as it is. */
function begin(deps: RunDeps, id: string): ActionRow | undefined {
  const row = getAction(deps.store, id);
  if (!row) return undefined;
  if (row.state === 'running') return row;
  if (row.state !== 'queued') return undefined;
  const now = deps.now();
  if (row.expiresAt <= now) {
    expireDue(deps.store, now);
    return undefined;
  }
  return markRunning(deps.store, id, now);
}

const target = (row: ActionRow): ActionTarget => ({
  cluster: row.cluster,
  vmid: row.vmid,
  type: row.guestType,
  node: row.node,
});

/**
 * Sends the request and stores its UPID. A row marked as posting without a UPID (the process died
 * between the two) is looked for in /cluster/tasks first; only a kind that is harmless twice is
 * sent again when no task is found.
 */
async function send(
  deps: RunDeps,
  client: ProxmoxClient,
  kind: ActionKind,
  row: ActionRow,
): Promise<string | ActionRow | undefined> {
  if (row.postedAt !== null) {
    const found = await findTask(deps, client, kind, row);
    if (found) return recordUpid(deps.store, row.id, found.upid, deps.now()) ? found.upid : undefined;
    if (!kind.resendable)
      return finishAction(
        deps.store,
        row.id,
        {
          state: 'failed',
          reason: `the daemon stopped between sending ${kind.name} and recording its task, and Proxmox lists no such task for ${row.vmid}: it may not have run. Check the guest and ask again if needed (${kind.name} is never sent twice)`,
        },
        deps.now(),
      );
  }
  markPosting(deps.store, row.id, deps.now());
  const request = kind.request(target(row), JSON.parse(row.params) as Record<string, unknown>);
  let answer: unknown;
  try {
    answer =
      request.method === 'DELETE'
        ? await client.delete(request.path, request.params)
        : await client.post(request.path, request.params);
  } catch (err) {
    return refused(deps, kind, row, err);
  }
  if (typeof answer !== 'string' || !answer.startsWith('UPID:'))
    return finishAction(
      deps.store,
      row.id,
      { state: 'failed', reason: `Proxmox answered ${JSON.stringify(answer)?.slice(0, 200)} instead of a task id` },
      deps.now(),
    );
  recordUpid(deps.store, row.id, answer, deps.now());
  return answer;
}

/** Proxmox refused the request itself (no task): its words are the reason. */
function refused(deps: RunDeps, kind: ActionKind, row: ActionRow, err: unknown): ActionRow | undefined {
  const reason =
    err instanceof ProxmoxApiError
      ? `Proxmox refused ${kind.name}: ${err.status ? `${err.status} ` : ''}${err.reason || err.message}${
          err.errors
            ? ` (${Object.entries(err.errors)
                .map(([k, v]) => `${k}: ${v}`)
                .join('; ')})`
            : ''
        }`
      : `${kind.name} could not be sent: ${err instanceof Error ? err.message : String(err)}`;
  deps.log.warn({ action: row.id, kind: kind.name, vmid: row.vmid }, reason);
  return finishAction(deps.store, row.id, { state: 'failed', reason }, deps.now());
}

/** The task a crashed send started, if Proxmox lists one: same type, guest, token user, started after the send. */
async function findTask(
  deps: RunDeps,
  client: ProxmoxClient,
  kind: ActionKind,
  row: ActionRow,
): Promise<Task | undefined> {
  const types = new Set(kind.taskTypes(row.guestType));
  const after = Math.floor((row.postedAt ?? row.createdAt) / 1000) - 2;
  const until = deps.now() + (deps.findTaskForMs ?? 15_000);
  for (;;) {
    const tasks = await client.clusterTasks().catch(() => [] as Task[]);
    const token = deps.tokenId?.(row.cluster);
    const ours = (t: Task): boolean => token === undefined || `${t.user}${t.tokenid ? `!${t.tokenid}` : ''}` === token;
    const found = tasks.find((t) => types.has(t.type) && t.id === String(row.vmid) && t.starttime >= after && ours(t));
    if (found || deps.now() >= until) return found;
    await new Promise((r) => setTimeout(r, 1_000)); // /cluster/tasks lags the nodes by a few seconds
  }
}

/**
 * Waits for the task; undefined when it still runs at the deadline (left to the reconciler), and
 * the reason when its node answered nothing but 595 until then.
 */
async function wait(
  deps: RunDeps,
  client: ProxmoxClient,
  kind: ActionKind,
  row: ActionRow,
  upid: string,
): Promise<TaskResult | { unreachable: string } | undefined> {
  try {
    return await client.waitForTask(upid, {
      timeoutMs: deps.taskTimeoutMs ?? 900_000,
      intervalMs: 100,
      maxIntervalMs: 1_000,
      signal: deps.signal,
    });
  } catch (err) {
    if (deps.signal?.aborted) return undefined;
    if (err instanceof TaskTimeoutError) return nodeGone(client, kind, row, upid);
    // Proxmox refusing the task's status for good (no such task, a permission gone) would otherwise
    // leave the row running, resumed by the reconciler every 30 s without end.
    if (err instanceof ProxmoxApiError && !err.transient && err.kind !== 'node_unreachable')
      return {
        unreachable: `the ${kind.name} task's status could not be read (Proxmox: ${err.status ? `${err.status} ` : ''}${err.reason || err.message}); check task ${upid} in Proxmox before asking again`,
      };
    deps.log.warn({ action: row.id, kind: kind.name, upid, err: String(err) }, 'waiting for the task failed');
    return undefined;
  }
}

/**
 * waitForTask polls through a node's 595s (a node can blink mid-task); once the wait is over and
 * the node still does not answer, the action ends failed with Proxmox's words, or it would stay
 * `running` and be resumed by the reconciler for as long as the node is down.
 */
async function nodeGone(
  client: ProxmoxClient,
  kind: ActionKind,
  row: ActionRow,
  upid: string,
): Promise<{ unreachable: string } | undefined> {
  try {
    await client.taskStatus(upid);
    return undefined;
  } catch (err) {
    if (!(err instanceof ProxmoxApiError && err.kind === 'node_unreachable')) return undefined;
    return {
      unreachable: `node ${row.node} stopped answering while the ${kind.name} task ran (Proxmox: ${err.status} ${err.reason}); the task may have finished there: check the guest before asking again`,
    };
  }
}

async function conclude(
  deps: RunDeps,
  client: ProxmoxClient,
  row: ActionRow,
  kind: ActionKind,
  result: TaskResult,
): Promise<ActionRow | undefined> {
  const log = await client
    .taskLog(result.upid, 0, 500)
    .then((l) => l.lines.slice(-TASK_LOG_LINES).map((line) => line.t))
    .catch(() => undefined);
  const outcome: Outcome = result.ok
    ? { state: 'succeeded', exitStatus: result.exitstatus }
    : kind.alreadyDone?.test(result.exitstatus)
      ? {
          state: 'succeeded',
          exitStatus: result.exitstatus,
          reason: `nothing to do: Proxmox says "${result.exitstatus}" (the guest already was ${kind.outcome})`,
        }
      : { state: 'failed', exitStatus: result.exitstatus, reason: `Proxmox: ${result.exitstatus}` };
  outcome.taskLog = log;
  try {
    await deps.refresh(row.cluster, row.vmid, { snapshots: kind.group === 'snapshot' });
  } catch (err) {
    // The next sync cycle reads it anyway; the action's outcome does not depend on this read.
    deps.log.warn(
      { action: row.id, cluster: row.cluster, vmid: row.vmid, err: String(err) },
      'refreshing the guest after its action failed',
    );
  }
  return finishAction(deps.store, row.id, outcome, deps.now());
}
