/**
 * Proxmox task ids (UPIDs), as pve-common src/PVE/UPID.pm writes and reads them:
 * `UPID:<node>:<pid 8 hex>:<pstart 8-9 hex>:<starttime 8 hex>:<type>:<id>:<user>:`
 * with uppercase hex, an id that may be empty, and a user that may be an API token.
 */
export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  /** `user@realm` or, for API tokens, `user@realm!tokenid`. */
  user: string;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export function parseUpid(text: string): Upid {
  const m = UPID_RE.exec(text);
  if (!m) throw new Error(`not a Proxmox task id (UPID): ${JSON.stringify(text.slice(0, 120))}`);
  const [, node, pid, pstart, starttime, type, id, user] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    node,
    pid: parseInt(pid, 16),
    pstart: parseInt(pstart, 16),
    starttime: parseInt(starttime, 16),
    type,
    id,
    user,
  };
}

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

export function formatUpid(u: Upid): string {
  return `UPID:${u.node}:${hex8(u.pid)}:${hex8(u.pstart)}:${hex8(u.starttime)}:${u.type}:${u.id}:${u.user}:`;
}

/** The exit status Proxmox reports for a finished task, reduced to what callers branch on. */
export type TaskOutcome = 'ok' | 'warning' | 'error';

/** UPID.pm `status_is_error`: `OK` and `WARNINGS: n` are successes; anything else is the error text. */
export function taskOutcome(exitstatus: string): TaskOutcome {
  if (exitstatus === 'OK') return 'ok';
  if (/^WARNINGS: \d+$/.test(exitstatus)) return 'warning';
  return 'error';
}
