CREATE TABLE `activity_days` (
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`day`, `user_id`)
);
--> statement-breakpoint
CREATE TABLE `batch_runs` (
	`day` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`mode` text,
	`mu` real,
	`sigma` real,
	`population` integer,
	`params_source` text,
	`active_users` integer DEFAULT 0 NOT NULL,
	`queue_messages` integer DEFAULT 0 NOT NULL,
	`runs` integer DEFAULT 1 NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE TABLE `daily_activity` (
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`active_minutes` integer NOT NULL,
	`weighted_units` integer NOT NULL,
	`rbar` real NOT NULL,
	`campaign_units` text NOT NULL,
	`level` text,
	`z` real,
	`action` text,
	`classified_at` integer,
	PRIMARY KEY(`day`, `user_id`)
);
--> statement-breakpoint
CREATE INDEX `daily_activity_level_idx` ON `daily_activity` (`day`,`level`);--> statement-breakpoint
CREATE INDEX `daily_activity_rbar_idx` ON `daily_activity` (`day`,`rbar`);--> statement-breakpoint
CREATE TABLE `payouts` (
	`id` text PRIMARY KEY NOT NULL,
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`campaign_id` text NOT NULL,
	`advertiser_id` text NOT NULL,
	`units` integer NOT NULL,
	`amount_idr` integer NOT NULL,
	`fee_idr` integer NOT NULL,
	`status` text NOT NULL,
	`transaction_id` text,
	`decided_by` text,
	`decided_at` integer,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `payouts_day_user_campaign_uq` ON `payouts` (`day`,`user_id`,`campaign_id`);--> statement-breakpoint
CREATE INDEX `payouts_user_idx` ON `payouts` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `payouts_day_status_idx` ON `payouts` (`day`,`status`);--> statement-breakpoint
CREATE INDEX `payouts_advertiser_idx` ON `payouts` (`advertiser_id`,`day`);--> statement-breakpoint
CREATE TABLE `usage_invoices` (
	`id` text PRIMARY KEY NOT NULL,
	`advertiser_id` text NOT NULL,
	`month` text NOT NULL,
	`units` integer NOT NULL,
	`amount_idr` integer NOT NULL,
	`breakdown` text NOT NULL,
	`status` text NOT NULL,
	`transaction_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `usage_invoices_advertiser_month_uq` ON `usage_invoices` (`advertiser_id`,`month`);