ALTER TABLE `payment_orders` ADD `charged_back_at` integer;--> statement-breakpoint
CREATE INDEX `payment_orders_charged_back_at_idx` ON `payment_orders` (`charged_back_at`);--> statement-breakpoint
-- Orders already charged back: the time of their first chargeback reversal.
UPDATE `payment_orders` SET `charged_back_at` = (
  SELECT min(t.`created_at`) FROM `transactions` t
  WHERE t.`type` = 'refund' AND json_extract(t.`metadata`, '$.orderId') = `payment_orders`.`id`
    AND json_extract(t.`metadata`, '$.gatewayStatus') IN ('chargeback', 'partial_chargeback')
) WHERE `charged_back_at` IS NULL;
