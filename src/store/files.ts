/**
 * The inventory's files on disk. They hold what Proxmox knows about every guest (IP and MAC
 * addresses, descriptions, tags), so what this process creates is for its own user only: DATA_DIR
 * 0700, the database 0600. SQLite gives the -wal and -shm files it creates the database file's
 * mode (exactly, whatever the umask), so those follow. Modes an operator chose for files that
 * already exist are left alone (a group may be meant to read them, see README "Store files"):
 * `findLooseModes` lists them for a warning instead.
 */
import { closeSync, constants, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StoreError } from './errors.js';

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/**
 * Creates `dir` (and its missing parents) as 0700; a directory that exists keeps its mode. One
 * level at a time rather than `recursive: true`: Node's recursive mkdir retries for ever when the
 * file system answers ENOENT under a directory that exists, as /proc and /sys do, and the command
 * would hang with no output instead of failing on the first level.
 */
export function createPrivateDir(dir: string): void {
  for (const level of missingLevels(resolve(dir))) {
    try {
      mkdirSync(level, { mode: PRIVATE_DIR });
    } catch (err) {
      // Another process on the same DATA_DIR may have created it since it was found missing.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(level).isDirectory()) continue;
      throw err;
    }
    // The mode given to mkdir passes through the umask; a umask that removes owner bits is undone too.
    chmodOwnDir(level);
  }
}

/** The directories of `target` that do not exist yet, outermost first. */
function missingLevels(target: string): string[] {
  const missing: string[] = [];
  for (let d = target; !exists(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  return missing;
}

/** Whether something is at `path`; a path below a file is nothing here, and its mkdir says ENOTDIR. */
function exists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

function chmodOwnDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fchmodSync(fd, PRIVATE_DIR);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the database file empty and 0600 unless it exists (an empty file is a valid, empty
 * SQLite database). SQLite would create it 0644 minus the umask, and its -wal and -shm after it.
 */
export function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, PRIVATE_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fchmodSync(fd, PRIVATE_FILE);
  } finally {
    closeSync(fd);
  }
}

export interface LooseMode {
  path: string;
  /** Octal, as `ls -l` readers and chmod take it: `0755`. */
  mode: string;
  /** One sentence: what the mode allows and the chmod that would close it. */
  message: string;
}

/**
 * DATA_DIR and the database, where users other than the owner have any permission. The -wal and
 * -shm files are not looked at: SQLite creates them with the database's mode.
 */
export function findLooseModes(dbPath: string): LooseMode[] {
  const candidates = [
    { path: dirname(dbPath), wanted: PRIVATE_DIR, what: 'the inventory directory' },
    { path: dbPath, wanted: PRIVATE_FILE, what: 'the inventory database' },
  ];
  const loose: LooseMode[] = [];
  for (const { path, wanted, what } of candidates) {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat || (stat.mode & 0o077) === 0) continue;
    const mode = `0${(stat.mode & 0o777).toString(8)}`;
    const companions = path === dbPath ? '; its -wal and -shm files take its mode' : '';
    loose.push({
      path,
      mode,
      message: `${path} (${what}: guests' IP and MAC addresses, descriptions, tags${companions}) is mode ${mode}, open to users other than its owner; unless a group is meant to read the inventory, run chmod ${wanted.toString(8)} ${shellQuote(path)}`,
    });
  }
  return loose;
}

const shellQuote = (s: string): string => (/^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * Whether the inventory file exists. A directory this user may not enter says so instead of
 * looking empty (`existsSync` answers false, and the user would be told to start the daemon).
 */
export function inventoryExists(dbPath: string): boolean {
  try {
    return statSync(dbPath, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    throw new StoreError(
      `${dirname(dbPath)} may not be entered by this user (uid ${process.getuid?.() ?? '?'}), so the inventory in it cannot be read; give this user access (README "Store files": a group shared with the daemon's user) or run as the daemon's user`,
    );
  }
}
