ALTER TABLE `clusters` ADD `signal_problems` text;--> statement-breakpoint
CREATE INDEX `sync_runs_cluster_ok` ON `sync_runs` (`cluster`,`ok`,`id`);