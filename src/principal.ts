/** Who asks from this machine, as stdio and CLI actions and webhook changes record it. */
import { userInfo } from 'node:os';

/** The local user (`local:alice`), or its uid when the user database has no entry for it. */
export function localPrincipal(): string {
  try {
    return `local:${userInfo().username}`;
  } catch {
    return `local:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}
