CREATE TABLE `collect_failures` (
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`attempts` integer NOT NULL,
	`last_error` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`day`, `user_id`)
);
