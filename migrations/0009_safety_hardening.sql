CREATE TABLE `batch_guards` (
	`name` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `batch_runs` ADD `failed_chunks` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `fraud_alerts` ADD `dedupe_key` text;--> statement-breakpoint
CREATE INDEX `fraud_alerts_created_idx` ON `fraud_alerts` (`created_at`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `fraud_alerts_dedupe_uq` ON `fraud_alerts` (`dedupe_key`);--> statement-breakpoint
ALTER TABLE `kyc_submissions` ADD `key_id` text;--> statement-breakpoint
CREATE UNIQUE INDEX `kyc_one_pending_uq` ON `kyc_submissions` (`user_id`) WHERE "kyc_submissions"."status" = 'pending';--> statement-breakpoint
CREATE TABLE `__new_payment_orders` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`kind` text NOT NULL,
	`gateway` text NOT NULL,
	`package_id` text,
	`campaign_id` text,
	`amount_idr` integer NOT NULL,
	`coins` integer DEFAULT 0 NOT NULL,
	`bonus_coins` integer DEFAULT 0 NOT NULL,
	`status` text NOT NULL,
	`reversed_amount` integer DEFAULT 0 NOT NULL,
	`refunded_idr` integer DEFAULT 0 NOT NULL,
	`gateway_status` text,
	`gateway_ref` text,
	`redirect_url` text,
	`failure_reason` text,
	`device_fingerprint` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`paid_at` integer,
	`failed_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "payment_order_amount_positive" CHECK("__new_payment_orders"."amount_idr" > 0),
	CONSTRAINT "payment_order_reversal_bounded" CHECK("__new_payment_orders"."reversed_amount" >= 0 and "__new_payment_orders"."reversed_amount" <= (case when "__new_payment_orders"."kind" = 'coin_package' then "__new_payment_orders"."coins" + "__new_payment_orders"."bonus_coins" else "__new_payment_orders"."amount_idr" end) and "__new_payment_orders"."refunded_idr" >= 0 and "__new_payment_orders"."refunded_idr" <= "__new_payment_orders"."amount_idr")
);
--> statement-breakpoint
INSERT INTO `__new_payment_orders`("id", "user_id", "kind", "gateway", "package_id", "campaign_id", "amount_idr", "coins", "bonus_coins", "status", "reversed_amount", "refunded_idr", "gateway_status", "gateway_ref", "redirect_url", "failure_reason", "device_fingerprint", "created_at", "updated_at", "paid_at", "failed_at") SELECT "id", "user_id", "kind", "gateway", "package_id", "campaign_id", "amount_idr", "coins", "bonus_coins", "status", (case when "status" = 'reversed' then (case when "kind" = 'coin_package' then "coins" + "bonus_coins" else "amount_idr" end) else 0 end), (case when "status" = 'reversed' then "amount_idr" else 0 end), "gateway_status", "gateway_ref", "redirect_url", "failure_reason", "device_fingerprint", "created_at", "updated_at", "paid_at", "failed_at" FROM `payment_orders`;--> statement-breakpoint
DROP TABLE `payment_orders`;--> statement-breakpoint
ALTER TABLE `__new_payment_orders` RENAME TO `payment_orders`;--> statement-breakpoint
CREATE INDEX `payment_orders_user_idx` ON `payment_orders` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `payment_orders_failed_idx` ON `payment_orders` (`user_id`,`failed_at`);--> statement-breakpoint
ALTER TABLE `payouts` ADD `invoice_id` text;--> statement-breakpoint
CREATE INDEX `payouts_unbilled_idx` ON `payouts` (`advertiser_id`,`status`,`invoice_id`);--> statement-breakpoint
ALTER TABLE `users` ADD `total_deposited_coins` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `total_withdrawn_idr` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `withdraw_methods` ADD `usable_from` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `withdrawals` ADD `unconfirmed` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `withdrawals` ADD `next_check_at` integer;--> statement-breakpoint
ALTER TABLE `withdrawals` ADD `checks` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `withdrawals` ADD `resolved_by` text;--> statement-breakpoint
CREATE INDEX `withdrawals_due_idx` ON `withdrawals` (`status`,`next_check_at`,`id`);--> statement-breakpoint
-- Hand-written below (drizzle-kit cannot express triggers or backfills); the copy above was edited so
-- orders reversed before this migration count as fully reversed.
-- Guards: every row inserted into batch_guards aborts its batch, naming the guard.
CREATE TRIGGER `batch_guards_abort` BEFORE INSERT ON `batch_guards`
BEGIN SELECT RAISE(ABORT, 'guard:' || NEW.name); END;
--> statement-breakpoint
UPDATE `withdrawals` SET `next_check_at` = `created_at` + 1800000 WHERE `status` = 'pending';
--> statement-breakpoint
-- Balance totals become maintained counters (coins credited by deposits, gross rupiah of completed withdrawals).
UPDATE `users` SET
  `total_deposited_coins` = (SELECT coalesce(sum(json_extract(`metadata`, '$.coinsCredited')), 0) FROM `transactions` t WHERE t.`user_id` = `users`.`id` AND t.`type` = 'deposit' AND t.`status` = 'completed'),
  `total_withdrawn_idr` = (SELECT coalesce(sum(json_extract(`metadata`, '$.grossIdr')), 0) FROM `transactions` t WHERE t.`user_id` = `users`.`id` AND t.`type` = 'withdraw' AND t.`status` = 'completed');
