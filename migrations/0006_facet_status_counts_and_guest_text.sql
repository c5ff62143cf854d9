PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_guest_facet_counts` (
	`cluster` text NOT NULL,
	`facet` text NOT NULL,
	`value` text NOT NULL,
	`status` text NOT NULL,
	`guests` integer NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`cluster`, `facet`, `value`, `status`)
);
--> statement-breakpoint
-- Written by drizzle-kit, then corrected by hand: it copied a `status` the old table does not have.
-- The counts are taken again from the facet rows, per status now (a stale guest's is 'unknown', as
-- its status facet row says), as store/guest-parts.ts keeps them.
INSERT INTO `__new_guest_facet_counts` (`cluster`, `facet`, `value`, `status`, `guests`, `bytes`)
SELECT `cluster`, `facet`, coalesce(`value`, ''), CASE WHEN `stale` THEN 'unknown' ELSE `status` END, count(*), coalesce(sum(`bytes`), 0)
FROM `guest_facets` GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
DROP TABLE `guest_facet_counts`;--> statement-breakpoint
ALTER TABLE `__new_guest_facet_counts` RENAME TO `guest_facet_counts`;--> statement-breakpoint
PRAGMA foreign_keys=ON;
--> statement-breakpoint
-- Hand-written (drizzle does not model virtual tables or triggers): search_inventory's words. A
-- trigram index of each guest row's name, tags (their values, one a line), description and disk
-- volume names (one a line, from the disks JSON guest_disks is derived from), keyed
-- by the guest row's rowid, which an upsert keeps (and VACUUM copies). Contentless: the text stays
-- on the guest row, the index holds only what finds it; contentless_delete lets the triggers drop
-- a row by its rowid. Kept by triggers, so every write path of guest rows keeps it (the sync, the
-- read-back after an action, a reset's tombstones, retention).
CREATE VIRTUAL TABLE `guest_text` USING fts5(`name`, `tags`, `description`, `volumes`, tokenize = 'trigram', content = '', contentless_delete = 1);
--> statement-breakpoint
CREATE TRIGGER `guest_text_insert` AFTER INSERT ON `guests` BEGIN
	INSERT INTO `guest_text` (`rowid`, `name`, `tags`, `description`, `volumes`) VALUES (new.`rowid`, new.`name`,
		(SELECT group_concat(`value`, char(10)) FROM json_each(CASE WHEN json_valid(new.`tags`) THEN new.`tags` ELSE '[]' END)),
		new.`description`,
		(SELECT group_concat(json_extract(`value`, '$.volume'), char(10)) FROM json_each(CASE WHEN json_valid(new.`disks`) THEN new.`disks` ELSE '[]' END)));
END;
--> statement-breakpoint
CREATE TRIGGER `guest_text_update` AFTER UPDATE OF `name`, `tags`, `description`, `disks` ON `guests`
WHEN old.`name` IS NOT new.`name` OR old.`tags` IS NOT new.`tags` OR old.`description` IS NOT new.`description`
	OR old.`disks` IS NOT new.`disks` BEGIN
	DELETE FROM `guest_text` WHERE `rowid` = old.`rowid`;
	INSERT INTO `guest_text` (`rowid`, `name`, `tags`, `description`, `volumes`) VALUES (new.`rowid`, new.`name`,
		(SELECT group_concat(`value`, char(10)) FROM json_each(CASE WHEN json_valid(new.`tags`) THEN new.`tags` ELSE '[]' END)),
		new.`description`,
		(SELECT group_concat(json_extract(`value`, '$.volume'), char(10)) FROM json_each(CASE WHEN json_valid(new.`disks`) THEN new.`disks` ELSE '[]' END)));
END;
--> statement-breakpoint
CREATE TRIGGER `guest_text_delete` AFTER DELETE ON `guests` BEGIN
	DELETE FROM `guest_text` WHERE `rowid` = old.`rowid`;
END;
--> statement-breakpoint
INSERT INTO `guest_text` (`rowid`, `name`, `tags`, `description`, `volumes`)
SELECT `rowid`, `name`, (SELECT group_concat(`value`, char(10)) FROM json_each(CASE WHEN json_valid(`tags`) THEN `tags` ELSE '[]' END)), `description`,
	(SELECT group_concat(json_extract(`value`, '$.volume'), char(10)) FROM json_each(CASE WHEN json_valid(`disks`) THEN `disks` ELSE '[]' END))
FROM `guests`;
