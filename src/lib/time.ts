/** Business days are calendar days at BUSINESS_TZ_OFFSET (WIB, +07:00 by default). */
import { ApiError } from "./errors";

export function offsetMinutes(offset: string): number {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(offset);
  if (!m) throw new RangeError(`bad offset ${offset}`);
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** "YYYY-MM-DD" of the business day containing the instant `ms`. */
export function businessDay(ms: number, offset: string): string {
  return new Date(ms + offsetMinutes(offset) * 60_000).toISOString().slice(0, 10);
}

/** The business day that ended before `ms`: the cron's day is derived from its scheduled time, never the wall clock. */
export function previousBusinessDay(ms: number, offset: string): string {
  return addDays(businessDay(ms, offset), -1);
}

export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** The UTC instant at which a business day starts. */
export function dayStart(day: string, offset: string): number {
  return Date.parse(`${day}T00:00:00Z`) - offsetMinutes(offset) * 60_000;
}

/** A range of business days asked for in a query (`from` … `to`, both included): in order, at most `maxDays` long. */
export function checkDayRange(from: string, to: string, maxDays: number) {
  if (from > to) throw new ApiError("validation_failed", "`from` must not be after `to`.", { errors: [{ path: "query.from", message: "not after `to`" }] });
  if (addDays(from, maxDays - 1) < to) throw new ApiError("validation_failed", `At most ${maxDays} days at a time.`, { errors: [{ path: "query.to", message: `at most ${maxDays} days after \`from\`` }] });
}

/** A business day, "YYYY-MM-DD" of the years 2000–2999 (as billing months): the day after any of them still sorts after it as text. */
export const DAY_PATTERN = /^2\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

export function isRealDay(day: string): boolean {
  return DAY_PATTERN.test(day) && new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) === day;
}
