-- Custom migration: recorded debt is settled first (SPEC §9). Right after a movement that credits a
-- user's wallet, the executor inserts a `debt_settlement` transaction row, sized by SQL from the debt
-- at commit time and only when the debt is open (metadata names the wallet and the debt account).
-- This trigger applies it in the same statement: wallet − amount, debt + amount, and its two postings.
-- A credit to a user without debt costs one statement that inserts nothing.
CREATE TRIGGER `debt_settlement_apply` AFTER INSERT ON `transactions`
WHEN NEW.`type` = 'debt_settlement'
BEGIN
  UPDATE `accounts` SET `balance` = `balance` - NEW.`amount` WHERE `id` = json_extract(NEW.`metadata`, '$.wallet');
  UPDATE `accounts` SET `balance` = `balance` + NEW.`amount` WHERE `id` = json_extract(NEW.`metadata`, '$.debtAccount');
  INSERT INTO `postings` (`transaction_id`, `account_id`, `asset`, `amount`, `balance_after`, `created_at`)
    SELECT NEW.`id`, a.`id`, NEW.`asset`, CASE WHEN a.`id` = json_extract(NEW.`metadata`, '$.wallet') THEN -NEW.`amount` ELSE NEW.`amount` END, a.`balance`, NEW.`created_at`
    FROM `accounts` a WHERE a.`id` IN (json_extract(NEW.`metadata`, '$.wallet'), json_extract(NEW.`metadata`, '$.debtAccount'));
END;
