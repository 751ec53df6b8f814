ALTER TABLE `batch_runs` ADD `signal_params` text;--> statement-breakpoint
ALTER TABLE `daily_activity` ADD `active_hours` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `daily_activity` ADD `rate_dispersion` real;--> statement-breakpoint
ALTER TABLE `daily_activity` ADD `cadence` real;--> statement-breakpoint
ALTER TABLE `daily_activity` ADD `signal_z` text;--> statement-breakpoint
ALTER TABLE `daily_activity` ADD `decided_by` text;--> statement-breakpoint
ALTER TABLE `payouts` ADD `capped_idr` integer DEFAULT 0 NOT NULL;