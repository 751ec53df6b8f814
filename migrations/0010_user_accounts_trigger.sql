-- Custom migration: a user's accounts come into being with the user, so first sight is one statement.
-- Wallets may never go negative; recorded debt (what a reversal could not take) is the one user
-- account allowed below zero.
CREATE TRIGGER `users_open_accounts` AFTER INSERT ON `users`
BEGIN
  INSERT OR IGNORE INTO `accounts` (`id`, `kind`, `owner_id`, `asset`, `balance`, `locked`, `allow_negative`, `created_at`) VALUES
    ('usr:' || NEW.`id` || ':COIN', 'user_wallet', NEW.`id`, 'COIN', 0, 0, 0, NEW.`created_at`),
    ('usr:' || NEW.`id` || ':IDR', 'user_wallet', NEW.`id`, 'IDR', 0, 0, 0, NEW.`created_at`),
    ('debt:' || NEW.`id` || ':COIN', 'user_debt', NEW.`id`, 'COIN', 0, 0, 1, NEW.`created_at`),
    ('debt:' || NEW.`id` || ':IDR', 'user_debt', NEW.`id`, 'IDR', 0, 0, 1, NEW.`created_at`);
END;
--> statement-breakpoint
-- Users seen before this migration already have their accounts; any that lack one get it.
INSERT OR IGNORE INTO `accounts` (`id`, `kind`, `owner_id`, `asset`, `balance`, `locked`, `allow_negative`, `created_at`)
  SELECT 'usr:' || `id` || ':' || a.asset, 'user_wallet', `id`, a.asset, 0, 0, 0, `created_at` FROM `users`, (SELECT 'COIN' AS asset UNION ALL SELECT 'IDR') a
  UNION ALL
  SELECT 'debt:' || `id` || ':' || a.asset, 'user_debt', `id`, a.asset, 0, 0, 1, `created_at` FROM `users`, (SELECT 'COIN' AS asset UNION ALL SELECT 'IDR') a;
