/**
 * The one error type of the Proxmox client. `kind` is what callers branch on; the message
 * reads on its own: method, path, status and Proxmox's reason, plus a hint where we know the fix.
 */
export type ProxmoxErrorKind =
  | 'auth' // 401: token unknown, wrong secret, expired
  | 'permission' // 403: token valid, privilege missing
  | 'parameter' // 400: Proxmox rejected a parameter (see `errors`)
  | 'not_found' // 500 "does not exist" style answers
  | 'not_implemented' // 501: no such route (often a PVE version without the endpoint)
  | 'node_unreachable' // 595/596: the API node could not proxy to the target node
  | 'server' // other 5xx
  | 'http' // other non-2xx
  | 'timeout' // no answer within the request timeout
  | 'network' // connection refused, reset, DNS
  | 'tls' // certificate not trusted or pin mismatch
  | 'protocol'; // 2xx with a body that is not the documented shape

export interface ProxmoxErrorInit {
  kind: ProxmoxErrorKind;
  method: string;
  path: string;
  status?: number;
  reason?: string;
  errors?: Record<string, string>;
  hint?: string;
  cause?: unknown;
}

export class ProxmoxApiError extends Error {
  readonly kind: ProxmoxErrorKind;
  readonly method: string;
  readonly path: string;
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  readonly reason: string;
  readonly errors: Record<string, string> | undefined;
  readonly hint: string | undefined;

  constructor(init: ProxmoxErrorInit) {
    const status = init.status ?? 0;
    const reason = init.reason ?? '';
    const params = init.errors
      ? ' ' +
        Object.entries(init.errors)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ')
      : '';
    const head = status
      ? `${init.method} ${init.path} → ${status} ${reason}`
      : `${init.method} ${init.path} → ${reason}`;
    super(
      `${head}${params}${init.hint ? ` (${init.hint})` : ''}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = 'ProxmoxApiError';
    this.kind = init.kind;
    this.method = init.method;
    this.path = init.path;
    this.status = status;
    this.reason = reason;
    this.errors = init.errors;
    this.hint = init.hint;
  }

  /**
   * Worth retrying an idempotent request at once: the failure says nothing about the request.
   * A 595 is not: the target node is down, and an immediate retry only adds latency.
   */
  get transient(): boolean {
    return this.kind === 'timeout' || this.kind === 'network' || [502, 503, 504].includes(this.status);
  }

  /** The same failure, saying that it is the last of `attempts` tries (so nobody adds retries that already ran). */
  afterAttempts(attempts: number): ProxmoxApiError {
    if (attempts < 2) return this;
    return new ProxmoxApiError({
      kind: this.kind,
      method: this.method,
      path: this.path,
      status: this.status || undefined,
      reason: `${this.reason} after ${attempts} tries`,
      errors: this.errors,
      hint: this.hint,
      cause: this.cause,
    });
  }
}

/** "300 ms", "15 s", "1.5 s": how long a deadline was, as a person reads it. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** Where a connection went, for hints: the URL's protocol, host and port (default 8006 is not assumed). */
export interface Target {
  protocol: string;
  host: string;
  port: string;
}

/**
 * What to check when no HTTP answer came back, by the socket error's code: the usual cause is a
 * URL that points at the wrong port, the wrong scheme or a name that does not resolve.
 */
export function connectionHint(code: string | undefined, { protocol, host, port }: Target): string | undefined {
  const at = `${host}:${port || (protocol === 'https:' ? 443 : 80)}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens at ${at}: is the URL's host and port right? Proxmox VE's API is https on port 8006`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the name ${host} does not resolve: check the URL's host (or use the node's IP address)`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to ${host}: check the address and that this machine can reach that network`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      // A TLS server closes a plain-HTTP connection without a word: the usual cause of this with http://.
      return protocol === 'http:'
        ? `the server at ${at} closed the connection without an answer: if it speaks HTTPS (Proxmox VE does, on 8006), use https:// in the URL`
        : undefined;
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return `the server at ${at} answered without TLS: is the port right? Proxmox VE's API is https on port 8006; plain http:// suits only a loopback simulator`;
    default:
      return undefined;
  }
}

export function kindForStatus(status: number, reason: string): ProxmoxErrorKind {
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 400) return 'parameter';
  if (status === 501) return 'not_implemented';
  if (status === 595 || status === 596) return 'node_unreachable';
  if (status === 500 && /does not exist|no such/i.test(reason)) return 'not_found';
  if (status >= 500) return 'server';
  return 'http';
}

export function hintFor(kind: ProxmoxErrorKind): string | undefined {
  switch (kind) {
    case 'auth':
      return 'the API token was rejected: check the token id (user@realm!tokenid) and its secret, and that the token has not expired';
    case 'permission':
      return 'the token is valid but lacks this privilege: grant it on the path named above (with privilege separation, to the token as well as its user)';
    case 'node_unreachable':
      return 'the API node could not reach the target node; it is probably offline';
    case 'not_implemented':
      return 'this Proxmox VE version does not have the endpoint';
    default:
      return undefined;
  }
}
