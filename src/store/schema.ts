/**
 * The inventory schema: the single source of truth for the database. `drizzle-kit generate`
 * turns it into migrations/ (applied at start). Every row is keyed by cluster. Times are epoch
 * milliseconds, except the Proxmox task times (tasks.starttime/endtime), which stay in the epoch
 * seconds Proxmox uses; lists and parsed config parts are JSON text.
 */
import { sql, type SQL } from 'drizzle-orm';
import {
  blob,
  type AnySQLiteColumn,
  foreignKey,
  index,
  integer,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

export const clusters = sqliteTable('clusters', {
  name: text('name').primaryKey(),
  /** The corosync cluster name from /cluster/status (absent on a standalone node). */
  clusterName: text('cluster_name'),
  pveVersion: text('pve_version'),
  quorate: integer('quorate', { mode: 'boolean' }),
  /** True while the last sync attempt failed: rows keep their last-known values. */
  stale: integer('stale', { mode: 'boolean' }).notNull().default(false),
  lastAttemptAt: integer('last_attempt_at'),
  lastSuccessAt: integer('last_success_at'),
  lastError: text('last_error'),
  consecutiveFailures: integer('consecutive_failures').notNull().default(0),
  /**
   * JSON { node: highest /cluster/log uid read }: each node numbers its log lines itself (and starts
   * over when pmxcfs restarts), so `update VM` lines are new per node.
   */
  logCursors: text('log_cursors'),
  lastSweepAt: integer('last_sweep_at'),
  /**
   * The sync run that last wrote this cluster. A cycle writes only if it is still the one its state
   * was read after: a second writer (`sync --once` beside `serve`) cannot apply the same change twice.
   */
  lastRunId: integer('last_run_id'),
  /**
   * JSON { signal: problem } for change signals this cluster cannot give (e.g. `log`: the token
   * lacks Sys.Syslog, so /cluster/log hides other users' edits); null when every signal works.
   */
  signalProblems: text('signal_problems'),
  /**
   * JSON { clusterName, nodes: { name: nodeid } }: who this cluster is, from /cluster/status. A
   * read from a different cluster behind the same URL is refused, never diffed against this one.
   */
  identity: text('identity'),
  /** JSON { expected, seen, since } while reads come from another cluster; null otherwise. */
  identityChanged: text('identity_changed'),
});

export const nodes = sqliteTable(
  'nodes',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    node: text('node').notNull(),
    status: text('status').notNull(),
    online: integer('online', { mode: 'boolean' }).notNull(),
    stale: integer('stale', { mode: 'boolean' }).notNull().default(false),
    lastSeenAt: integer('last_seen_at'),
    nodeid: integer('nodeid'),
    ip: text('ip'),
    level: text('level'),
    uptime: integer('uptime'),
    cpu: real('cpu'),
    maxcpu: integer('maxcpu'),
    mem: integer('mem'),
    maxmem: integer('maxmem'),
    disk: integer('disk'),
    maxdisk: integer('maxdisk'),
    updatedAt: integer('updated_at').notNull(),
    // From GET /nodes/{node}/status, read on a slow schedule (sync/node-status.ts): null until the first read.
    /** Load average over 1, 5 and 15 minutes. */
    loadavg1: real('loadavg1'),
    loadavg5: real('loadavg5'),
    loadavg15: real('loadavg15'),
    /** The running kernel's release (`6.14.8-2-pve`). */
    kernel: text('kernel'),
    /** This node's pve-manager version (`9.1.1`); nodes of a cluster being upgraded differ. */
    pveVersion: text('pve_version'),
    /** Memory KSM saves by merging identical pages. */
    ksmSharedBytes: integer('ksm_shared_bytes'),
    swapTotalBytes: integer('swap_total_bytes'),
    swapUsedBytes: integer('swap_used_bytes'),
    cpuModel: text('cpu_model'),
    cpuSockets: integer('cpu_sockets'),
    /** Physical cores (`maxcpu` counts threads). */
    cpuCores: integer('cpu_cores'),
    /** When these status fields were read. */
    statusReadAt: integer('status_read_at'),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.node] })],
);

export const guests = sqliteTable(
  'guests',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    vmid: integer('vmid').notNull(),
    type: text('type', { enum: ['qemu', 'lxc'] }).notNull(),
    node: text('node').notNull(),
    name: text('name'),
    status: text('status').notNull(),
    template: integer('template', { mode: 'boolean' }).notNull().default(false),
    /** JSON array of tags. */
    tags: text('tags').notNull().default('[]'),
    lock: text('lock'),
    pool: text('pool'),
    hastate: text('hastate'),
    maxcpu: real('maxcpu'),
    maxmem: integer('maxmem'),
    maxdisk: integer('maxdisk'),
    // Parsed from the config (null until the first config read).
    cores: integer('cores'),
    sockets: integer('sockets'),
    vcpus: integer('vcpus'),
    memoryMib: integer('memory_mib'),
    balloonMib: integer('balloon_mib'),
    ostype: text('ostype'),
    onboot: integer('onboot', { mode: 'boolean' }),
    agent: integer('agent', { mode: 'boolean' }),
    /** Proxmox refuses to remove the guest (and its disks) while this is set. */
    protection: integer('protection', { mode: 'boolean' }),
    /**
     * The config's `parent`: the snapshot the current state is based on, present while the guest
     * has snapshots (it is cleared when the last one on the current branch goes).
     */
    snapshotParent: text('snapshot_parent'),
    description: text('description'),
    /** JSON: [{ key, storage, volume, sizeBytes, media? }] */
    disks: text('disks'),
    /** JSON: [{ key, model, mac, bridge, vlan, firewall, ip? }] */
    nics: text('nics'),
    /** JSON of every config key as Proxmox returned it. */
    config: text('config'),
    digest: text('digest'),
    configFetchedAt: integer('config_fetched_at'),
    /** A later read should fetch the config again (a signal arrived but the fetch failed or was over budget). */
    configDirty: integer('config_dirty', { mode: 'boolean' }).notNull().default(false),
    /** Last values not confirmed by the latest read (node offline, cluster unreachable). */
    stale: integer('stale', { mode: 'boolean' }).notNull().default(false),
    /**
     * When a read last confirmed the row, kept for stale rows. A live row was seen at its cluster's
     * `last_success_at`; it is not rewritten every cycle (queries take the cluster's time then).
     */
    lastSeenAt: integer('last_seen_at').notNull(),
    /** Consecutive successful reads this guest was missing from. */
    missingCount: integer('missing_count').notNull().default(0),
    /** Tombstone: set when the guest is gone; cleared if it comes back. */
    deletedAt: integer('deleted_at'),
    firstSeenAt: integer('first_seen_at').notNull(),
    /**
     * Which guest this vmid is: Proxmox hands a freed vmid to the next new guest, so a row counts
     * its guests (1, 2, …); a new one starts when the old one was destroyed and another created.
     */
    incarnation: integer('incarnation').notNull().default(1),
    /** When this incarnation began (null for the first): its tasks and events are the ones since. */
    incarnationSince: integer('incarnation_since'),
    updatedAt: integer('updated_at').notNull(),
    /** The sync run that last changed this row. */
    syncRun: integer('sync_run'),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid] }),
    index('guests_node').on(t.cluster, t.node),
    // Name lookups ignore case.
    index('guests_name').on(sql`lower(${t.name})`),
    // Live guests in the default listing order: a page reads 50 index entries instead of sorting all.
    // With the status in it, a status filter or a tag count reads no guest row.
    index('guests_live_vmid')
      .on(t.vmid, t.cluster, t.status)
      .where(sql`${t.deletedAt} IS NULL`),
    // Locked guests are few: the overview's problem list reads them without a scan.
    index('guests_locked')
      .on(t.lock)
      .where(sql`${t.lock} IS NOT NULL`),
    // Name completions: a prefix's live names from the index alone (a letter 2,000 names share read 2,000
    // rows). deleted_at is a column too: SQLite reads the row to test a partial index's condition otherwise.
    index('guests_live_name')
      .on(sql`lower(${t.name})`, t.name, t.deletedAt)
      .where(sql`${t.deletedAt} IS NULL`),
    // list_guests sorted by memory (list_guests' sort key, each order with its ascending tie-break): a
    // filtered page stops after its 50 matches instead of reading every match's wide row to sort them.
    ...sortIndexes('maxmem', sql`coalesce(${t.maxmem}, -1)`, t),
    // The other sort keys that change rarely, alike (status and usage change with every cycle and are
    // not indexed): a page sorted by cores through 6,000 matches took 23 ms reading and sorting them all.
    ...sortIndexes('maxcpu', sql`coalesce(${t.maxcpu}, -1)`, t),
    ...sortIndexes('maxdisk', sql`coalesce(${t.maxdisk}, -1)`, t),
    ...sortIndexes('name_sort', sql`lower(coalesce(${t.name}, ''))`, t),
    ...sortIndexes('node', sql`${t.node}`, t),
  ],
);

/** An index of live guests in a list_guests sort key's order, for each order with the ascending tie-break. */
function sortIndexes(
  name: string,
  key: SQL,
  t: { cluster: AnySQLiteColumn; vmid: AnySQLiteColumn; deletedAt: AnySQLiteColumn },
) {
  const live = sql`${t.deletedAt} IS NULL`;
  return [
    index(`guests_live_${name}`).on(key, t.cluster, t.vmid).where(live),
    index(`guests_live_${name}_desc`)
      .on(sql`${key} DESC`, t.cluster, t.vmid)
      .where(live),
  ];
}

/**
 * Each guest's tags, one row per guest and tag (the lower-cased tag, as Proxmox matches tags
 * without regard to case): a tag filter or count reads the guests with that tag instead of
 * parsing every guest's JSON. Written with the guest row; tombstoned guests keep theirs.
 */
export const guestTags = sqliteTable(
  'guest_tags',
  {
    tagKey: text('tag_key').notNull(),
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    /** As Proxmox spells it on this guest. */
    tag: text('tag').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tagKey, t.cluster, t.vmid] }),
    index('guest_tags_guest').on(t.cluster, t.vmid),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/**
 * The parsed config as rows (store/guest-parts.ts derives them from `guests.disks` and `.nics`,
 * the parser's output): written with the guest row, gone when the guest is tombstoned. One row per
 * disk entry (`scsi0`, `rootfs`, `unused0`, a CD-ROM…).
 */
export const guestDisks = sqliteTable(
  'guest_disks',
  {
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    key: text('key').notNull(),
    /** Null for a passthrough, a bind mount or `none`. */
    storage: text('storage'),
    volume: text('volume').notNull(),
    sizeBytes: integer('size_bytes'),
    /** `cdrom` for an ISO; null for a disk. */
    media: text('media'),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid, t.key] }),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/** One row per NIC of a live guest (as guest_disks). */
export const guestNics = sqliteTable(
  'guest_nics',
  {
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    key: text('key').notNull(),
    bridge: text('bridge'),
    vlan: integer('vlan'),
    /** Upper case, colon-separated. */
    mac: text('mac'),
    model: text('model'),
    firewall: integer('firewall', { mode: 'boolean' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid, t.key] }),
    // A MAC found exactly or by its leading bytes (a range of this index).
    index('guest_nics_mac').on(t.mac),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/**
 * The static addresses a live guest's config gives its NICs (cloud-init `ipconfigN`, a container's
 * `ip=`/`ip6=`); DHCP and SLAAC leave none. The guest agent's view is not collected.
 */
export const guestAddresses = sqliteTable(
  'guest_addresses',
  {
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    nic: text('nic').notNull(),
    /** Without the prefix length; IPv6 in lower case, as configured (not expanded). */
    address: text('address').notNull(),
    prefixLength: integer('prefix_length'),
    family: integer('family').notNull(),
    mac: text('mac'),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid, t.nic, t.address] }),
    // An address found exactly or by its leading part (a range of this index).
    index('guest_addresses_address').on(t.address),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/**
 * What guests are counted and filtered by, one row per live guest and value of each facet: its
 * node, type, status now (`unknown` while stale), pool, ostype and template flag, each tag (lower
 * case), each storage it has a volume on (with its bytes there), each bridge and each VLAN of its
 * NICs; a null value says it has none (no pool, no tags, no VLAN-tagged NIC). Every row carries the
 * guest's common filter columns, so a count grouped by a facet with those filters walks one range
 * of one index, in value order, without reading a guest row or sorting: 1–2 ms at 10,000 guests
 * where the same GROUP BY over `guests` took 10–40. Columns that change often and are rarely
 * filtered on (the lock a backup takes, sizes) stay on the guest row, so their changes rewrite
 * nothing here. Written with the guest row
 * (store/guest-parts.ts); a failed read marks a cluster's rows stale as it does its guests.
 */
export const guestFacets = sqliteTable(
  'guest_facets',
  {
    facet: text('facet', {
      enum: ['node', 'type', 'status', 'pool', 'ostype', 'template', 'tag', 'storage', 'bridge', 'vlan'],
    }).notNull(),
    value: text('value'),
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    node: text('node').notNull(),
    type: text('type', { enum: ['qemu', 'lxc'] }).notNull(),
    /** The status last read (`status` facet rows hold the status now). */
    status: text('status').notNull(),
    stale: integer('stale', { mode: 'boolean' }).notNull(),
    template: integer('template', { mode: 'boolean' }).notNull(),
    pool: text('pool'),
    ostype: text('ostype'),
    onboot: integer('onboot', { mode: 'boolean' }),
    protection: integer('protection', { mode: 'boolean' }),
    agent: integer('agent', { mode: 'boolean' }),
    snapshots: integer('snapshots', { mode: 'boolean' }).notNull(),
    /** `storage` rows: the guest's disk bytes on that storage (CD-ROM images left out). */
    bytes: integer('bytes'),
  },
  (t) => [
    // Covering, in listing order within a value (vmid, cluster): counts and pages read only this index.
    index('guest_facets_value').on(
      t.facet,
      t.value,
      t.vmid,
      t.cluster,
      t.node,
      t.type,
      t.status,
      t.stale,
      t.template,
      t.pool,
      t.ostype,
      t.onboot,
      t.protection,
      t.agent,
      t.snapshots,
      t.bytes,
    ),
    // Every guest once (its `type` row), in listing order with the carried columns: a page or count
    // that names no facet value walks this instead of guest rows (which are wide: the config is on them).
    index('guest_facets_listing')
      .on(
        t.vmid,
        t.cluster,
        t.node,
        t.type,
        t.status,
        t.stale,
        t.template,
        t.pool,
        t.ostype,
        t.onboot,
        t.protection,
        t.agent,
        t.snapshots,
      )
      .where(sql`${t.facet} = 'type'`),
    // The listing's entries of protected guests and of guests with snapshots (one in ten each): a
    // count or page of them reads these instead of every guest's entry.
    index('guest_facets_protected')
      .on(
        t.vmid,
        t.cluster,
        t.node,
        t.type,
        t.status,
        t.stale,
        t.template,
        t.pool,
        t.ostype,
        t.onboot,
        t.agent,
        t.snapshots,
      )
      .where(sql`${t.facet} = 'type' AND ${t.protection} = 1`),
    index('guest_facets_snapshots')
      .on(
        t.vmid,
        t.cluster,
        t.node,
        t.type,
        t.status,
        t.stale,
        t.template,
        t.pool,
        t.ostype,
        t.onboot,
        t.protection,
        t.agent,
      )
      .where(sql`${t.facet} = 'type' AND ${t.snapshots} = 1`),
    // One guest's values of a facet (and bytes): the probe of a second facet filter or grouping, and the rewrite.
    index('guest_facets_guest').on(t.cluster, t.vmid, t.facet, t.value, t.bytes),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/**
 * Live guests per cluster, facet value and status now (guest_facets counted), kept by the sync's
 * writer (store/guest-parts.ts) in the transaction that writes the facet rows: the list of known
 * values with counts, and a count grouped by any facet filtered by status alone ("running guests
 * per tag"), are reads of a few hundred rows. `value` is '' for none (a primary key cannot match a
 * null); `status` is the status now, `unknown` for a stale guest, as the status facet says it.
 */
export const guestFacetCounts = sqliteTable(
  'guest_facet_counts',
  {
    cluster: text('cluster').notNull(),
    facet: text('facet').notNull(),
    value: text('value').notNull(),
    status: text('status').notNull(),
    guests: integer('guests').notNull(),
    /** `storage` facet: the guests' disk bytes on it. */
    bytes: integer('bytes').notNull(),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.facet, t.value, t.status] })],
);

/**
 * Live guests counted and summed per cluster, node, type and status: what the overview, the node
 * list and capacity questions need, a hundred rows instead of a scan of every guest. The sync
 * rewrites a cluster's rows in every cycle's transaction (store/guest-stats.ts), so they always
 * match the guest rows beside them. Templates count in `guests` and `templates`, never in
 * allocation.
 */
export const guestStats = sqliteTable(
  'guest_stats',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    node: text('node').notNull(),
    type: text('type', { enum: ['qemu', 'lxc'] }).notNull(),
    status: text('status').notNull(),
    guests: integer('guests').notNull(),
    templates: integer('templates').notNull(),
    /** Sums of maxcpu / maxmem over non-template guests. */
    allocatedVcpus: real('allocated_vcpus').notNull(),
    allocatedMemoryBytes: integer('allocated_memory_bytes').notNull(),
    /** Sum of live `mem` (stale guests keep their last values). */
    usedMemoryBytes: integer('used_memory_bytes').notNull(),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.node, t.type, t.status] })],
);

/**
 * Live metrics of each guest, apart from the inventory: they change on nearly every read of a
 * running guest, and a narrow table keeps those writes small.
 */
export const guestMetrics = sqliteTable(
  'guest_metrics',
  {
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    /** Fraction of `maxcpu` in use, 0..1. */
    cpu: real('cpu'),
    mem: integer('mem'),
    disk: integer('disk'),
    uptime: integer('uptime'),
    netin: integer('netin'),
    netout: integer('netout'),
    diskread: integer('diskread'),
    diskwrite: integer('diskwrite'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid] }),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
    // The overview's top consumers: five index entries instead of sorting every guest.
    index('guest_metrics_mem').on(t.mem),
    index('guest_metrics_cpu').on(t.cpu),
  ],
);

export const storage = sqliteTable(
  'storage',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    node: text('node').notNull(),
    storage: text('storage').notNull(),
    plugintype: text('plugintype'),
    shared: integer('shared', { mode: 'boolean' }).notNull(),
    /** JSON array of content types. */
    content: text('content').notNull().default('[]'),
    status: text('status').notNull(),
    disk: integer('disk'),
    maxdisk: integer('maxdisk'),
    stale: integer('stale', { mode: 'boolean' }).notNull().default(false),
    lastSeenAt: integer('last_seen_at'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.node, t.storage] })],
);

export const pools = sqliteTable(
  'pools',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    pool: text('pool').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.cluster, t.pool] })],
);

export const tasks = sqliteTable(
  'tasks',
  {
    cluster: text('cluster')
      .notNull()
      .references(() => clusters.name, { onDelete: 'cascade' }),
    upid: text('upid').notNull(),
    node: text('node').notNull(),
    type: text('type').notNull(),
    /** The task's object id: a vmid for guest tasks, '' or a storage/job id otherwise. */
    objectId: text('object_id').notNull(),
    vmid: integer('vmid'),
    user: text('user').notNull(),
    starttime: integer('starttime').notNull(),
    endtime: integer('endtime'),
    /** `OK`, `WARNINGS: n`, the error text; null while running. */
    exitstatus: text('exitstatus'),
    outcome: text('outcome', { enum: ['running', 'ok', 'warning', 'error'] }).notNull(),
    seenAt: integer('seen_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.upid] }),
    index('tasks_vmid').on(t.cluster, t.vmid),
    index('tasks_start').on(t.starttime),
  ],
);

export const syncRuns = sqliteTable(
  'sync_runs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    cluster: text('cluster').notNull(),
    startedAt: integer('started_at').notNull(),
    finishedAt: integer('finished_at').notNull(),
    durationMs: integer('duration_ms').notNull(),
    ok: integer('ok', { mode: 'boolean' }).notNull(),
    error: text('error'),
    /** JSON: { "GET /cluster/resources": 1, … } */
    calls: text('calls').notNull(),
    callsTotal: integer('calls_total').notNull(),
    guests: integer('guests').notNull().default(0),
    nodes: integer('nodes').notNull().default(0),
    configsFetched: integer('configs_fetched').notNull().default(0),
    /** JSON: { "guest.updated": 3, … } */
    changes: text('changes').notNull().default('{}'),
    warnings: integer('warnings').notNull().default(0),
  },
  (t) => [
    index('sync_runs_cluster').on(t.cluster, t.id),
    // The latest successful run without scanning a long failure streak.
    index('sync_runs_cluster_ok').on(t.cluster, t.ok, t.id),
  ],
);

/** The outbox and the change history: written in the same transaction as the change. */
export const events = sqliteTable(
  'events',
  {
    /** Monotonic: the cursor for "events since". */
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    /** Stable public id (webhook-id). */
    id: text('id').notNull().unique(),
    type: text('type').notNull(),
    occurredAt: integer('occurred_at').notNull(),
    cluster: text('cluster'),
    subjectKind: text('subject_kind').notNull(),
    subjectId: text('subject_id').notNull(),
    /** JSON payload. */
    data: text('data').notNull(),
  },
  (t) => [
    index('events_time').on(t.occurredAt),
    index('events_subject').on(t.subjectKind, t.subjectId),
    index('events_type').on(t.type),
  ],
);

export const inventorySnapshots = sqliteTable(
  'inventory_snapshots',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    takenAt: integer('taken_at').notNull(),
    label: text('label'),
    guestCount: integer('guest_count').notNull(),
    nodeCount: integer('node_count').notNull(),
    /** gzip-compressed JSON of the snapshot body (store/snapshots.ts). */
    body: blob('body', { mode: 'buffer' }).notNull(),
  },
  (t) => [index('snapshots_time').on(t.takenAt)],
);

/**
 * The action outbox: every write action asked for, the source of truth for the queue (Redis only
 * carries the job; a reconciler re-enqueues what it lost). A row is inserted with its
 * `action.queued` event in one transaction, before the job exists; its state only moves forward:
 * queued → running → succeeded | failed, or queued → expired | cancelled.
 */
export const actions = sqliteTable(
  'actions',
  {
    /** `act_` + 26 characters: the BullMQ job id too. */
    id: text('id').primaryKey(),
    /** A kind of src/actions/catalogue.ts: start, shutdown, snapshot_create… */
    kind: text('kind').notNull(),
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    /** The guest's type and node when it was queued (the node the POST goes to). */
    guestType: text('guest_type', { enum: ['qemu', 'lxc'] }).notNull(),
    node: text('node').notNull(),
    /** The guest's name when queued, so a listing reads without a join (and after the guest is gone). */
    guestName: text('guest_name'),
    /** JSON of the validated parameters (never a secret). */
    params: text('params').notNull(),
    /** `mcp-stdio`, `mcp-http` or `cli`. */
    transport: text('transport').notNull(),
    /** The MCP client's name and version as it declared them (`claude-code 1.2`), when there is one. */
    client: text('client'),
    /** Who asked: an HTTP token's label, or the local user for stdio and the CLI. Never a token. */
    principal: text('principal').notNull(),
    idempotencyKey: text('idempotency_key'),
    state: text('state', {
      enum: ['queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'],
    }).notNull(),
    /** The Proxmox task, stored the moment the POST answers. */
    upid: text('upid'),
    /** When the POST was about to be sent: with no UPID after it, the reconciler looks for the task. */
    postedAt: integer('posted_at'),
    /** Proxmox's exit status (`OK`, `WARNINGS: 2`, or its error text). */
    exitStatus: text('exit_status'),
    /** Why it ended as it did, in a sentence: Proxmox's refusal verbatim, or ours. */
    reason: text('reason'),
    /** JSON list of the task log's last lines. */
    taskLog: text('task_log'),
    createdAt: integer('created_at').notNull(),
    /** Not started by then: expired, never run late. */
    expiresAt: integer('expires_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    index('actions_state').on(t.state, t.createdAt),
    index('actions_created').on(t.createdAt),
    index('actions_guest').on(t.cluster, t.vmid, t.createdAt),
    index('actions_principal').on(t.principal, t.createdAt),
    uniqueIndex('actions_idempotency').on(t.principal, t.idempotencyKey),
  ],
);

/**
 * Plans waiting for their confirmation (a destructive action asked without MCP elicitation): the
 * token's SHA-256 only, bound to the exact request (a hash of kind, target and parameters) and its
 * principal; single use, short-lived. In SQLite so the stdio process and `serve` honour the same
 * token and a restart forgets none.
 */
export const actionConfirmations = sqliteTable('action_confirmations', {
  tokenHash: text('token_hash').primaryKey(),
  requestHash: text('request_hash').notNull(),
  principal: text('principal').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at'),
});

/**
 * Each guest's snapshots as Proxmox lists them (GET …/snapshot, `current` left out), read after
 * a snapshot task ends and by the config sweep, so a cycle's cost stays flat.
 */
export const guestSnapshots = sqliteTable(
  'guest_snapshots',
  {
    cluster: text('cluster').notNull(),
    vmid: integer('vmid').notNull(),
    name: text('name').notNull(),
    parent: text('parent'),
    description: text('description'),
    /** Epoch seconds, as Proxmox gives it. */
    snaptime: integer('snaptime'),
    /** qemu: RAM state saved with it. */
    vmstate: integer('vmstate', { mode: 'boolean' }).notNull().default(false),
    readAt: integer('read_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.cluster, t.vmid, t.name] }),
    foreignKey({ columns: [t.cluster, t.vmid], foreignColumns: [guests.cluster, guests.vmid] }).onDelete('cascade'),
  ],
);

/** Webhook subscriptions (src/webhooks/): from the CLI or the config file (`source`). */
export const webhookSubscriptions = sqliteTable('webhook_subscriptions', {
  /** `wh_` + 26 characters. */
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  description: text('description'),
  /** JSON list of event type globs (`guest.*`, `action.failed`). */
  events: text('events').notNull(),
  /** Only this cluster's events, when set. */
  cluster: text('cluster'),
  /** Only events about guests with this tag (lower case), when set. */
  tag: text('tag'),
  /** `whsec_` + base64; the database file is private to its user (0600). */
  secret: text('secret').notNull(),
  /** After a rotation: the old secret, signed with too until `previousSecretUntil`. */
  previousSecret: text('previous_secret'),
  previousSecretUntil: integer('previous_secret_until'),
  /** The envelope version the subscriber reads. */
  version: integer('version').notNull().default(1),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  disabledReason: text('disabled_reason'),
  /** `cli` or `config`. */
  source: text('source').notNull(),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  lastSuccessAt: integer('last_success_at'),
  /** The first failure since the last success: failing for days disables the subscription. */
  failingSince: integer('failing_since'),
});

/** One event to one subscription: its attempts and outcome. */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    /** `msg_` + 26 characters: the BullMQ job id. */
    id: text('id').primaryKey(),
    subscriptionId: text('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id, { onDelete: 'cascade' }),
    eventSeq: integer('event_seq').notNull(),
    /** The event's id: `webhook-id`, the same on every attempt and replay. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** pending → succeeded | failed (dead letter, replayable). */
    state: text('state', { enum: ['pending', 'succeeded', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at'),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    /** The receiver's last answer, cut to 2 KB; never shown to MCP clients. */
    lastResponse: text('last_response'),
    createdAt: integer('created_at').notNull(),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    index('webhook_deliveries_event').on(t.subscriptionId, t.eventSeq),
    index('webhook_deliveries_state').on(t.state, t.nextAttemptAt),
    index('webhook_deliveries_created').on(t.subscriptionId, t.createdAt),
  ],
);

/** Single row (id 1): the last event seq the relay turned into deliveries. */
export const webhookRelay = sqliteTable('webhook_relay', {
  id: integer('id').primaryKey(),
  lastSeq: integer('last_seq').notNull(),
  updatedAt: integer('updated_at').notNull(),
});
