CREATE TABLE `content_items` (
	`id` text PRIMARY KEY NOT NULL,
	`creator_id` text NOT NULL,
	`price` integer NOT NULL,
	`status` text DEFAULT 'available' NOT NULL,
	`purchase_count` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "content_price_positive" CHECK("content_items"."price" > 0)
);
--> statement-breakpoint
CREATE INDEX `content_items_creator_idx` ON `content_items` (`creator_id`,`id`);--> statement-breakpoint
CREATE TABLE `content_purchases` (
	`id` text PRIMARY KEY NOT NULL,
	`content_id` text NOT NULL,
	`buyer_id` text NOT NULL,
	`creator_id` text NOT NULL,
	`price` integer NOT NULL,
	`creator_share` integer NOT NULL,
	`platform_share` integer NOT NULL,
	`processing_share` integer NOT NULL,
	`transaction_id` text NOT NULL,
	`purchased_at` integer NOT NULL,
	`refunded_at` integer,
	`refund_kind` text,
	`refund_amount` integer,
	`refund_transaction_id` text,
	CONSTRAINT "content_purchase_split" CHECK("content_purchases"."creator_share" + "content_purchases"."platform_share" + "content_purchases"."processing_share" = "content_purchases"."price")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `content_purchases_live_uq` ON `content_purchases` (`content_id`,`buyer_id`) WHERE "content_purchases"."refunded_at" is null;--> statement-breakpoint
CREATE INDEX `content_purchases_content_idx` ON `content_purchases` (`content_id`,`id`);--> statement-breakpoint
CREATE INDEX `content_purchases_buyer_idx` ON `content_purchases` (`buyer_id`,`id`);--> statement-breakpoint
CREATE TABLE `content_refund_runs` (
	`content_id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`reason` text NOT NULL,
	`requested_by` text NOT NULL,
	`purchases` integer NOT NULL,
	`queue_messages` integer DEFAULT 0 NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer
);
