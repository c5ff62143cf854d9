/**
 * One `serve` per data directory. Two daemons on one inventory would both poll Proxmox and each
 * find the other's writes (the `last_run_id` fence) and drop its own cycle, forever. `serve`
 * creates `<dataDir>/serve.lock` with O_EXCL, holding its pid, host, boot id and start time, and
 * removes it when it stops. A second `serve` finds the file and is refused, with the holder named.
 *
 * A lock left by a daemon that did not stop cleanly (SIGKILL, a power cut) is taken over when it
 * is certainly stale: the holder ran on this host and its pid is not alive, or is this process's
 * own (a container restarted with the same hostname and pid), or the host has rebooted since
 * (another boot id). A holder on another host cannot be checked from here: that lock is never
 * taken over, and the message says how to remove it. Readers (`mcp`, `sync --once`, `snapshot`)
 * take no lock.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StoreError } from './db.js';
import { createPrivateDir } from './files.js';

export const LOCK_FILE = 'serve.lock';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder started. */
  startedAt: string;
  /** Linux's /proc/sys/kernel/random/boot_id, when there is one: a lock from an earlier boot is stale. */
  bootId?: string;
}

export interface DataDirLock {
  path: string;
  holder: LockHolder;
  /** The stale lock this one replaced, and why it was stale. */
  tookOver?: { holder: LockHolder; reason: string };
  /** Removes the lock file, if it is still this process's. */
  release(): void;
}

export interface LockOptions {
  pid?: number;
  host?: string;
  bootId?: string | null;
  now?: () => number;
  /** Whether a process with this pid runs on this host. */
  isAlive?: (pid: number) => boolean;
  /** How long an empty or partly written lock file is given to be completed by its creator. */
  settleMs?: number;
}

/** Another `serve` holds the data directory, or its lock file cannot be read. */
export class DataDirLockedError extends StoreError {
  constructor(
    readonly lockPath: string,
    readonly holder: LockHolder | undefined,
    message: string,
  ) {
    super(message);
  }
}

function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, only not ours to signal
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (
      typeof v.pid === 'number' &&
      Number.isInteger(v.pid) &&
      v.pid > 0 &&
      typeof v.host === 'string' &&
      typeof v.startedAt === 'string'
    ) {
      return {
        pid: v.pid,
        host: v.host,
        startedAt: v.startedAt,
        ...(typeof v.bootId === 'string' ? { bootId: v.bootId } : {}),
      };
    }
  } catch {
    // not (yet) JSON
  }
  return undefined;
}

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** The holder in the lock file; a file its creator is still writing is read again until `settleMs` has passed. */
function readHolder(path: string, settleMs: number): { holder?: LockHolder; text?: string; missing?: true } {
  const deadline = Date.now() + settleMs;
  for (;;) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
      throw err;
    }
    const holder = parseHolder(text);
    if (holder || Date.now() >= deadline) return { holder, text };
    sleepSync(20);
  }
}

const holderText = (h: LockHolder): string => `pid ${h.pid} on host ${h.host}, since ${h.startedAt}`;

/**
 * Takes `<dataDir>/serve.lock`, taking over a certainly stale one; throws `DataDirLockedError`
 * naming the holder when another `serve` has it.
 */
export function acquireDataDirLock(dataDir: string, options: LockOptions = {}): DataDirLock {
  const { pid = process.pid, host = hostname(), now = Date.now, isAlive = processAlive, settleMs = 1_000 } = options;
  const bootId = options.bootId === undefined ? readBootId() : options.bootId;
  const path = join(dataDir, LOCK_FILE);
  const me: LockHolder = { pid, host, startedAt: new Date(now()).toISOString(), ...(bootId ? { bootId } : {}) };
  const text = `${JSON.stringify({ ...me, command: 'serve' })}\n`;
  createPrivateDir(dataDir);

  const staleBecause = (h: LockHolder): string | undefined => {
    if (h.host !== host) return undefined; // another host's pids mean nothing here
    if (h.bootId && bootId && h.bootId !== bootId) return 'the host has restarted since it was taken';
    if (h.pid === pid) return `its pid ${pid} is this process's own (restarted with the same pid)`;
    if (!isAlive(h.pid)) return `process ${h.pid} is no longer running`;
    return undefined;
  };

  let tookOver: DataDirLock['tookOver'];
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, text);
      } catch (err) {
        // A full disk leaves the file empty: removed, or it would name no holder and refuse every
        // later start until deleted by hand. The path goes with the error for the one-line report.
        closeSync(fd);
        unlinkSync(path);
        throw Object.assign(err as NodeJS.ErrnoException, { path });
      }
      closeSync(fd);
      return {
        path,
        holder: me,
        ...(tookOver ? { tookOver } : {}),
        release() {
          // Only our own file: had someone judged us gone and taken over, the lock is theirs now.
          try {
            if (readFileSync(path, 'utf8') === text) unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const found = readHolder(path, settleMs);
    if (found.missing) continue; // removed meanwhile (its holder stopped): try again
    if (!found.holder) {
      throw new DataDirLockedError(
        path,
        undefined,
        `${path} exists but does not name its holder (${JSON.stringify((found.text ?? '').slice(0, 80))}); ` +
          'if no `proxmox-inventory serve` runs on this data directory, delete the file and start again',
      );
    }
    const holder = found.holder;
    const reason = attempt < 3 ? staleBecause(holder) : undefined;
    if (!reason) {
      const elsewhere = holder.host !== host;
      throw new DataDirLockedError(
        path,
        holder,
        `another proxmox-inventory serve uses ${dataDir}: ${holderText(holder)} (lock file ${path}). ` +
          "Two daemons on one inventory would both poll Proxmox and discard each other's cycles. " +
          (elsewhere
            ? `It runs on another host than this one (${host}), so whether it still runs cannot be checked from here: stop it, or give this daemon another DATA_DIR; if it is gone (a container recreated under a new hostname), delete the lock file.`
            : `Stop it first (kill ${holder.pid}), or give this daemon another DATA_DIR; \`sync --once\`, \`mcp\` and \`snapshot\` work beside it.`),
      );
    }
    // Move the stale file aside, then check it is still the one judged stale: another starter
    // may have taken over first and put its own lock there, which goes back if so.
    const aside = `${path}.stale-${pid}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (readFileSync(aside, 'utf8') !== found.text) {
      try {
        linkSync(aside, path);
      } catch {
        // someone else's lock is in place already
      }
      unlinkSync(aside);
      continue;
    }
    unlinkSync(aside);
    tookOver = { holder, reason };
  }
}
