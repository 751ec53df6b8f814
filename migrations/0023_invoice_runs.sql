CREATE TABLE `invoice_runs` (
	`month` text PRIMARY KEY NOT NULL,
	`ran_at` integer NOT NULL
);
--> statement-breakpoint
-- Months already invoiced before runs were recorded.
INSERT OR IGNORE INTO `invoice_runs` (`month`, `ran_at`) SELECT `month`, min(`created_at`) FROM `usage_invoices` GROUP BY `month`;
