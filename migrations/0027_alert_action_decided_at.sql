ALTER TABLE `fraud_alerts` ADD `action_decided_at` integer;--> statement-breakpoint
CREATE INDEX `fraud_alerts_action_decided_idx` ON `fraud_alerts` (`action_decided_at`);--> statement-breakpoint
-- Until now the day of a decision was read as the last review's (or the alert's own) time.
UPDATE `fraud_alerts` SET `action_decided_at` = coalesce(`reviewed_at`, `created_at`) WHERE `action_taken` IS NOT NULL;
