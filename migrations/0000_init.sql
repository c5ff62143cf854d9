CREATE TABLE `clusters` (
	`name` text PRIMARY KEY NOT NULL,
	`cluster_name` text,
	`pve_version` text,
	`quorate` integer,
	`stale` integer DEFAULT false NOT NULL,
	`last_attempt_at` integer,
	`last_success_at` integer,
	`last_error` text,
	`consecutive_failures` integer DEFAULT 0 NOT NULL,
	`log_cursors` text,
	`last_sweep_at` integer,
	`last_run_id` integer
);
--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`type` text NOT NULL,
	`occurred_at` integer NOT NULL,
	`cluster` text,
	`subject_kind` text NOT NULL,
	`subject_id` text NOT NULL,
	`data` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_id_unique` ON `events` (`id`);--> statement-breakpoint
CREATE INDEX `events_time` ON `events` (`occurred_at`);--> statement-breakpoint
CREATE INDEX `events_subject` ON `events` (`subject_kind`,`subject_id`);--> statement-breakpoint
CREATE INDEX `events_type` ON `events` (`type`);--> statement-breakpoint
CREATE TABLE `guest_metrics` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`cpu` real,
	`mem` integer,
	`disk` integer,
	`uptime` integer,
	`netin` integer,
	`netout` integer,
	`diskread` integer,
	`diskwrite` integer,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `vmid`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guest_metrics_mem` ON `guest_metrics` (`mem`);--> statement-breakpoint
CREATE INDEX `guest_metrics_cpu` ON `guest_metrics` (`cpu`);--> statement-breakpoint
CREATE TABLE `guest_stats` (
	`cluster` text NOT NULL,
	`node` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`guests` integer NOT NULL,
	`templates` integer NOT NULL,
	`allocated_vcpus` real NOT NULL,
	`allocated_memory_bytes` integer NOT NULL,
	`used_memory_bytes` integer NOT NULL,
	PRIMARY KEY(`cluster`, `node`, `type`, `status`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `guest_tags` (
	`tag_key` text NOT NULL,
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`tag` text NOT NULL,
	PRIMARY KEY(`tag_key`, `cluster`, `vmid`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guest_tags_guest` ON `guest_tags` (`cluster`,`vmid`);--> statement-breakpoint
CREATE TABLE `guests` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`type` text NOT NULL,
	`node` text NOT NULL,
	`name` text,
	`status` text NOT NULL,
	`template` integer DEFAULT false NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL,
	`lock` text,
	`pool` text,
	`hastate` text,
	`maxcpu` real,
	`maxmem` integer,
	`maxdisk` integer,
	`cores` integer,
	`sockets` integer,
	`vcpus` integer,
	`memory_mib` integer,
	`balloon_mib` integer,
	`ostype` text,
	`onboot` integer,
	`agent` integer,
	`description` text,
	`disks` text,
	`nics` text,
	`config` text,
	`digest` text,
	`config_fetched_at` integer,
	`config_dirty` integer DEFAULT false NOT NULL,
	`stale` integer DEFAULT false NOT NULL,
	`last_seen_at` integer NOT NULL,
	`missing_count` integer DEFAULT 0 NOT NULL,
	`deleted_at` integer,
	`first_seen_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`sync_run` integer,
	PRIMARY KEY(`cluster`, `vmid`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guests_node` ON `guests` (`cluster`,`node`);--> statement-breakpoint
CREATE INDEX `guests_name` ON `guests` (lower("name"));--> statement-breakpoint
CREATE INDEX `guests_live_vmid` ON `guests` (`vmid`,`cluster`,`status`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_locked` ON `guests` (`lock`) WHERE "guests"."lock" IS NOT NULL;--> statement-breakpoint
CREATE TABLE `inventory_snapshots` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`taken_at` integer NOT NULL,
	`label` text,
	`guest_count` integer NOT NULL,
	`node_count` integer NOT NULL,
	`body` blob NOT NULL
);
--> statement-breakpoint
CREATE INDEX `snapshots_time` ON `inventory_snapshots` (`taken_at`);--> statement-breakpoint
CREATE TABLE `nodes` (
	`cluster` text NOT NULL,
	`node` text NOT NULL,
	`status` text NOT NULL,
	`online` integer NOT NULL,
	`stale` integer DEFAULT false NOT NULL,
	`last_seen_at` integer,
	`nodeid` integer,
	`ip` text,
	`level` text,
	`uptime` integer,
	`cpu` real,
	`maxcpu` integer,
	`mem` integer,
	`maxmem` integer,
	`disk` integer,
	`maxdisk` integer,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `node`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `pools` (
	`cluster` text NOT NULL,
	`pool` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `pool`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `storage` (
	`cluster` text NOT NULL,
	`node` text NOT NULL,
	`storage` text NOT NULL,
	`plugintype` text,
	`shared` integer NOT NULL,
	`content` text DEFAULT '[]' NOT NULL,
	`status` text NOT NULL,
	`disk` integer,
	`maxdisk` integer,
	`stale` integer DEFAULT false NOT NULL,
	`last_seen_at` integer,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `node`, `storage`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sync_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`cluster` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer NOT NULL,
	`duration_ms` integer NOT NULL,
	`ok` integer NOT NULL,
	`error` text,
	`calls` text NOT NULL,
	`calls_total` integer NOT NULL,
	`guests` integer DEFAULT 0 NOT NULL,
	`nodes` integer DEFAULT 0 NOT NULL,
	`configs_fetched` integer DEFAULT 0 NOT NULL,
	`changes` text DEFAULT '{}' NOT NULL,
	`warnings` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `sync_runs_cluster` ON `sync_runs` (`cluster`,`id`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`cluster` text NOT NULL,
	`upid` text NOT NULL,
	`node` text NOT NULL,
	`type` text NOT NULL,
	`object_id` text NOT NULL,
	`vmid` integer,
	`user` text NOT NULL,
	`starttime` integer NOT NULL,
	`endtime` integer,
	`exitstatus` text,
	`outcome` text NOT NULL,
	`seen_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `upid`),
	FOREIGN KEY (`cluster`) REFERENCES `clusters`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `tasks_vmid` ON `tasks` (`cluster`,`vmid`);--> statement-breakpoint
CREATE INDEX `tasks_start` ON `tasks` (`starttime`);