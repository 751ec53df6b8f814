CREATE TABLE `badges` (
	`user_id` text NOT NULL,
	`badge` text NOT NULL,
	`transaction_id` text NOT NULL,
	`awarded_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `badge`)
);
--> statement-breakpoint
CREATE TABLE `boost_purchases` (
	`transaction_id` text PRIMARY KEY NOT NULL,
	`stream_id` text NOT NULL,
	`buyer_id` text NOT NULL,
	`level` text NOT NULL,
	`price` integer NOT NULL,
	`multiplier_bps` integer NOT NULL,
	`starts_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `boost_purchases_level_expiry_idx` ON `boost_purchases` (`level`,`expires_at`);--> statement-breakpoint
CREATE INDEX `boost_purchases_stream_idx` ON `boost_purchases` (`stream_id`,`level`,`expires_at`);--> statement-breakpoint
CREATE INDEX `boost_purchases_expiry_idx` ON `boost_purchases` (`expires_at`);--> statement-breakpoint
CREATE TABLE `business_verifications` (
	`user_id` text PRIMARY KEY NOT NULL,
	`business_name` text NOT NULL,
	`license_number` text NOT NULL,
	`tax_id` text NOT NULL,
	`status` text NOT NULL,
	`submitted_at` integer NOT NULL,
	`reviewed_by` text,
	`reviewed_at` integer,
	`note` text
);
--> statement-breakpoint
CREATE INDEX `business_verifications_status_idx` ON `business_verifications` (`status`,`submitted_at`);--> statement-breakpoint
CREATE TABLE `gifts` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`coins` integer NOT NULL,
	`animation` text NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`sort_order` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "gift_coins_positive" CHECK("gifts"."coins" > 0)
);
--> statement-breakpoint
CREATE TABLE `live_gifts` (
	`transaction_id` text PRIMARY KEY NOT NULL,
	`stream_id` text NOT NULL,
	`sender_id` text NOT NULL,
	`streamer_id` text NOT NULL,
	`gift_id` text NOT NULL,
	`quantity` integer NOT NULL,
	`amount` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `live_gifts_stream_sender_idx` ON `live_gifts` (`stream_id`,`sender_id`);--> statement-breakpoint
CREATE INDEX `live_gifts_streamer_idx` ON `live_gifts` (`streamer_id`);--> statement-breakpoint
CREATE TABLE `live_streams` (
	`id` text PRIMARY KEY NOT NULL,
	`streamer_id` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `marketplace_orders` (
	`id` text PRIMARY KEY NOT NULL,
	`buyer_id` text NOT NULL,
	`seller_id` text NOT NULL,
	`product_id` text NOT NULL,
	`amount` integer NOT NULL,
	`tier` text NOT NULL,
	`commission_bps` integer NOT NULL,
	`processing_bps` integer NOT NULL,
	`affiliate_bps` integer NOT NULL,
	`seller_share` integer NOT NULL,
	`platform_share` integer NOT NULL,
	`processing_share` integer NOT NULL,
	`affiliate_share` integer NOT NULL,
	`affiliate_id` text,
	`referral_code` text,
	`status` text NOT NULL,
	`transaction_id` text NOT NULL,
	`release_due_at` integer NOT NULL,
	`released_at` integer,
	`released_by` text,
	`refunded_at` integer,
	`refunded_by` text,
	`refund_kind` text,
	`refund_amount` integer,
	`created_at` integer NOT NULL,
	CONSTRAINT "marketplace_order_split" CHECK("marketplace_orders"."seller_share" + "marketplace_orders"."platform_share" + "marketplace_orders"."processing_share" + "marketplace_orders"."affiliate_share" = "marketplace_orders"."amount")
);
--> statement-breakpoint
CREATE INDEX `marketplace_orders_seller_idx` ON `marketplace_orders` (`seller_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `marketplace_orders_buyer_idx` ON `marketplace_orders` (`buyer_id`,`id`);--> statement-breakpoint
CREATE INDEX `marketplace_orders_due_idx` ON `marketplace_orders` (`status`,`release_due_at`,`id`);--> statement-breakpoint
CREATE TABLE `referral_codes` (
	`code` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `referral_codes_user_uq` ON `referral_codes` (`user_id`);--> statement-breakpoint
CREATE TABLE `user_stats` (
	`user_id` text PRIMARY KEY NOT NULL,
	`gifts_received` integer DEFAULT 0 NOT NULL,
	`coins_earned` integer DEFAULT 0 NOT NULL,
	`boosts_bought` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
-- The gift catalogue's defaults (SPEC §10); admins change it through /api/admin/gifts.
INSERT INTO `gifts` (`id`, `name`, `coins`, `animation`, `active`, `sort_order`, `created_at`, `updated_at`) VALUES
  ('heart', 'Heart', 10, 'hearts-float', 1, 1, 0, 0),
  ('rose', 'Rose', 50, 'rose-bloom', 1, 2, 0, 0),
  ('diamond', 'Diamond', 500, 'diamond-sparkle', 1, 3, 0, 0),
  ('rocket', 'Rocket', 5000, 'rocket-launch', 1, 4, 0, 0);
--> statement-breakpoint
-- Marketplace escrow: sellers' and affiliates' shares wait here until release (never negative).
INSERT INTO `accounts` (`id`, `kind`, `owner_id`, `asset`, `balance`, `locked`, `allow_negative`, `created_at`) VALUES
  ('sys:marketplace_escrow:COIN', 'system', NULL, 'COIN', 0, 0, 0, 0);
