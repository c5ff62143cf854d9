/**
 * What the command line prints when a command throws: one sentence naming what to change for the
 * mistakes and failures a user can fix, with the exit status README promises (2 for the command
 * line and configuration, 1 for files and the disk); a stack only for what is a bug.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from './config-error.js';
import { RedisError } from './queue/redis-error.js';
import { SimulatorPortError } from './sim/errors.js';
import { StoreError } from './store/errors.js';

/** A mistake in the command line: one sentence, then where the help is. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface FailureContext {
  /** The command that ran (`sync`, `action`…), or what was typed in its place. */
  command: string;
  /** How to see the help that applies: `proxmox-inventory action --help`. */
  help: string;
  /** The inventory file the command's configuration names; undefined when it cannot be told. */
  inventoryFile: () => string | undefined;
  /** Whether the command runs as root, whom permissions do not stop: then a refusal has another cause. */
  root?: boolean;
}

export interface FailureReport {
  exitCode: number;
  text: string;
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
  EFBIG: { reason: "larger than this process's file-size limit (ulimit -f)", fix: () => 'raise the limit' },
  EDQUOT: { reason: 'disk quota exceeded', fix: () => 'free some space' },
  ENOTDIR: { reason: 'a part of the path is a file', fix: (where) => `move it, or choose another directory ${where}` },
  EEXIST: { reason: 'a file is in the way', fix: (where) => `move it, or choose another directory ${where}` },
  ENOENT: { reason: 'a directory on the way is missing', fix: (where) => `create it, or choose another ${where}` },
};

/**
 * mkdir answering ENOENT although the directory above exists: a file system that takes no new
 * directories (/proc, /sys), not a missing parent, which would send the user looking for one.
 */
const NO_NEW_DIRECTORIES = {
  reason: 'this file system takes no new directories, like /proc and /sys',
  fix: (where: string) => `choose a directory on a writable disk ${where}`,
};

/**
 * EACCES or EPERM met by root, whom file modes do not stop: the file system (/sys), an immutable
 * file (chattr +i) or a security module refuses it, so "let this user write there" would not help.
 */
const REFUSED_TO_ROOT = {
  reason: 'refused even to root: a special file system such as /sys, an immutable file, or a security module',
  fix: (where: string) => `choose another directory ${where}`,
};

function isNoNewDirectories(err: NodeJS.ErrnoException): boolean {
  if (err.syscall !== 'mkdir' || err.code !== 'ENOENT' || !err.path) return false;
  try {
    return statSync(dirname(err.path), { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/** The setting that chooses where a command writes, as the end of "choose another directory …". */
function whereChosen(command: string): string {
  if (command === 'sim') return 'with --write-env FILE';
  if (command === 'demo') return 'by running it from another directory (it writes ./data/demo)';
  return 'with DATA_DIR (dataDir in a config file)';
}

/**
 * A file-system failure as one sentence: what could not be done to which path, why, and the
 * setting that chooses the path (DATA_DIR for the inventory, --write-env for the simulator's file).
 */
function describeFsFailure(err: NodeJS.ErrnoException, command: string, root: boolean): string | undefined {
  const failure = fsFailure(err, root);
  if (!failure || !err.path) return undefined;
  const doing = DOING[err.syscall ?? ''] ?? 'use';
  return `${command}: cannot ${doing} ${err.path} (${err.code}: ${failure.reason}); ${failure.fix(whereChosen(command))}`;
}

function fsFailure(err: NodeJS.ErrnoException, root: boolean): (typeof FS_FAILURES)[string] | undefined {
  if (isNoNewDirectories(err)) return NO_NEW_DIRECTORIES;
  if (root && (err.code === 'EACCES' || err.code === 'EPERM')) return REFUSED_TO_ROOT;
  return err.code ? FS_FAILURES[err.code] : undefined;
}

/**
 * SQLite's answer when the file system under the inventory is full (SQLITE_FULL) or fails a read
 * or write (SQLITE_IOERR_*: a full tmpfs says this too, when the -shm file cannot grow). SQLite
 * names no file, so the path is the one the configuration gives.
 */
function describeDiskFailure(err: unknown, context: FailureContext): string | undefined {
  if (!(err instanceof Database.SqliteError)) return undefined;
  const { code } = err;
  if (code !== 'SQLITE_FULL' && !code.startsWith('SQLITE_IOERR')) return undefined;
  const file = context.inventoryFile() ?? 'the inventory in DATA_DIR';
  const elsewhere =
    context.command === 'demo'
      ? 'or run it from a directory on another disk (it writes ./data/demo)'
      : 'or point DATA_DIR (dataDir in a config file) at a directory on another disk';
  return code === 'SQLITE_FULL'
    ? `${context.command}: cannot write ${file}: the disk holding it is full (${code}); free space there, ${elsewhere}`
    : `${context.command}: cannot read or write ${file} (${code}: ${err.message}); the disk holding it is full or failing: free space there or check the disk, ${elsewhere}`;
}

export function describeFailure(err: unknown, context: FailureContext): FailureReport {
  if (err instanceof ConfigError || err instanceof SimulatorPortError) return { exitCode: 2, text: err.message };
  if (err instanceof StoreError || err instanceof RedisError) return { exitCode: 1, text: err.message };
  if (err instanceof UsageError) return { exitCode: 2, text: `${err.message}\nsee ${context.help}` };
  const failure =
    describeFsFailure(err as NodeJS.ErrnoException, context.command, context.root ?? false) ??
    describeDiskFailure(err, context);
  if (failure) return { exitCode: 1, text: failure };
  // Anything else is a bug: the stack is what its report needs.
  return { exitCode: 1, text: `error: ${(err as Error).stack ?? String(err)}` };
}
