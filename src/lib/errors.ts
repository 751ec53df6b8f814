import { z } from "@hono/zod-openapi";

/** Every stable error code the API can answer with, and the HTTP status it always carries. */
export const errorStatus = {
  validation_failed: 400,
  malformed_request: 400,
  invalid_amount: 400,
  unauthorized: 401,
  invalid_signature: 401,
  forbidden: 403,
  account_banned: 403,
  account_frozen: 403,
  kyc_required: 403,
  verification_required: 403,
  limit_exceeded: 403,
  not_found: 404,
  recipient_not_found: 404,
  method_not_allowed: 405,
  idempotency_conflict: 409,
  conflict: 409,
  amount_mismatch: 422,
  already_applied: 409,
  already_unlocked: 409,
  price_changed: 409,
  stream_mismatch: 409,
  payload_too_large: 413,
  upgrade_required: 426,
  unsupported_media_type: 415,
  insufficient_funds: 422,
  withdraw_method_required: 422,
  below_minimum: 422,
  self_transfer: 422,
  recipient_unavailable: 422,
  withdraw_method_cooldown: 422,
  debt_outstanding: 422,
  own_content: 422,
  refund_window_closed: 422,
  self_gift: 422,
  self_order: 422,
  invalid_referral_code: 422,
  campaign_suspended: 422,
  amount_too_large: 422,
  unknown_campaign: 422,
  too_many_campaigns: 422,
  day_closed: 422,
  invalid_notification: 400,
  rate_limited: 429,
  internal_error: 500,
  misconfigured: 500,
  gateway_error: 502,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface FieldError {
  path: string;
  message: string;
}

/** `transient`: a refusal caused by concurrent requests, not by this one; an Idempotency-Key does not remember it, so the same key may try again. */
export interface ErrorExtra {
  errors?: FieldError[];
  headers?: Record<string, string>;
  transient?: boolean;
}

/**
 * Thrown anywhere; rendered once by the app's onError as application/problem+json (RFC 9457). A
 * `validation_failed` always names its fields (SPEC §3: `errors: [{ path, message }]`): the compiler
 * refuses one without them.
 */
export class ApiError extends Error {
  readonly status: number;
  constructor(code: "validation_failed", detail: string, extra: ErrorExtra & { errors: FieldError[] });
  constructor(code: Exclude<ErrorCode, "validation_failed">, detail: string, extra?: ErrorExtra);
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: ErrorExtra = {},
  ) {
    super(detail);
    this.name = "ApiError";
    this.status = errorStatus[code];
  }
}

/**
 * The arguments of a problem that was checked where it was first made, rebuilt with its code as a value (an
 * Idempotency-Key's stored refusal, a guard's problem): the overloads cannot narrow a code read from data.
 */
export const rebuilt = (code: ErrorCode, detail: string, extra: ErrorExtra) => [code, detail, extra] as [Exclude<ErrorCode, "validation_failed">, string, ErrorExtra];

const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  426: "Upgrade Required",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
};

export function problemBody(code: ErrorCode, detail: string, errors?: FieldError[]) {
  const status = errorStatus[code];
  return {
    type: `https://docs.money.example/problems/${code.replaceAll("_", "-")}`,
    title: titles[status] ?? "Error",
    status,
    detail,
    code,
    ...(errors ? { errors } : {}),
  };
}

export function problemResponse(error: ApiError): Response {
  return new Response(JSON.stringify(problemBody(error.code, error.detail, error.extra.errors)), {
    status: error.status,
    headers: { "content-type": "application/problem+json", ...error.extra.headers },
  });
}

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(errorStatus) as [ErrorCode, ...ErrorCode[]]),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/** Error responses declared once and spread into each route's `responses`. */
export const errorResponses = {
  400: problem("The request is malformed or fails validation (`validation_failed` lists the fields)."),
  401: problem("Missing, malformed, expired or wrongly signed bearer token."),
  403: problem("The caller may not do this (role, banned or frozen account, KYC, limits)."),
  413: problem("The body exceeds the size limit."),
  429: problem("Too many value-moving requests; see Retry-After."),
  500: problem("Unexpected error; no internals are disclosed."),
} as const;

export const problemFor = problem;
