-- Written by drizzle-kit, then corrected by hand: it split each coalesce(…, -1) at its comma into two quoted columns.
CREATE INDEX `guests_live_maxcpu` ON `guests` (coalesce("maxcpu", -1),`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_maxcpu_desc` ON `guests` (coalesce("maxcpu", -1) DESC,`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_maxdisk` ON `guests` (coalesce("maxdisk", -1),`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_maxdisk_desc` ON `guests` (coalesce("maxdisk", -1) DESC,`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_name_sort` ON `guests` (lower(coalesce("name", '')),`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_name_sort_desc` ON `guests` (lower(coalesce("name", '')) DESC,`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_node` ON `guests` ("node",`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;--> statement-breakpoint
CREATE INDEX `guests_live_node_desc` ON `guests` ("node" DESC,`cluster`,`vmid`) WHERE "guests"."deleted_at" IS NULL;
