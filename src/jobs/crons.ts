/** Cron expressions as declared in wrangler.toml [triggers]; the Worker entry may only export handlers. */
export const DAILY_BATCH_CRON = "5 17 * * *";
/** 12:00 WIB on the 1st: hours after the last day's batch, which the job also checks has finished. */
export const MONTHLY_BILLING_CRON = "0 5 1 * *";
