/** Cron expressions as declared in wrangler.toml [triggers]; the Worker entry may only export handlers. */
/** 00:15 WIB: after the 10-minute window in which activity of the day that just ended may still be reported. */
export const DAILY_BATCH_CRON = "15 17 * * *";
/** 12:00 WIB on the 1st: hours after the last day's batch, which the job also checks has finished. */
export const MONTHLY_BILLING_CRON = "0 5 1 * *";
