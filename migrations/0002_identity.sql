ALTER TABLE `clusters` ADD `identity` text;--> statement-breakpoint
ALTER TABLE `clusters` ADD `identity_changed` text;--> statement-breakpoint
ALTER TABLE `guests` ADD `incarnation` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `guests` ADD `incarnation_since` integer;