/**
 * Faults on write actions, for tests of an action queue: the next N write tasks fail with a reason
 * of the test's choosing, tasks hang while a `hang` is set, or the next N write requests are
 * refused with an HTTP error before any task exists. Counts go down as faults fire, so reading the
 * faults back says what is left.
 */
import { PveHttpError, type InjectedTaskFault, type SimTask } from './state.js';

/** Which tasks a fault applies to; an empty match is every write task. */
export interface TaskMatch {
  /** The task type of the UPID: `qmstart`, `vzshutdown`, `qmsnapshot`… */
  type?: string;
  vmid?: number;
}

export interface FailFault extends TaskMatch {
  /** How many matching tasks fail (default 1). */
  count?: number;
  /** The task's exit status, logged as `TASK ERROR: <message>`. */
  message: string;
}

export type HangFault = TaskMatch;

export interface RejectFault {
  /** How many matching write requests are refused (default 1). */
  count?: number;
  vmid?: number;
  /** A route pattern, as the counters name it: `POST /nodes/{node}/qemu/{vmid}/status/start`. */
  endpoint?: string;
  /** HTTP status (default 500; 595 for an unreachable node). */
  status?: number;
  /** Proxmox's message, e.g. `VM 101 is locked (backup)`. */
  message?: string;
}

export interface TaskFaults {
  fail?: FailFault;
  hang?: HangFault;
  reject?: RejectFault;
}

const invalid = (field: string, fix: string): PveHttpError =>
  new PveHttpError(400, `task faults: ${field} ${fix}; see docs/simulator.md`);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalInteger(obj: Record<string, unknown>, key: string, field: string, min: number, max: number) {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(`${field}.${key}`, `must be a whole number from ${min} to ${max}`);
  return value;
}

function optionalString(obj: Record<string, unknown>, key: string, field: string): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !value.trim()) throw invalid(`${field}.${key}`, 'must be a non-empty string');
  return value;
}

function section(body: Record<string, unknown>, field: string, keys: string[]): Record<string, unknown> | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw invalid(field, 'must be an object');
  const unknown = Object.keys(value).find((k) => !keys.includes(k));
  if (unknown) throw invalid(`${field}.${unknown}`, `is not a field; use ${keys.join(', ')}`);
  return value;
}

function match(obj: Record<string, unknown>, field: string): TaskMatch {
  const type = optionalString(obj, 'type', field);
  const vmid = optionalInteger(obj, 'vmid', field, 100, 999_999_999);
  return { ...(type !== undefined && { type }), ...(vmid !== undefined && { vmid }) };
}

/** Checks a control-API body and fills the defaults (count 1, status 500). */
export function parseTaskFaults(body: unknown): TaskFaults {
  if (!isRecord(body)) throw invalid('body', 'must be a JSON object with fail, hang and/or reject');
  const unknown = Object.keys(body).find((k) => !['fail', 'hang', 'reject'].includes(k));
  if (unknown) throw invalid(unknown, 'is not a fault; use fail, hang or reject');
  const faults: TaskFaults = {};
  const fail = section(body, 'fail', ['type', 'vmid', 'count', 'message']);
  if (fail) {
    const message = optionalString(fail, 'message', 'fail');
    if (message === undefined) throw invalid('fail.message', 'is required (the task exit status)');
    faults.fail = { ...match(fail, 'fail'), count: optionalInteger(fail, 'count', 'fail', 1, 1e9) ?? 1, message };
  }
  const hang = section(body, 'hang', ['type', 'vmid']);
  if (hang) faults.hang = match(hang, 'hang');
  const reject = section(body, 'reject', ['vmid', 'endpoint', 'count', 'status', 'message']);
  if (reject) {
    const vmid = optionalInteger(reject, 'vmid', 'reject', 100, 999_999_999);
    const endpoint = optionalString(reject, 'endpoint', 'reject');
    faults.reject = {
      ...(vmid !== undefined && { vmid }),
      ...(endpoint !== undefined && { endpoint }),
      count: optionalInteger(reject, 'count', 'reject', 1, 1e9) ?? 1,
      status: optionalInteger(reject, 'status', 'reject', 400, 599) ?? 500,
      message: optionalString(reject, 'message', 'reject') ?? 'simulated fault (injected through /_sim/task-faults)',
    };
  }
  return faults;
}

const matches = (m: TaskMatch, task: SimTask): boolean =>
  (m.type === undefined || m.type === task.type) && (m.vmid === undefined || String(m.vmid) === task.id);

/** The faults in force, spent as they fire. */
export class TaskFaultState {
  private faults: TaskFaults = {};

  get(): TaskFaults {
    return structuredClone(this.faults);
  }

  set(faults: TaskFaults): void {
    this.faults = structuredClone(faults);
  }

  get hanging(): boolean {
    return this.faults.hang !== undefined;
  }

  /** What happens to a write task that has just started; a `fail` it matches is spent. */
  forTask(task: SimTask): InjectedTaskFault | undefined {
    const { fail, hang } = this.faults;
    const out: InjectedTaskFault = {};
    if (fail && matches(fail, task)) {
      out.fail = fail.message;
      fail.count = (fail.count ?? 1) - 1;
      if (fail.count <= 0) delete this.faults.fail;
    }
    if (hang && matches(hang, task)) out.hang = true;
    return out.fail === undefined && !out.hang ? undefined : out;
  }

  /** The error a write request on `endpoint` answers instead of running, if a `reject` matches it. */
  rejection(endpoint: string, vmid: number | undefined): PveHttpError | undefined {
    const reject = this.faults.reject;
    if (!reject) return undefined;
    if (reject.endpoint !== undefined && reject.endpoint !== endpoint) return undefined;
    if (reject.vmid !== undefined && reject.vmid !== vmid) return undefined;
    reject.count = (reject.count ?? 1) - 1;
    if (reject.count <= 0) delete this.faults.reject;
    return new PveHttpError(reject.status ?? 500, reject.message ?? 'simulated fault');
  }
}
