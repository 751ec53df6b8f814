ALTER TABLE `withdrawals` ADD `clearance_alert_id` text;--> statement-breakpoint
CREATE INDEX `withdrawals_clearance_idx` ON `withdrawals` (`clearance_alert_id`);