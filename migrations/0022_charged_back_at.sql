ALTER TABLE `payment_orders` ADD `charged_back_at` integer;--> statement-breakpoint
CREATE INDEX `payment_orders_charged_back_at_idx` ON `payment_orders` (`charged_back_at`);--> statement-breakpoint
-- Orders already charged back: the time of their first chargeback reversal (one pass over the refunds).
UPDATE `payment_orders` SET `charged_back_at` = cb.`first_at`
FROM (
  SELECT json_extract(`metadata`, '$.orderId') AS `order_id`, min(`created_at`) AS `first_at` FROM `transactions`
  WHERE `type` = 'refund' AND json_extract(`metadata`, '$.gatewayStatus') IN ('chargeback', 'partial_chargeback')
  GROUP BY 1
) AS cb
WHERE cb.`order_id` = `payment_orders`.`id` AND `payment_orders`.`charged_back_at` IS NULL;
--> statement-breakpoint
-- Charged back before they were credited (no reversal): when the order was marked refunded.
UPDATE `payment_orders` SET `charged_back_at` = `updated_at`
WHERE `status` = 'refunded' AND `gateway_status` LIKE '%chargeback%' AND `charged_back_at` IS NULL;
