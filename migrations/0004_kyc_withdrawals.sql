CREATE TABLE `kyc_submissions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`id_type` text NOT NULL,
	`id_number_encrypted` text NOT NULL,
	`id_number_last4` text NOT NULL,
	`id_photo_key` text NOT NULL,
	`id_photo_type` text NOT NULL,
	`selfie_photo_key` text NOT NULL,
	`selfie_photo_type` text NOT NULL,
	`status` text NOT NULL,
	`reason` text,
	`submitted_at` integer NOT NULL,
	`reviewed_at` integer,
	`reviewed_by` text,
	`photos_deleted_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `kyc_user_idx` ON `kyc_submissions` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `kyc_status_idx` ON `kyc_submissions` (`status`,`id`);--> statement-breakpoint
CREATE TABLE `withdraw_methods` (
	`user_id` text PRIMARY KEY NOT NULL,
	`bank_name` text NOT NULL,
	`account_number` text NOT NULL,
	`account_name` text NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `withdrawals` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`asset` text NOT NULL,
	`amount` integer NOT NULL,
	`gross_idr` integer NOT NULL,
	`platform_fee_idr` integer NOT NULL,
	`tax_idr` integer NOT NULL,
	`net_idr` integer NOT NULL,
	`status` text NOT NULL,
	`hold_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`iris_reference` text,
	`bank_name` text NOT NULL,
	`account_number` text NOT NULL,
	`account_name` text NOT NULL,
	`failure_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`completed_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "withdrawal_split" CHECK("withdrawals"."platform_fee_idr" + "withdrawals"."tax_idr" + "withdrawals"."net_idr" = "withdrawals"."gross_idr")
);
--> statement-breakpoint
CREATE INDEX `withdrawals_user_idx` ON `withdrawals` (`user_id`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `withdrawals_iris_reference_uq` ON `withdrawals` (`iris_reference`);--> statement-breakpoint
CREATE INDEX `withdrawals_status_idx` ON `withdrawals` (`status`,`created_at`);