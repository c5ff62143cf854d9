/**
 * TLS trust for Proxmox nodes, which usually present a self-signed certificate (or one signed by
 * the cluster's own CA, /etc/pve/pve-root-ca.pem). Verification is always on: trust comes from a
 * CA file or a pinned SHA-256 fingerprint; turning it off needs the explicit `insecure` flag.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';

export interface TlsTrust {
  /** PEM text of a CA (e.g. the cluster's pve-root-ca.pem). */
  ca?: string;
  /** SHA-256 fingerprint of the node certificate, as `pvenode cert info` prints it (AB:CD:…). */
  fingerprint?: string;
  /** Skip verification entirely. Never the default; the caller logs it loudly. */
  insecure?: boolean;
}

const FINGERPRINT_RE = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** Accepts `AB:CD:…`, lowercase, or 64 bare hex digits; returns the canonical colon form or undefined. */
export function normalizeFingerprint(input: string): string | undefined {
  const hex = input
    .trim()
    .replace(/^sha256\s*(fingerprint)?\s*[:=]?\s*/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  const canonical = hex.match(/../g)!.join(':');
  return FINGERPRINT_RE.test(canonical) ? canonical : undefined;
}

export class CertificatePinError extends Error {
  readonly code = 'ERR_PVE_FINGERPRINT_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`certificate fingerprint ${actual} does not match the pinned ${expected}`);
  }
}

export function createConnector(trust: TlsTrust, timeoutMs: number): buildConnector.connector {
  if (trust.insecure) return buildConnector({ rejectUnauthorized: false, timeout: timeoutMs });
  if (!trust.fingerprint) return buildConnector({ ca: trust.ca, timeout: timeoutMs });
  const pin = normalizeFingerprint(trust.fingerprint);
  if (!pin) throw new Error('fingerprint: expected 32 colon-separated hex bytes (as `pvenode cert info` prints)');
  // Chain validation is replaced by the pin: the handshake completes, then the leaf's SHA-256 is
  // compared before the socket is handed to undici, so no request byte reaches an unpinned peer.
  // Session caching is off because a resumed session may not carry the peer certificate.
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0, timeout: timeoutMs });
  return (options, callback) => {
    base(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('TLS connect failed'), null);
      const actual = (socket as TLSSocket).getPeerCertificate?.().fingerprint256 ?? '';
      if (actual.toUpperCase() !== pin) {
        socket.destroy();
        return callback(new CertificatePinError(pin, actual || '(none)'), null);
      }
      callback(null, socket);
    });
  };
}

/** Reads the certificate fingerprint a server presents, without trusting it, to tell the operator what to pin. */
export function probeFingerprint(host: string, port: number, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      rejectUnauthorized: false,
      servername: /^[\d.:]+$/.test(host) ? undefined : host,
    });
    const done = (fp: string | undefined): void => {
      socket.destroy();
      resolve(fp);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('secureConnect', () => done(socket.getPeerCertificate().fingerprint256 || undefined));
    socket.once('error', () => done(undefined));
  });
}

const UNTRUSTED_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CODES.has(code);
}

export function isTlsFailure(code: string | undefined): boolean {
  return (
    code !== undefined &&
    (isUntrustedCertificate(code) ||
      code.startsWith('ERR_TLS') ||
      code.startsWith('CERT_') ||
      code === 'ERR_PVE_FINGERPRINT_MISMATCH' ||
      code === 'HOSTNAME_MISMATCH' ||
      code === 'ERR_SSL_WRONG_VERSION_NUMBER')
  );
}
