CREATE TABLE `action_confirmations` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`request_hash` text NOT NULL,
	`principal` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer
);
--> statement-breakpoint
CREATE TABLE `actions` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`guest_type` text NOT NULL,
	`node` text NOT NULL,
	`guest_name` text,
	`params` text NOT NULL,
	`transport` text NOT NULL,
	`client` text,
	`principal` text NOT NULL,
	`idempotency_key` text,
	`state` text NOT NULL,
	`upid` text,
	`posted_at` integer,
	`exit_status` text,
	`reason` text,
	`task_log` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer
);
--> statement-breakpoint
CREATE INDEX `actions_state` ON `actions` (`state`,`created_at`);--> statement-breakpoint
CREATE INDEX `actions_created` ON `actions` (`created_at`);--> statement-breakpoint
CREATE INDEX `actions_guest` ON `actions` (`cluster`,`vmid`,`created_at`);--> statement-breakpoint
CREATE INDEX `actions_principal` ON `actions` (`principal`,`created_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `actions_idempotency` ON `actions` (`principal`,`idempotency_key`);--> statement-breakpoint
CREATE TABLE `guest_snapshots` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`name` text NOT NULL,
	`parent` text,
	`description` text,
	`snaptime` integer,
	`vmstate` integer DEFAULT false NOT NULL,
	`read_at` integer NOT NULL,
	PRIMARY KEY(`cluster`, `vmid`, `name`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`subscription_id` text NOT NULL,
	`event_seq` integer NOT NULL,
	`event_id` text NOT NULL,
	`event_type` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`last_status` integer,
	`last_error` text,
	`last_response` text,
	`created_at` integer NOT NULL,
	`finished_at` integer,
	FOREIGN KEY (`subscription_id`) REFERENCES `webhook_subscriptions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_event` ON `webhook_deliveries` (`subscription_id`,`event_seq`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_state` ON `webhook_deliveries` (`state`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_created` ON `webhook_deliveries` (`subscription_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `webhook_relay` (
	`id` integer PRIMARY KEY NOT NULL,
	`last_seq` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `webhook_subscriptions` (
	`id` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`description` text,
	`events` text NOT NULL,
	`cluster` text,
	`tag` text,
	`secret` text NOT NULL,
	`previous_secret` text,
	`previous_secret_until` integer,
	`version` integer DEFAULT 1 NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`disabled_reason` text,
	`source` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`last_success_at` integer,
	`failing_since` integer
);
--> statement-breakpoint
-- The relay starts at the history's end: a first subscription receives what happens from then on.
INSERT INTO `webhook_relay` (`id`, `last_seq`, `updated_at`) VALUES (1, coalesce((SELECT max(`seq`) FROM `events`), 0), 0);
