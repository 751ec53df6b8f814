-- totalDeposited counts coins credited by deposits less what their refunds and chargebacks took back;
-- before this, reversals did not lower it. Recomputed once from the orders (coin packages only).
UPDATE `users` SET `total_deposited_coins` = (
  SELECT coalesce(sum(`coins` + `bonus_coins` - `reversed_amount`), 0) FROM `payment_orders`
  WHERE `payment_orders`.`user_id` = `users`.`id` AND `kind` = 'coin_package' AND `status` IN ('paid', 'reversed')
);
