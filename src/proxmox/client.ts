import type {
  AccessPermissions,
  ClusterLogEntry,
  ClusterResources,
  ClusterStatus,
  GuestConfig,
  GuestRef,
  GuestStatus,
  NodeListEntry,
  SnapshotList,
  Task,
  TaskLogLine,
  TaskStatus,
  Version,
} from './types.js';
import type { TaskResult, WaitForTaskOptions } from './tasks.js';

export type Params = Record<string, string | number | boolean | string[] | undefined>;

/**
 * Everything the daemon asks of a Proxmox VE cluster. Bulk reads first: the sync issues
 * `clusterResources`, `clusterStatus`, `clusterTasks` and `clusterLog` every cycle, and
 * per-guest reads only for guests a change signal points at.
 */
export interface ProxmoxClient {
  /** The configured cluster name (for logs and errors). */
  readonly cluster: string;

  version(): Promise<Version>;
  clusterResources(type?: 'vm' | 'storage' | 'node' | 'sdn'): Promise<ClusterResources>;
  clusterStatus(): Promise<ClusterStatus>;
  clusterTasks(): Promise<Task[]>;
  clusterLog(max?: number): Promise<ClusterLogEntry[]>;
  nodes(): Promise<NodeListEntry[]>;
  /**
   * The token's own privileges per ACL path (GET /access/permissions); with `path`, that path only
   * (e.g. `'/'`, where Sys.Syslog must be for /cluster/log to show other users' lines).
   */
  permissions(path?: string): Promise<AccessPermissions>;

  guestConfig(ref: GuestRef): Promise<GuestConfig>;
  guestStatus(ref: GuestRef): Promise<GuestStatus>;
  snapshots(ref: GuestRef): Promise<SnapshotList>;

  taskStatus(upid: string): Promise<TaskStatus>;
  taskLog(upid: string, start?: number, limit?: number): Promise<{ lines: TaskLogLine[]; total: number }>;
  waitForTask(upid: string, options?: WaitForTaskOptions): Promise<TaskResult>;

  /** Raw access for endpoints without a typed wrapper; answers `data` unparsed. */
  get(path: string, query?: Params): Promise<unknown>;
  /** Write calls; never retried. Async actions answer a UPID string. */
  post(path: string, params?: Params): Promise<unknown>;
  put(path: string, params?: Params): Promise<unknown>;
  delete(path: string, params?: Params): Promise<unknown>;

  /** Ends every connection, aborting requests still in flight. */
  close(): Promise<void>;
}
