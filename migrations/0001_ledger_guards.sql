-- Custom migration (drizzle-kit generate --custom): what the schema DSL cannot say.

-- The audit log is append-only.
CREATE TRIGGER `audit_log_no_update` BEFORE UPDATE ON `audit_log`
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_log_no_delete` BEFORE DELETE ON `audit_log`
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
--> statement-breakpoint
-- Postings are immutable once written.
CREATE TRIGGER `postings_no_update` BEFORE UPDATE ON `postings`
BEGIN SELECT RAISE(ABORT, 'postings are immutable'); END;
--> statement-breakpoint
CREATE TRIGGER `postings_no_delete` BEFORE DELETE ON `postings`
BEGIN SELECT RAISE(ABORT, 'postings are immutable'); END;
--> statement-breakpoint
-- System accounts. Issuance, clearing and adjustment accounts are the other side of value entering
-- or leaving the platform and may be negative; revenue, fee and tax accounts only ever receive.
INSERT INTO `accounts` (`id`, `kind`, `owner_id`, `asset`, `balance`, `locked`, `allow_negative`, `created_at`) VALUES
  ('sys:issuance:COIN', 'system', NULL, 'COIN', 0, 0, 1, 0),
  ('sys:issuance:IDR', 'system', NULL, 'IDR', 0, 0, 1, 0),
  ('sys:gateway_clearing:COIN', 'system', NULL, 'COIN', 0, 0, 1, 0),
  ('sys:gateway_clearing:IDR', 'system', NULL, 'IDR', 0, 0, 1, 0),
  ('sys:payout_clearing:COIN', 'system', NULL, 'COIN', 0, 0, 1, 0),
  ('sys:payout_clearing:IDR', 'system', NULL, 'IDR', 0, 0, 1, 0),
  ('sys:adjustments:COIN', 'system', NULL, 'COIN', 0, 0, 1, 0),
  ('sys:adjustments:IDR', 'system', NULL, 'IDR', 0, 0, 1, 0),
  ('sys:platform_revenue:COIN', 'system', NULL, 'COIN', 0, 0, 0, 0),
  ('sys:platform_revenue:IDR', 'system', NULL, 'IDR', 0, 0, 0, 0),
  ('sys:processing_fees:COIN', 'system', NULL, 'COIN', 0, 0, 0, 0),
  ('sys:processing_fees:IDR', 'system', NULL, 'IDR', 0, 0, 0, 0),
  ('sys:tax_payable:COIN', 'system', NULL, 'COIN', 0, 0, 0, 0),
  ('sys:tax_payable:IDR', 'system', NULL, 'IDR', 0, 0, 0, 0),
  ('sys:boost_revenue:COIN', 'system', NULL, 'COIN', 0, 0, 0, 0),
  ('sys:boost_revenue:IDR', 'system', NULL, 'IDR', 0, 0, 0, 0);
