ALTER TABLE `collect_failures` ADD `first_failed_at` integer;--> statement-breakpoint
ALTER TABLE `collect_failures` ADD `given_up_at` integer;--> statement-breakpoint
-- Rows from before: a user with 3 failures was given up on then.
UPDATE `collect_failures` SET `given_up_at` = `updated_at` WHERE `attempts` >= 3;
