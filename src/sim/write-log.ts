/**
 * Every write request the simulator received, accepted or refused, with the real ids in its path:
 * what fault tests count to prove an action was POSTed exactly once. The counters count by route
 * pattern, which cannot tell guest 101's start from guest 102's.
 */

export interface WriteRecord {
  /** When the request arrived, ms since the epoch. */
  time: number;
  method: string;
  /** Under /api2/json, with real ids: `/nodes/pve1/qemu/101/status/start`. */
  path: string;
  /** Query and body parameters; secret-looking ones (passwords, tokens) masked. */
  params: Record<string, string | string[]>;
  /** The token id (`root@pam!inventory`), once authenticated. */
  user?: string;
  /** The HTTP status answered; absent while the request is still unanswered (a `hang` fault). */
  status?: number;
  /** The task the request started. */
  upid?: string;
  /** The status-line reason of a refused request. */
  error?: string;
}

/** Beyond this the oldest records go, so a long demo run stays small. */
const MAX_RECORDS = 100_000;
const SECRET_PARAM = /pass|secret|token/i;
const MASK = '**********';

export class WriteLog {
  private records: WriteRecord[] = [];

  begin(method: string, path: string): WriteRecord {
    const record: WriteRecord = { time: Date.now(), method, path, params: {} };
    this.records.push(record);
    if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);
    return record;
  }

  list(): WriteRecord[] {
    return this.records.map((r) => ({ ...r, params: { ...r.params } }));
  }

  /** `"POST /nodes/pve1/qemu/101/status/start": 1`, refused requests included. */
  byRequest(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.records) {
      const key = `${r.method} ${r.path}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  reset(): void {
    this.records = [];
  }
}

export function maskSecrets(params: Record<string, string | string[]>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, SECRET_PARAM.test(k) ? MASK : v]));
}
