/** What the process says of itself, in a module that imports nothing so that `--version` loads nothing else. */
import { readFileSync } from 'node:fs';

/** The exit code after an exception nothing caught (EX_SOFTWARE): a supervisor restarts the daemon. */
export const EXIT_FATAL = 70;

export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
