/**
 * Where a webhook may be sent. A subscriber's URL must not turn the daemon into a way to reach
 * the network it sits in (Proxmox API, cloud metadata, the admin's router): every address outside
 * public unicast is refused unless an operator allowlist names it. The decision is made on the
 * address actually connected to, on every new connection, so a name that answers a public address
 * when checked and a private one later (DNS rebinding) is still refused.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';
import { isLoopbackHost } from '../net.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface AddressPolicy {
  /** The range that makes an address refused (`loopback`, `private`, `linkLocal`, …), or undefined when it may be used. */
  refusal(address: string): string | undefined;
  /** The allowlist as parsed, for the start-up log line. */
  readonly allowCidrs: readonly string[];
}

/** A target refused by the policy; `address` is the one the name resolved to, when it was one. */
export class WebhookTargetRefused extends Error {
  override readonly name = 'WebhookTargetRefused';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(
      `${describeTarget(host, address)} is ${rangeWords(range)} address, which webhooks may not reach; ${fix(address, range)}`,
    );
  }
}

/**
 * What to do about a refusal. An unspecified address (0.0.0.0, ::) names no receiver: on Linux a
 * connection to it reaches this host, so allowing it would open loopback to every subscription.
 */
function fix(address: string, range: string): string {
  if (range === 'unspecified') return "name the receiver's own address or host name instead.";
  return `if the receiver is yours, add ${address}/${address.includes(':') ? 128 : 32} to WEBHOOK_ALLOW_CIDRS.`;
}

/** ipaddr.js's range name as prose, with its article: "a link-local", "an unspecified", "a carrier-grade NAT". */
function rangeWords(range: string): string {
  const words =
    range === 'carrierGradeNat' ? 'carrier-grade NAT' : range.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  return `${/^([aeio]|un(?!i))/.test(words) ? 'an' : 'a'} ${words}`;
}

/** A webhook URL refused when it is subscribed (scheme, user info, form). */
export class WebhookUrlError extends Error {
  override readonly name = 'WebhookUrlError';
}

/**
 * The policy: anything ipaddr.js does not call `unicast` is refused (loopback, RFC 1918, link-local
 * with 169.254.169.254, CGNAT, 0.0.0.0/8, multicast, broadcast, reserved and documentation ranges,
 * fc00::/7, fe80::/10, NAT64, 6to4, Teredo), IPv6 forms embedding an IPv4 address are judged as
 * that address, and the allowlist's CIDR ranges are permitted whatever they cover.
 */
export function createAddressPolicy(allowCidrs: readonly string[] = []): AddressPolicy {
  const allowed = allowCidrs.map(parseAllowCidr);
  return {
    allowCidrs: allowed.map(([range, bits]) => `${range.toString()}/${bits}`),
    refusal(address: string): string | undefined {
      const parsed = canonicalAddress(address);
      if (!parsed) return 'unparsable';
      if (allowed.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits)))
        return undefined;
      const range = parsed.range();
      return range === 'unicast' ? undefined : range;
    },
  };
}

function parseAllowCidr(text: string): [Address, number] {
  const trimmed = text.trim();
  const [range, bits] = parseRange(trimmed);
  if (!range) {
    throw new Error(
      `WEBHOOK_ALLOW_CIDRS: '${trimmed}' is not an address or CIDR range; write ranges like 192.168.1.0/24 or fd00::/8, comma-separated.`,
    );
  }
  // Addresses are compared in their canonical form, so a range written as ::ffff:a.b.c.d/N is an IPv4 range.
  if (range.kind() === 'ipv6' && (range as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(range as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [range, bits];
}

function parseRange(text: string): [Address | undefined, number] {
  const [address = '', bits, ...rest] = text.split('/');
  if (!isIP(address) || rest.length > 0) return [undefined, 0];
  if (bits === undefined) return [ipaddr.parse(address), isIP(address) === 4 ? 32 : 128];
  try {
    return ipaddr.parseCIDR(text);
  } catch {
    return [undefined, 0];
  }
}

/**
 * The address as it will be connected to, with IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
 * (::a.b.c.d) IPv6 seen as the IPv4 address they carry. Only strict literals are read: forms like
 * `0x7f.1` are names to this function (the URL parser and the resolver turn them into addresses first).
 */
function canonicalAddress(text: string): Address | undefined {
  const bare = unbracket(text).replace(/%.*$/, '');
  if (!isIP(bare)) return undefined;
  const parsed = ipaddr.parse(bare);
  if (parsed.kind() !== 'ipv6') return parsed;
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  if (isEmbeddedV4(v6)) return ipaddr.fromByteArray(v6.toByteArray().slice(12));
  return v6;
}

/** ::a.b.c.d (deprecated IPv4-compatible), but not :: and ::1, which are IPv6's own. */
function isEmbeddedV4(address: Address): boolean {
  if (address.kind() !== 'ipv6') return false;
  const parts = (address as ipaddr.IPv6).parts;
  return parts.slice(0, 6).every((part) => part === 0) && (parts[6] !== 0 || parts[7]! > 1);
}

const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

function describeTarget(host: string, address: string): string {
  return unbracket(host) === address ? address : `${unbracket(host)} (${address})`;
}

export interface UrlCheckOptions {
  policy: AddressPolicy;
  /** Plain http to hosts other than this machine; off by default (the body and signature travel in clear). */
  allowHttp?: boolean;
}

/**
 * Checks a subscriber's URL when it is added: an absolute https URL (http to this machine, or with
 * the opt-in), no user name or password, any port. A literal address (or localhost) is judged by
 * the policy now; any other name by what it resolves to at each connection. Messages name the host only: a
 * webhook URL's path often carries a token of the receiver's.
 */
export function checkWebhookUrl(text: string, options: UrlCheckOptions): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WebhookUrlError(
      'The webhook URL is not an absolute URL; give one like https://hooks.example.com/proxmox.',
    );
  }
  checkScheme(url, options.allowHttp ?? false);
  if (url.username || url.password) {
    throw new WebhookUrlError(
      `The webhook URL for ${url.hostname} has a user name or password in it; remove it (receivers check the signature instead).`,
    );
  }
  // Only what is certain now: a literal address, or a localhost name (always loopback, never resolved).
  const host = unbracket(url.hostname);
  const address = isIP(host) ? host : isLocalhostName(host) ? LOCALHOST_ADDRESS : undefined;
  const range = address === undefined ? undefined : options.policy.refusal(address);
  if (range) throw new WebhookTargetRefused(url.hostname, address!, range);
  return url;
}

function checkScheme(url: URL, allowHttp: boolean): void {
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:') {
    throw new WebhookUrlError(`The webhook URL's scheme ${url.protocol} is not supported; use https://.`);
  }
  if (!allowHttp && !isLoopbackHost(url.hostname)) {
    throw new WebhookUrlError(
      `The webhook URL for ${url.hostname} uses plain http; use https, or set WEBHOOK_ALLOW_HTTP=true to send in clear.`,
    );
  }
}

/** Addresses a name has now; the default asks the system resolver, tests pass their own. */
export type Resolve = (hostname: string) => Promise<string[]>;

const systemResolve: Resolve = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

export interface WebhookAgentOptions {
  policy: AddressPolicy;
  resolve?: Resolve;
  /** Called for each refused connection (for a log line or a metric); the error names host, address and range. */
  onRefused?: (refused: WebhookTargetRefused) => void;
  connectTimeoutMs?: number;
  /** PEM CAs trusted besides the system's (a homelab CA signing the receiver's certificate). */
  extraCa?: readonly string[];
}

/**
 * The dispatcher webhooks are sent through. Its connector resolves the host itself, checks every
 * address it got, and connects to the checked address (never resolving again in between); one
 * refused address refuses the connection, since which one a retry would use is not ours to pick.
 * TLS still verifies the certificate against the host name.
 */
export function createWebhookAgent(options: WebhookAgentOptions): Agent {
  const resolve = options.resolve ?? systemResolve;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  // tls.connect's `ca` replaces the system's roots, so they are listed along with the extra ones.
  const ca = options.extraCa?.length ? [...rootCertificates, ...options.extraCa] : undefined;
  const base = buildConnector({ timeout: connectTimeoutMs, ca });
  const connect: buildConnector.connector = (target, callback) => {
    checkedAddress(target.hostname, resolve, options.policy).then(
      (address) => base({ ...target, hostname: address }, callback),
      (error: unknown) => {
        if (error instanceof WebhookTargetRefused) options.onRefused?.(error);
        callback(error instanceof Error ? error : new Error(String(error)), null);
      },
    );
  };
  return new Agent({ connect, connectTimeout: connectTimeoutMs });
}

/**
 * RFC 6761 reserves `localhost` and every name under it for loopback, but resolvers differ on
 * `localhost.` and `x.localhost` (some answer loopback, some nothing): they are not asked.
 */
const LOCALHOST_ADDRESS = '127.0.0.1';
const isLocalhostName = (host: string): boolean => /(^|\.)localhost\.?$/i.test(host);

async function checkedAddress(hostname: string, resolve: Resolve, policy: AddressPolicy): Promise<string> {
  const host = unbracket(hostname);
  const addresses = isIP(host) ? [host] : isLocalhostName(host) ? [LOCALHOST_ADDRESS] : await resolve(host);
  if (addresses.length === 0) throw new Error(`${host} has no address`);
  for (const address of addresses) {
    const range = policy.refusal(address);
    if (range) throw new WebhookTargetRefused(host, address, range);
  }
  return addresses[0]!;
}
