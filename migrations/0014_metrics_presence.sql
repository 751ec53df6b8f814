CREATE TABLE `daily_metrics` (
	`day` text PRIMARY KEY NOT NULL,
	`new_users` integer NOT NULL,
	`new_payers` integer NOT NULL,
	`orders_final` integer NOT NULL,
	`orders_paid` integer NOT NULL,
	`latency` text NOT NULL,
	`flagged_transactions` integer NOT NULL,
	`chargebacks` integer NOT NULL,
	`freezes` integer NOT NULL,
	`bans` integer NOT NULL,
	`computed_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `metric_user_days` (
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`active` integer NOT NULL,
	`paid` integer NOT NULL,
	`revenue_idr` integer NOT NULL,
	`earned_idr` integer NOT NULL,
	PRIMARY KEY(`day`, `user_id`)
);
--> statement-breakpoint
CREATE TABLE `realtime_presence` (
	`user_id` text PRIMARY KEY NOT NULL,
	`connected` integer NOT NULL,
	`last_seen` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `users` ADD `first_paid_at` integer;--> statement-breakpoint
CREATE INDEX `users_created_idx` ON `users` (`created_at`);--> statement-breakpoint
CREATE INDEX `users_first_paid_idx` ON `users` (`first_paid_at`);--> statement-breakpoint
CREATE INDEX `fraud_alerts_reviewed_idx` ON `fraud_alerts` (`reviewed_at`);--> statement-breakpoint
CREATE INDEX `payment_orders_paid_at_idx` ON `payment_orders` (`paid_at`);--> statement-breakpoint
CREATE INDEX `payment_orders_failed_at_idx` ON `payment_orders` (`failed_at`);--> statement-breakpoint
-- Users who paid before this migration: their first settled deposit.
UPDATE `users` SET `first_paid_at` = (SELECT min(`paid_at`) FROM `payment_orders` WHERE `payment_orders`.`user_id` = `users`.`id` AND `paid_at` IS NOT NULL) WHERE `first_paid_at` IS NULL;
