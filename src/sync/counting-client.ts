/**
 * Wrappers with the client's own interface, so the code they wrap cannot bypass them:
 * `countCalls` counts the API calls one sync cycle makes, per endpoint, for its `sync_runs` row
 * (and for /metrics, with the status each got);
 * `trackRequests` knows which requests are waiting for an answer right now, so a cycle that hangs
 * can say on what ("waiting on GET /cluster/resources").
 */
import { recordApiRequest } from '../metrics.js';
import type { ProxmoxClient } from '../proxmox/client.js';
import { ProxmoxApiError } from '../proxmox/errors.js';

export interface CountingClient {
  client: ProxmoxClient;
  calls: Map<string, number>;
  total(): number;
}

/**
 * A raw call's path as the endpoint it is (`/nodes/pve1/status` → `/nodes/{node}/status`), so that
 * calls to every node count under one name, as the typed calls do.
 */
export function endpointOf(path: string): string {
  return path
    .replace(/^\/nodes\/[^/]+/, '/nodes/{node}')
    .replace(/\/(qemu|lxc)\/\d+(?=\/|$)/, '/$1/{vmid}')
    .replace(/\/tasks\/UPID:[^/]+/, '/tasks/{upid}');
}

/** Wraps every call of `inner` that reaches Proxmox in `around`, named by its endpoint (`GET /cluster/resources`). */
function wrapCalls(
  inner: ProxmoxClient,
  around: <T>(endpoint: string, call: () => Promise<T>) => Promise<T>,
): ProxmoxClient {
  return {
    cluster: inner.cluster,
    version: () => around('GET /version', () => inner.version()),
    clusterResources: (type) => around('GET /cluster/resources', () => inner.clusterResources(type)),
    clusterStatus: () => around('GET /cluster/status', () => inner.clusterStatus()),
    clusterTasks: () => around('GET /cluster/tasks', () => inner.clusterTasks()),
    clusterLog: (max) => around('GET /cluster/log', () => inner.clusterLog(max)),
    nodes: () => around('GET /nodes', () => inner.nodes()),
    permissions: (path) => around('GET /access/permissions', () => inner.permissions(path)),
    guestConfig: (ref) => around(`GET /nodes/{node}/${ref.type}/{vmid}/config`, () => inner.guestConfig(ref)),
    guestStatus: (ref) => around(`GET /nodes/{node}/${ref.type}/{vmid}/status/current`, () => inner.guestStatus(ref)),
    snapshots: (ref) => around(`GET /nodes/{node}/${ref.type}/{vmid}/snapshot`, () => inner.snapshots(ref)),
    taskStatus: (upid) => around('GET /nodes/{node}/tasks/{upid}/status', () => inner.taskStatus(upid)),
    taskLog: (upid, start, limit) =>
      around('GET /nodes/{node}/tasks/{upid}/log', () => inner.taskLog(upid, start, limit)),
    waitForTask: (upid, options) => inner.waitForTask(upid, options),
    get: (path, query) => around(`GET ${endpointOf(path)}`, () => inner.get(path, query)),
    post: (path, params) => around(`POST ${endpointOf(path)}`, () => inner.post(path, params)),
    put: (path, params) => around(`PUT ${endpointOf(path)}`, () => inner.put(path, params)),
    delete: (path, params) => around(`DELETE ${endpointOf(path)}`, () => inner.delete(path, params)),
    close: () => inner.close(),
  };
}

export function countCalls(inner: ProxmoxClient): CountingClient {
  const calls = new Map<string, number>();
  const client = wrapCalls(inner, async (endpoint, call) => {
    calls.set(endpoint, (calls.get(endpoint) ?? 0) + 1);
    try {
      const answer = await call();
      recordApiRequest(inner.cluster, endpoint, 200);
      return answer;
    } catch (err) {
      recordApiRequest(inner.cluster, endpoint, err instanceof ProxmoxApiError ? err.status : 0);
      throw err;
    }
  });
  return { client, calls, total: () => [...calls.values()].reduce((a, b) => a + b, 0) };
}

/** Requests to one endpoint that have not been answered yet (queued behind the concurrency limit included). */
export interface RequestsInFlight {
  /** `GET /cluster/resources`, or a template such as `GET /nodes/{node}/qemu/{vmid}/config`. */
  request: string;
  count: number;
  /** When the oldest of them was made (epoch ms). */
  since: number;
}

export interface RequestTracker {
  client: ProxmoxClient;
  /** What is waiting for Proxmox now, the longest-waiting endpoint first. */
  inFlight(): RequestsInFlight[];
}

export function trackRequests(inner: ProxmoxClient, now: () => number = Date.now): RequestTracker {
  const pending = new Map<number, { request: string; since: number }>();
  let next = 0;
  const client = wrapCalls(inner, async (request, call) => {
    const id = next++;
    pending.set(id, { request, since: now() });
    try {
      return await call();
    } finally {
      pending.delete(id);
    }
  });
  return {
    client,
    inFlight() {
      const byRequest = new Map<string, RequestsInFlight>();
      for (const { request, since } of pending.values()) {
        const seen = byRequest.get(request);
        if (seen) {
          seen.count++;
          seen.since = Math.min(seen.since, since);
        } else byRequest.set(request, { request, count: 1, since });
      }
      return [...byRequest.values()].sort((a, b) => a.since - b.since || a.request.localeCompare(b.request));
    },
  };
}
