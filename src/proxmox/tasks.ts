import { ProxmoxApiError } from './errors.js';
import { parseUpid, taskOutcome, type TaskOutcome } from './upid.js';
import type { TaskStatus } from './types.js';

export interface WaitForTaskOptions {
  /** Give up after this long (default 10 minutes); the task itself keeps running on Proxmox. */
  timeoutMs?: number;
  /** First poll delay; later polls back off ×1.5 up to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
  signal?: AbortSignal;
}

export interface TaskResult {
  upid: string;
  outcome: TaskOutcome;
  /** `OK`, `WARNINGS: n`, or Proxmox's error text. */
  exitstatus: string;
  ok: boolean;
}

export class TaskTimeoutError extends Error {
  constructor(
    readonly upid: string,
    readonly waitedMs: number,
  ) {
    super(
      `task ${upid} still running after ${Math.round(waitedMs / 1000)} s; it continues on Proxmox, poll it again later`,
    );
    this.name = 'TaskTimeoutError';
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Polls `/nodes/{node}/tasks/{upid}/status` with backoff until the task stops. */
export async function waitForTask(
  taskStatus: (upid: string) => Promise<TaskStatus>,
  upid: string,
  { timeoutMs = 600_000, intervalMs = 200, maxIntervalMs = 2_000, signal }: WaitForTaskOptions = {},
): Promise<TaskResult> {
  parseUpid(upid); // a malformed UPID is a caller bug: fail before polling
  const started = Date.now();
  let delay = intervalMs;
  for (;;) {
    signal?.throwIfAborted();
    let status: TaskStatus | undefined;
    try {
      status = await taskStatus(upid);
    } catch (err) {
      // A node briefly unreachable while a task runs (e.g. during migration) is not the task's failure.
      if (!(err instanceof ProxmoxApiError && (err.transient || err.kind === 'node_unreachable'))) throw err;
    }
    if (status?.status === 'stopped') {
      const exitstatus = status.exitstatus ?? 'unexpected status';
      const outcome = taskOutcome(exitstatus);
      return { upid, outcome, exitstatus, ok: outcome !== 'error' };
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new TaskTimeoutError(upid, waited);
    await sleep(Math.min(delay, timeoutMs - waited), signal);
    delay = Math.min(delay * 1.5, maxIntervalMs);
  }
}
