/**
 * Address classes the daemon decides on: which hosts never leave this machine (a token is then
 * optional, plain http is fine), and which bind addresses listen on every interface.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** `[::1]` (as in a URL or Host header) → `::1`; anything else as it is. */
const unbracketed = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

/**
 * The address a literal names, with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) seen as the IPv4 it
 * is; undefined for names. Only strict literals count (node's isIP): `127.1` or `0x7f.1` would
 * reach the resolver as names, so they are not treated as addresses here either.
 */
function ipLiteral(host: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const bare = unbracketed(host);
  return isIP(bare) ? ipaddr.process(bare) : undefined;
}

/** Hosts that never leave this machine: `localhost`, any of 127.0.0.0/8, ::1 (bare or in brackets, or IPv4-mapped). */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  return ipLiteral(host)?.range() === 'loopback';
}

/** Bind addresses that listen on every interface: `0.0.0.0`, `::` (and its long forms). */
export function isWildcardHost(host: string): boolean {
  // Not range() === 'unspecified': for IPv4 that is all of 0.0.0.0/8, which cannot be bound.
  return (
    ipLiteral(host)
      ?.toByteArray()
      .every((byte) => byte === 0) ?? false
  );
}

/** A host as it appears in a URL or Host header: IPv6 literals in brackets. */
export const urlHost = (host: string): string => (isIP(host) === 6 ? `[${host}]` : host);
