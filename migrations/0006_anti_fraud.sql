CREATE TABLE `device_accounts` (
	`fingerprint` text NOT NULL,
	`user_id` text NOT NULL,
	`user_agent` text,
	`ip` text,
	`screen` text,
	`timezone` text,
	`first_seen` integer NOT NULL,
	`last_seen` integer NOT NULL,
	PRIMARY KEY(`fingerprint`, `user_id`)
);
--> statement-breakpoint
CREATE TABLE `fraud_whitelist` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text,
	`device_fingerprint` text,
	`reason` text NOT NULL,
	`expires_at` integer,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `fraud_whitelist_user_idx` ON `fraud_whitelist` (`user_id`);--> statement-breakpoint
CREATE INDEX `fraud_whitelist_device_idx` ON `fraud_whitelist` (`device_fingerprint`);--> statement-breakpoint
CREATE TABLE `spend_counters` (
	`user_id` text NOT NULL,
	`day` text NOT NULL,
	`spent_idr` integer NOT NULL,
	`limit_idr` integer NOT NULL,
	PRIMARY KEY(`user_id`, `day`),
	CONSTRAINT "spend_limit_daily" CHECK("spend_counters"."spent_idr" <= "spend_counters"."limit_idr")
);
--> statement-breakpoint
ALTER TABLE `users` ADD `verification_required` integer DEFAULT false NOT NULL;