/**
 * Counts the API calls one sync cycle makes, per endpoint, for its `sync_runs` row. A wrapper
 * with the client's own interface, so the cycle code cannot bypass it.
 */
import type { ProxmoxClient } from '../proxmox/client.js';

export interface CountingClient {
  client: ProxmoxClient;
  calls: Map<string, number>;
  total(): number;
}

export function countCalls(inner: ProxmoxClient): CountingClient {
  const calls = new Map<string, number>();
  const count = <T>(endpoint: string, p: Promise<T>): Promise<T> => {
    calls.set(endpoint, (calls.get(endpoint) ?? 0) + 1);
    return p;
  };
  const client: ProxmoxClient = {
    cluster: inner.cluster,
    version: () => count('GET /version', inner.version()),
    clusterResources: (type) => count('GET /cluster/resources', inner.clusterResources(type)),
    clusterStatus: () => count('GET /cluster/status', inner.clusterStatus()),
    clusterTasks: () => count('GET /cluster/tasks', inner.clusterTasks()),
    clusterLog: (max) => count('GET /cluster/log', inner.clusterLog(max)),
    nodes: () => count('GET /nodes', inner.nodes()),
    permissions: (path) => count('GET /access/permissions', inner.permissions(path)),
    guestConfig: (ref) => count(`GET /nodes/{node}/${ref.type}/{vmid}/config`, inner.guestConfig(ref)),
    guestStatus: (ref) => count(`GET /nodes/{node}/${ref.type}/{vmid}/status/current`, inner.guestStatus(ref)),
    snapshots: (ref) => count(`GET /nodes/{node}/${ref.type}/{vmid}/snapshot`, inner.snapshots(ref)),
    taskStatus: (upid) => count('GET /nodes/{node}/tasks/{upid}/status', inner.taskStatus(upid)),
    taskLog: (upid, start, limit) => count('GET /nodes/{node}/tasks/{upid}/log', inner.taskLog(upid, start, limit)),
    waitForTask: (upid, options) => inner.waitForTask(upid, options),
    get: (path, query) => count(`GET ${path}`, inner.get(path, query)),
    post: (path, params) => count(`POST ${path}`, inner.post(path, params)),
    put: (path, params) => count(`PUT ${path}`, inner.put(path, params)),
    delete: (path, params) => count(`DELETE ${path}`, inner.delete(path, params)),
    close: () => inner.close(),
  };
  return { client, calls, total: () => [...calls.values()].reduce((a, b) => a + b, 0) };
}
