/** Addresses that never leave this machine: `localhost`, 127.0.0.1 and ::1 (bare or in URL brackets). */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host);
}
