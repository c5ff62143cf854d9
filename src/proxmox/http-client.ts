/**
 * ProxmoxClient over HTTPS with undici: one keep-alive connection pool per cluster whose size is
 * the concurrency limit, a timeout per request, retries with backoff for GETs only, and
 * `Authorization: PVEAPIToken=…`. The token secret lives in a `Secret` and appears only in that header.
 */
import { Pool } from 'undici';
import type { z } from 'zod';
import type { Secret } from '../secret.js';
import type { Params, ProxmoxClient } from './client.js';
import { connectionHint, formatDuration, hintFor, kindForStatus, ProxmoxApiError } from './errors.js';
import { sleep, waitForTask } from './tasks.js';
import { createConnector, isTlsFailure, isUntrustedCertificate, probeFingerprint, type TlsTrust } from './tls.js';
import {
  AccessPermissionsSchema,
  ClusterLogEntrySchema,
  ClusterStatusEntrySchema,
  coerceGuestResource,
  coerceNodeResource,
  coercePoolResource,
  coerceStorageResource,
  GuestStatusSchema,
  NodeListEntrySchema,
  ShapeError,
  SnapshotEntrySchema,
  TaskLogLineSchema,
  TaskSchema,
  TaskStatusSchema,
  VersionSchema,
  type ClusterResources,
  type ClusterStatus,
  type GuestConfig,
  type GuestRef,
  type SnapshotList,
} from './types.js';
import { parseUpid } from './upid.js';
import { isLoopbackHost } from '../net.js';

export interface HttpClientOptions {
  cluster: string;
  /** `https://host:8006` (a path, if any, is ignored; `/api2/json` is added). */
  url: string;
  tokenId: string;
  tokenSecret: Secret;
  tls: TlsTrust;
  timeoutMs?: number;
  /** Most requests in flight at once to this cluster. */
  concurrency?: number;
  /** Extra attempts for a GET that failed transiently (timeout, connection error, 502/503/504). */
  retries?: number;
  retryBaseMs?: number;
  /** Told about data that was skipped or coerced; never given secrets. */
  onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
interface Envelope {
  data: unknown;
  total?: number;
}

/** Encodes a path segment but keeps `:`, `@` and `!` raw, as Proxmox uses UPIDs and token ids in paths. */
export const seg = (value: string | number): string =>
  encodeURIComponent(String(value)).replace(/%3A/gi, ':').replace(/%40/g, '@');

function toQuery(params: Params | undefined): string {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value])
      q.append(key, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Proxmox takes booleans as 0/1; JSON bodies keep arrays (e.g. guest-agent `command`) intact. */
function toBody(params: Params | undefined): string {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined) out[key] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  }
  return JSON.stringify(out);
}

const errorCode = (err: unknown): string | undefined => {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
};

/** A response body still arriving when its deadline passed. */
class BodyDeadlineError extends Error {
  constructor(ms: number) {
    super(`the answer was still arriving ${ms} ms after its headers (a body that trickles in)`);
    this.name = 'BodyDeadlineError';
  }
}

export function createHttpProxmoxClient(options: HttpClientOptions): ProxmoxClient {
  const {
    cluster,
    tokenId,
    tokenSecret,
    tls,
    timeoutMs = 15_000,
    concurrency = 8,
    retries = 2,
    retryBaseMs = 250,
  } = options;
  const warn = options.onWarning ?? ((): void => {});
  const origin = new URL(options.url).origin;
  const { hostname, port, protocol } = new URL(origin);
  if (protocol === 'http:' && !isLoopbackHost(hostname)) {
    throw new Error(`refusing plain http to ${hostname}: the API token would travel unencrypted; use https`);
  }
  if (tls.insecure)
    warn('TLS verification is off for this cluster (insecure): anyone on the path can read the API token', { cluster });
  const pool = new Pool(origin, {
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: protocol === 'https:' ? createConnector(tls, timeoutMs) : undefined,
  });
  const authorization = (): string => `PVEAPIToken=${tokenId}=${tokenSecret.reveal()}`;

  async function transportError(method: Method, path: string, err: unknown): Promise<ProxmoxApiError> {
    const code = errorCode(err);
    const name = (err as { name?: string } | undefined)?.name;
    const advice = connectionHint(code, { protocol, host: hostname, port });
    if (err instanceof BodyDeadlineError)
      return new ProxmoxApiError({ kind: 'timeout', method, path, reason: err.message, cause: err });
    if (
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'ETIMEDOUT' ||
      name === 'TimeoutError'
    ) {
      return new ProxmoxApiError({
        kind: 'timeout',
        method,
        path,
        reason: `no answer within ${formatDuration(timeoutMs)}`,
        cause: err,
      });
    }
    if (advice && code?.startsWith('ERR_SSL_'))
      // OpenSSL's text ("ssl3_get_record:wrong version number…") says nothing to an operator; the hint does.
      return new ProxmoxApiError({ kind: 'tls', method, path, reason: 'no TLS handshake', hint: advice, cause: err });
    if (isTlsFailure(code)) {
      let hint: string;
      if (isUntrustedCertificate(code)) {
        const seen = await probeFingerprint(hostname, Number(port || 443));
        hint =
          `the server's certificate is not trusted. Pin it with PVE_FINGERPRINT${seen ? `=${seen}` : '=<sha256 fingerprint>'} ` +
          '(compare with `pvenode cert info` run on the node) or trust the cluster CA with PVE_CA_FILE=<copy of /etc/pve/pve-root-ca.pem>';
      } else if (code === 'ERR_PVE_FINGERPRINT_MISMATCH') {
        hint =
          'the certificate does not match the pinned fingerprint: if the node certificate was renewed, pin the new one (`pvenode cert info`); otherwise something else answers at this address';
      } else {
        hint = 'TLS handshake failed: check the URL (https, port 8006) and the trusted CA';
      }
      return new ProxmoxApiError({ kind: 'tls', method, path, reason: (err as Error).message, hint, cause: err });
    }
    return new ProxmoxApiError({
      kind: 'network',
      method,
      path,
      reason: (err as Error)?.message ?? String(err),
      hint: advice,
      cause: err,
    });
  }

  /** One request; answers the whole envelope (`data`, and `total` on paged lists). */
  async function once(method: Method, path: string, params: Params | undefined): Promise<Envelope> {
    // Proxmox reads GET and DELETE parameters from the query string, POST and PUT ones from the body.
    const inQuery = method === 'GET' || method === 'DELETE';
    const headers: Record<string, string> = { authorization: authorization(), accept: 'application/json' };
    if (!inQuery) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await pool.request({
        method,
        path: `/api2/json${path}${inQuery ? toQuery(params) : ''}`,
        headers,
        body: inQuery ? undefined : toBody(params),
        // No overall deadline here: undici's headers/body timeouts start when the request is sent,
        // so time spent queued behind the concurrency limit never turns into a false timeout.
      });
    } catch (err) {
      throw await transportError(method, path, err);
    }
    let text: string;
    // undici's bodyTimeout is an idle timer: a body that trickles in a byte at a time never trips
    // it and would hold a sync cycle forever. Once the headers are in (so the request is past the
    // queue), the whole body must arrive within `timeoutMs`.
    const deadline = setTimeout(() => res.body.destroy(new BodyDeadlineError(timeoutMs)), timeoutMs);
    try {
      text = await res.body.text();
    } catch (err) {
      throw await transportError(method, path, err);
    } finally {
      clearTimeout(deadline);
    }
    if (res.statusCode >= 400) {
      let body: { message?: unknown; errors?: unknown } = {};
      try {
        body = text ? (JSON.parse(text) as typeof body) : {};
      } catch {
        // Proxmox answers 401 with an empty body and some proxies with HTML: the status line carries the reason.
      }
      const message = typeof body.message === 'string' ? body.message.trim() : '';
      const reason = message || res.statusText || '';
      const errors =
        body.errors && typeof body.errors === 'object' ? (body.errors as Record<string, string>) : undefined;
      const kind = kindForStatus(res.statusCode, reason);
      throw new ProxmoxApiError({ kind, method, path, status: res.statusCode, reason, errors, hint: hintFor(kind) });
    }
    try {
      const envelope = JSON.parse(text) as Envelope | null;
      return { data: envelope?.data ?? null, total: typeof envelope?.total === 'number' ? envelope.total : undefined };
    } catch (err) {
      throw new ProxmoxApiError({
        kind: 'protocol',
        method,
        path,
        status: res.statusCode,
        reason: 'response body is not JSON',
        cause: err,
      });
    }
  }

  async function call(method: Method, path: string, params?: Params): Promise<Envelope> {
    // Only GETs are retried: a write that timed out may still have happened on Proxmox.
    const attempts = method === 'GET' ? retries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(method, path, params);
      } catch (err) {
        if (!(err instanceof ProxmoxApiError) || !err.transient) throw err;
        if (attempt >= attempts) throw err.afterAttempts(attempt);
        const backoff = retryBaseMs * 2 ** (attempt - 1);
        await sleep(backoff / 2 + Math.random() * backoff);
      }
    }
  }

  /** Parses a list item by item: one odd entry is skipped with a warning, never fails the whole read. */
  function parseList<S extends z.ZodType>(path: string, data: unknown, schema: S): Array<z.infer<S>> {
    if (!Array.isArray(data))
      throw new ProxmoxApiError({
        kind: 'protocol',
        method: 'GET',
        path,
        reason: `expected a list, got ${typeof data}`,
      });
    const out: Array<z.infer<S>> = [];
    for (const item of data) {
      const parsed = schema.safeParse(item);
      if (parsed.success) out.push(parsed.data);
      else
        warn('skipped an entry Proxmox sent in an unexpected shape', {
          cluster,
          path,
          id: (item as { id?: unknown })?.id,
          issue: parsed.error.issues[0]?.message,
          field: parsed.error.issues[0]?.path.join('.'),
        });
    }
    return out;
  }

  function parseOne<S extends z.ZodType>(path: string, data: unknown, schema: S): z.infer<S> {
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ProxmoxApiError({
        kind: 'protocol',
        method: 'GET',
        path,
        reason: `unexpected response shape at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
      });
    }
    return parsed.data;
  }

  const guestPath = (ref: GuestRef): string => `/nodes/${seg(ref.node)}/${ref.type}/${seg(ref.vmid)}`;
  const taskPath = (upid: string): string => `/nodes/${seg(parseUpid(upid).node)}/tasks/${seg(upid)}`;

  const client: ProxmoxClient = {
    cluster,

    async version() {
      return parseOne('/version', (await call('GET', '/version')).data, VersionSchema);
    },

    async clusterResources(type) {
      const path = '/cluster/resources';
      const { data } = await call('GET', path, { type });
      if (!Array.isArray(data))
        throw new ProxmoxApiError({ kind: 'protocol', method: 'GET', path, reason: 'expected a list' });
      const out: ClusterResources = { guests: [], nodes: [], storage: [], pools: [], other: [], skipped: [] };
      for (const item of data as Array<Record<string, unknown>>) {
        const t = item?.type;
        try {
          if (t === 'qemu' || t === 'lxc') out.guests.push(coerceGuestResource(item));
          else if (t === 'node') out.nodes.push(coerceNodeResource(item));
          else if (t === 'storage') out.storage.push(coerceStorageResource(item));
          else if (t === 'pool') out.pools.push(coercePoolResource(item));
          else out.other.push({ id: String(item?.id ?? ''), type: String(t ?? 'unknown') });
        } catch (err) {
          if (!(err instanceof ShapeError)) throw err;
          warn('skipped an entry Proxmox sent in an unexpected shape', {
            cluster,
            path,
            id: item?.id,
            issue: err.message,
            field: err.field,
          });
          const id = String(item?.id ?? '');
          const vmid = /^(?:qemu|lxc)\/(\d+)$/.exec(id)?.[1];
          out.skipped.push({ id, type: String(t ?? 'unknown'), ...(vmid ? { vmid: Number(vmid) } : {}) });
        }
      }
      return out;
    },

    async clusterStatus() {
      const { data } = await call('GET', '/cluster/status');
      const entries = parseList('/cluster/status', data, ClusterStatusEntrySchema);
      const status: ClusterStatus = { nodes: [] };
      const listed = Array.isArray(data) && data.some((e) => (e as { type?: unknown } | null)?.type === 'cluster');
      if (listed && !entries.some((e) => e.type === 'cluster')) status.clusterEntryUnreadable = true;
      for (const e of entries) {
        if (e.type === 'cluster')
          status.cluster = { name: e.name, nodes: e.nodes, version: e.version, quorate: e.quorate };
        else status.nodes.push({ name: e.name, nodeid: e.nodeid, online: e.online, local: e.local, ip: e.ip });
      }
      return status;
    },

    async clusterTasks() {
      return parseList('/cluster/tasks', (await call('GET', '/cluster/tasks')).data, TaskSchema);
    },

    async clusterLog(max) {
      return parseList('/cluster/log', (await call('GET', '/cluster/log', { max })).data, ClusterLogEntrySchema);
    },

    async nodes() {
      return parseList('/nodes', (await call('GET', '/nodes')).data, NodeListEntrySchema);
    },

    async permissions(path) {
      return parseOne(
        '/access/permissions',
        (await call('GET', '/access/permissions', { path })).data,
        AccessPermissionsSchema,
      );
    },

    async guestConfig(ref) {
      const path = `${guestPath(ref)}/config`;
      const { data } = await call('GET', path);
      if (!data || typeof data !== 'object' || Array.isArray(data))
        throw new ProxmoxApiError({ kind: 'protocol', method: 'GET', path, reason: 'expected an object' });
      const values: Record<string, string> = {};
      let digest = '';
      for (const [key, value] of Object.entries(data)) {
        if (key === 'digest') digest = String(value);
        else if (value !== null && value !== undefined)
          values[key] = typeof value === 'object' ? JSON.stringify(value) : String(value);
      }
      if (!digest) warn('guest config without digest', { cluster, path });
      return { digest, values } satisfies GuestConfig;
    },

    async guestStatus(ref) {
      const path = `${guestPath(ref)}/status/current`;
      return parseOne(path, (await call('GET', path)).data, GuestStatusSchema);
    },

    async snapshots(ref) {
      const path = `${guestPath(ref)}/snapshot`;
      const list: SnapshotList = { snapshots: [], current: { running: false } };
      for (const e of parseList(path, (await call('GET', path)).data, SnapshotEntrySchema)) {
        if (e.name === 'current') list.current = { digest: e.digest, running: e.running ?? false, parent: e.parent };
        else
          list.snapshots.push({
            name: e.name,
            snaptime: e.snaptime,
            description: e.description,
            vmstate: e.vmstate,
            parent: e.parent,
          });
      }
      list.snapshots.sort((a, b) => (a.snaptime ?? 0) - (b.snaptime ?? 0));
      return list;
    },

    async taskStatus(upid) {
      const path = `${taskPath(upid)}/status`;
      return parseOne(path, (await call('GET', path)).data, TaskStatusSchema);
    },

    async taskLog(upid, start = 0, limit = 500) {
      const path = `${taskPath(upid)}/log`;
      const answer = await call('GET', path, { start, limit });
      const lines = parseList(path, answer.data, TaskLogLineSchema);
      return { lines, total: answer.total ?? lines.length };
    },

    waitForTask(upid, waitOptions) {
      return waitForTask((u) => client.taskStatus(u), upid, waitOptions);
    },

    get: async (path, query) => (await call('GET', path, query)).data,
    post: async (path, params) => (await call('POST', path, params)).data,
    put: async (path, params) => (await call('PUT', path, params)).data,
    delete: async (path, params) => (await call('DELETE', path, params)).data,

    async close() {
      // Abort what is still in flight: closing happens at shutdown, which must not wait on a hung cluster.
      await pool.destroy();
    },
  };
  return client;
}
