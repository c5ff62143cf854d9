CREATE TABLE `guest_addresses` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`nic` text NOT NULL,
	`address` text NOT NULL,
	`prefix_length` integer,
	`family` integer NOT NULL,
	`mac` text,
	PRIMARY KEY(`cluster`, `vmid`, `nic`, `address`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guest_addresses_address` ON `guest_addresses` (`address`);--> statement-breakpoint
CREATE TABLE `guest_disks` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`key` text NOT NULL,
	`storage` text,
	`volume` text NOT NULL,
	`size_bytes` integer,
	`media` text,
	PRIMARY KEY(`cluster`, `vmid`, `key`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `guest_facet_counts` (
	`cluster` text NOT NULL,
	`facet` text NOT NULL,
	`value` text NOT NULL,
	`guests` integer NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`cluster`, `facet`, `value`)
);
--> statement-breakpoint
CREATE TABLE `guest_facets` (
	`facet` text NOT NULL,
	`value` text,
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`node` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`stale` integer NOT NULL,
	`template` integer NOT NULL,
	`pool` text,
	`ostype` text,
	`onboot` integer,
	`protection` integer,
	`agent` integer,
	`snapshots` integer NOT NULL,
	`bytes` integer,
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guest_facets_guest` ON `guest_facets` (`cluster`,`vmid`,`facet`,`value`,`bytes`);--> statement-breakpoint
CREATE TABLE `guest_nics` (
	`cluster` text NOT NULL,
	`vmid` integer NOT NULL,
	`key` text NOT NULL,
	`bridge` text,
	`vlan` integer,
	`mac` text,
	`model` text,
	`firewall` integer NOT NULL,
	PRIMARY KEY(`cluster`, `vmid`, `key`),
	FOREIGN KEY (`cluster`,`vmid`) REFERENCES `guests`(`cluster`,`vmid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guest_nics_mac` ON `guest_nics` (`mac`);--> statement-breakpoint
ALTER TABLE `guests` ADD `protection` integer;--> statement-breakpoint
ALTER TABLE `guests` ADD `snapshot_parent` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `loadavg1` real;--> statement-breakpoint
ALTER TABLE `nodes` ADD `loadavg5` real;--> statement-breakpoint
ALTER TABLE `nodes` ADD `loadavg15` real;--> statement-breakpoint
ALTER TABLE `nodes` ADD `kernel` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `pve_version` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `ksm_shared_bytes` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `swap_total_bytes` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `swap_used_bytes` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `cpu_model` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `cpu_sockets` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `cpu_cores` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `status_read_at` integer;
--> statement-breakpoint
-- Backfill: an upgraded inventory answers the new filters at once, not after the sweep re-reads every
-- config. The rows are derived from the JSON the guest rows already hold, as store/guest-parts.ts
-- derives them for the sync (test/store/facts-backfill.test.ts compares the two).
UPDATE `guests` SET
	`protection` = (coalesce(json_extract(`config`, '$.protection'), '') = '1'),
	`snapshot_parent` = nullif(json_extract(`config`, '$.parent'), '')
WHERE `config` IS NOT NULL AND json_valid(`config`) AND json_type(`config`) = 'object';
--> statement-breakpoint
INSERT INTO `guest_disks` (`cluster`, `vmid`, `key`, `storage`, `volume`, `size_bytes`, `media`)
SELECT g.`cluster`, g.`vmid`, json_extract(d.value, '$.key'), json_extract(d.value, '$.storage'),
	coalesce(json_extract(d.value, '$.volume'), ''), json_extract(d.value, '$.sizeBytes'), json_extract(d.value, '$.media')
FROM `guests` g, json_each(CASE WHEN json_valid(g.`disks`) AND json_type(g.`disks`) = 'array' THEN g.`disks` ELSE '[]' END) d
WHERE g.`deleted_at` IS NULL AND d.type = 'object';
--> statement-breakpoint
INSERT INTO `guest_nics` (`cluster`, `vmid`, `key`, `bridge`, `vlan`, `mac`, `model`, `firewall`)
SELECT g.`cluster`, g.`vmid`, json_extract(n.value, '$.key'), json_extract(n.value, '$.bridge'), json_extract(n.value, '$.vlan'),
	json_extract(n.value, '$.mac'), json_extract(n.value, '$.model'), CASE WHEN json_extract(n.value, '$.firewall') THEN 1 ELSE 0 END
FROM `guests` g, json_each(CASE WHEN json_valid(g.`nics`) AND json_type(g.`nics`) = 'array' THEN g.`nics` ELSE '[]' END) n
WHERE g.`deleted_at` IS NULL AND n.type = 'object';
--> statement-breakpoint
INSERT INTO `guest_addresses` (`cluster`, `vmid`, `nic`, `address`, `prefix_length`, `family`, `mac`)
SELECT `cluster`, `vmid`, `nic`, `address`,
	CASE WHEN `length` <> '' AND `length` NOT GLOB '*[^0-9]*' THEN CAST(`length` AS INTEGER) END,
	CASE WHEN instr(`address`, ':') > 0 THEN 6 ELSE 4 END, `mac`
FROM (
	SELECT g.`cluster`, g.`vmid`, json_extract(n.value, '$.key') AS `nic`, json_extract(n.value, '$.mac') AS `mac`,
		lower(CASE WHEN instr(a.value, '/') > 0 THEN substr(a.value, 1, instr(a.value, '/') - 1) ELSE a.value END) AS `address`,
		CASE WHEN instr(a.value, '/') > 0 THEN substr(a.value, instr(a.value, '/') + 1) ELSE '' END AS `length`
	FROM `guests` g,
		json_each(CASE WHEN json_valid(g.`nics`) AND json_type(g.`nics`) = 'array' THEN g.`nics` ELSE '[]' END) n,
		json_each(json_array(json_extract(n.value, '$.ip'), json_extract(n.value, '$.ip6'))) a
	WHERE g.`deleted_at` IS NULL AND n.type = 'object' AND a.type = 'text' AND a.value <> ''
);
--> statement-breakpoint
INSERT INTO `guest_facets` (`facet`, `value`, `cluster`, `vmid`, `node`, `type`, `status`, `stale`, `template`, `pool`, `ostype`,
	`onboot`, `protection`, `agent`, `snapshots`, `bytes`)
SELECT f.`facet`,
	CASE f.`facet`
		WHEN 'node' THEN g.`node`
		WHEN 'type' THEN g.`type`
		WHEN 'status' THEN CASE WHEN g.`stale` THEN 'unknown' ELSE g.`status` END
		WHEN 'pool' THEN g.`pool`
		WHEN 'ostype' THEN g.`ostype`
		ELSE CASE WHEN g.`template` THEN '1' ELSE '0' END
	END,
	g.`cluster`, g.`vmid`, g.`node`, g.`type`, g.`status`, g.`stale`, g.`template`, g.`pool`, g.`ostype`,
	g.`onboot`, g.`protection`, g.`agent`, g.`snapshot_parent` IS NOT NULL, f.`bytes`
FROM `guests` g, (
	SELECT 'node' AS `facet`, NULL AS `value`, NULL AS `bytes` UNION ALL SELECT 'type', NULL, NULL UNION ALL SELECT 'status', NULL, NULL
	UNION ALL SELECT 'pool', NULL, NULL UNION ALL SELECT 'ostype', NULL, NULL UNION ALL SELECT 'template', NULL, NULL
) f
WHERE g.`deleted_at` IS NULL;
--> statement-breakpoint
INSERT INTO `guest_facets` (`facet`, `value`, `cluster`, `vmid`, `node`, `type`, `status`, `stale`, `template`, `pool`, `ostype`,
	`onboot`, `protection`, `agent`, `snapshots`, `bytes`)
SELECT f.`facet`, f.`value`, g.`cluster`, g.`vmid`, g.`node`, g.`type`, g.`status`, g.`stale`, g.`template`, g.`pool`, g.`ostype`,
	g.`onboot`, g.`protection`, g.`agent`, g.`snapshot_parent` IS NOT NULL, f.`bytes`
FROM `guests` g, (
	SELECT DISTINCT j.`cluster`, j.`vmid`, 'tag' AS `facet`, lower(t.value) AS `value`, NULL AS `bytes`
	FROM `guests` j, json_each(CASE WHEN json_valid(j.`tags`) AND json_type(j.`tags`) = 'array' THEN j.`tags` ELSE '[]' END) t
	WHERE j.`deleted_at` IS NULL AND t.type = 'text' AND t.value <> ''
	UNION ALL
	SELECT `cluster`, `vmid`, 'storage', `storage`, sum(CASE WHEN coalesce(`media`, '') <> 'cdrom' THEN `size_bytes` END)
	FROM `guest_disks` WHERE `storage` <> '' GROUP BY 1, 2, 3, 4
	UNION ALL
	SELECT DISTINCT `cluster`, `vmid`, 'bridge', `bridge`, NULL FROM `guest_nics` WHERE `bridge` <> ''
	UNION ALL
	SELECT DISTINCT `cluster`, `vmid`, 'vlan', CAST(`vlan` AS TEXT), NULL FROM `guest_nics` WHERE `vlan` IS NOT NULL
) f
WHERE g.`cluster` = f.`cluster` AND g.`vmid` = f.`vmid`;
--> statement-breakpoint
-- None: a row with a null value, so that every guest is in each facet at least once.
INSERT INTO `guest_facets` (`facet`, `value`, `cluster`, `vmid`, `node`, `type`, `status`, `stale`, `template`, `pool`, `ostype`,
	`onboot`, `protection`, `agent`, `snapshots`, `bytes`)
SELECT f.`facet`, f.`value`, g.`cluster`, g.`vmid`, g.`node`, g.`type`, g.`status`, g.`stale`, g.`template`, g.`pool`, g.`ostype`,
	g.`onboot`, g.`protection`, g.`agent`, g.`snapshot_parent` IS NOT NULL, f.`bytes`
FROM `guests` g, (
	SELECT 'tag' AS `facet`, NULL AS `value`, NULL AS `bytes` UNION ALL SELECT 'storage', NULL, NULL
	UNION ALL SELECT 'bridge', NULL, NULL UNION ALL SELECT 'vlan', NULL, NULL
) f
WHERE g.`deleted_at` IS NULL
	AND NOT EXISTS (SELECT 1 FROM `guest_facets` x WHERE x.`cluster` = g.`cluster` AND x.`vmid` = g.`vmid` AND x.`facet` = f.`facet`);
--> statement-breakpoint
CREATE INDEX `guest_facets_value` ON `guest_facets` (`facet`,`value`,`vmid`,`cluster`,`node`,`type`,`status`,`stale`,`template`,`pool`,`ostype`,`onboot`,`protection`,`agent`,`snapshots`,`bytes`);
--> statement-breakpoint
CREATE INDEX `guest_facets_listing` ON `guest_facets` (`vmid`,`cluster`,`node`,`type`,`status`,`stale`,`template`,`pool`,`ostype`,`onboot`,`protection`,`agent`,`snapshots`) WHERE "guest_facets"."facet" = 'type';
--> statement-breakpoint
INSERT INTO `guest_facet_counts` (`cluster`, `facet`, `value`, `guests`, `bytes`)
SELECT `cluster`, `facet`, coalesce(`value`, ''), count(*), coalesce(sum(`bytes`), 0) FROM `guest_facets` GROUP BY 1, 2, 3;
