CREATE TABLE `campaigns` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`name` text NOT NULL,
	`rate_fee_idr` integer,
	`status` text DEFAULT 'active' NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`owner_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `campaigns_owner_idx` ON `campaigns` (`owner_id`,`id`);--> statement-breakpoint
CREATE TABLE `coin_packages` (
	`id` text PRIMARY KEY NOT NULL,
	`coins` integer NOT NULL,
	`price` integer NOT NULL,
	`bonus_coins` integer DEFAULT 0 NOT NULL,
	`currency` text DEFAULT 'IDR' NOT NULL,
	`is_active` integer DEFAULT true NOT NULL,
	`display_order` integer NOT NULL,
	`badge` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "coin_package_amounts" CHECK("coin_packages"."coins" > 0 and "coin_packages"."price" > 0 and "coin_packages"."bonus_coins" >= 0)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `coin_packages_display_order_uq` ON `coin_packages` (`display_order`);--> statement-breakpoint
CREATE TABLE `fraud_alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text,
	`alert_type` text NOT NULL,
	`severity` text NOT NULL,
	`details` text DEFAULT '{}' NOT NULL,
	`device_fingerprint` text,
	`status` text DEFAULT 'open' NOT NULL,
	`action_taken` text,
	`reviewed_by` text,
	`reviewed_at` integer,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `fraud_alerts_user_idx` ON `fraud_alerts` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `fraud_alerts_type_idx` ON `fraud_alerts` (`alert_type`,`id`);--> statement-breakpoint
CREATE TABLE `payment_notifications` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`gateway` text NOT NULL,
	`order_id` text NOT NULL,
	`status` text NOT NULL,
	`outcome` text NOT NULL,
	`payload` text NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `payment_notifications_order_idx` ON `payment_notifications` (`order_id`);--> statement-breakpoint
CREATE TABLE `payment_orders` (
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
	`gateway_status` text,
	`gateway_ref` text,
	`redirect_url` text,
	`failure_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`paid_at` integer,
	`failed_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "payment_order_amount_positive" CHECK("payment_orders"."amount_idr" > 0)
);
--> statement-breakpoint
CREATE INDEX `payment_orders_user_idx` ON `payment_orders` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `payment_orders_failed_idx` ON `payment_orders` (`user_id`,`failed_at`);