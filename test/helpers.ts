import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { sign } from "hono/jwt";
import { expect } from "vitest";
import worker from "../src/index";
import { meteredD1, type D1Stats } from "../src/db/client";

import { TEST_KEYS } from "./keys";

export const JWT_SECRET = TEST_KEYS.JWT_SECRET;

let counter = 0;
/** A user id no other test uses (tests share one database per file). */
export const uniqueId = (prefix = "u") => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 7)}`;

export async function tokenFor(sub: string, role: "user" | "admin" = "user", extra: Record<string, unknown> = {}, secret = JWT_SECRET) {
  return sign({ sub, role, exp: Math.floor(Date.now() / 1000) + 3600, ...extra }, secret, "HS256");
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  rawBody?: string;
  form?: FormData;
  headers?: Record<string, string>;
  /** Vars to override for this one request (e.g. MIDTRANS_ALLOWED_IPS). */
  vars?: Record<string, string>;
  /** Counts the D1 round trips and statements of this request (its waitUntil work included). */
  d1?: D1Stats;
  /** The D1 binding this one request sees (e.g. `d1Before`, to commit a concurrent change just before its write). */
  db?: D1Database;
  /** Other bindings this one request sees instead of the pool's (e.g. an R2 bucket wrapped to fail). */
  env?: Partial<Env>;
}

export async function call(method: string, path: string, options: CallOptions = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | FormData | undefined = options.form ?? options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  // The Worker's own fetch export with the pool's real bindings. (SELF.fetch takes ~10 ms per call in
  // this pool version and slows down under concurrency, which would make the race tests crawl.)
  const ctx = createExecutionContext();
  const request = new Request(`http://money.test${path}`, { method, headers, body });
  const db = options.db ?? env.DB;
  const bindings = { ...env, ...options.vars, ...options.env, DB: options.d1 ? meteredD1(db, options.d1) : db };
  const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

export const adminToken = () => tokenFor("admin-root", "admin");

/** Creates a user (first sight through the API) and returns its id and token. */
export async function newUser(prefix = "u") {
  const id = uniqueId(prefix);
  const token = await tokenFor(id);
  const res = await call("GET", "/api/wallet/balance", { token });
  expect(res.status).toBe(200);
  return { id, token };
}

export async function adjust(userId: string, amount: number, asset: "COIN" | "IDR" = "COIN") {
  const res = await call("POST", "/api/admin/adjustments", { token: await adminToken(), body: { userId, asset, amount, reason: "test funding" } });
  expect(res.status, res.text).toBe(201);
  return res.json;
}

export async function balanceOf(token: string) {
  const res = await call("GET", "/api/wallet/balance", { token });
  expect(res.status).toBe(200);
  return res.json as { balance: number; lockedBalance: number; availableBalance: number; idrBalance: number };
}

export async function expectLedgerOk() {
  const res = await call("GET", "/api/admin/ledger/check", { token: await adminToken() });
  expect(res.status).toBe(200);
  expect(res.json, JSON.stringify(res.json)).toMatchObject({ ok: true });
}

export function expectProblem(res: { status: number; headers: Headers; json: any }, status: number, code?: string) {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(res.json).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  if (code) expect(res.json.code).toBe(code);
}

export async function setUserStatus(userId: string, status: "active" | "frozen" | "banned") {
  // As the user is first seen if they were not yet (an update of no row would leave them unbanned unnoticed).
  const now = Date.now();
  await env.DB.prepare("insert into users (id, status, created_at, updated_at) values (?, ?, ?, ?) on conflict (id) do update set status = excluded.status").bind(userId, status, now, now).run();
}

/** Calls the gateway simulator's API (its control API lives under /_sim). */
export async function sim(method: string, path: string, body?: unknown) {
  const res = await fetch(`${env.SIM_URL}${path}`, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as any };
}

/** Has the simulator build a signed Midtrans notification (and update its status API), without delivering it. */
export async function midtransNotification(orderId: string, fields: Record<string, unknown>) {
  const res = await sim("POST", `/_sim/midtrans/${orderId}/notify`, { ...fields, deliver: false });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json.notification as Record<string, string>;
}

export const postMidtransWebhook = (notification: unknown, headers: Record<string, string> = {}) =>
  call("POST", "/api/payment/midtrans/webhook", { body: notification, headers });

function randomBytes(size: number) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65_536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65_536)));
  return bytes;
}
export const jpeg = (size = 2048) => {
  const bytes = randomBytes(size);
  bytes.set([0xff, 0xd8, 0xff, 0xe0]);
  return bytes;
};
export const png = (size = 2048) => {
  const bytes = randomBytes(size);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return bytes;
};

export function kycForm(fields: { idType?: string; idNumber?: string; idPhoto?: Uint8Array | string; selfiePhoto?: Uint8Array | string } = {}) {
  const form = new FormData();
  form.set("idType", fields.idType ?? "ktp");
  form.set("idNumber", fields.idNumber ?? "3171234567890123");
  const file = (v: Uint8Array | string, name: string) => (typeof v === "string" ? v : new File([v as Uint8Array<ArrayBuffer>], name, { type: "image/jpeg" }));
  form.set("idPhoto", file(fields.idPhoto ?? jpeg(), "id.jpg"));
  form.set("selfiePhoto", file(fields.selfiePhoto ?? png(), "selfie.png"));
  return form;
}

/** A user with verified KYC and a bank account on file. */
export async function verifiedUser(prefix = "kyc") {
  const user = await newUser(prefix);
  const submit = await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() });
  expect(submit.status, submit.text).toBe(201);
  const review = await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified" } });
  expect(review.status, review.text).toBe(200);
  const method = await call("PUT", "/api/wallet/withdraw-method", { token: user.token, body: { bankName: "bca", accountNumber: "1234567890", accountName: "Siti Rahma" } });
  expect(method.status, method.text).toBe(200);
  return user;
}

/** Iris' reference of a withdrawal's payout, as the simulator holds it (the service learns it from Iris' notification). */
export async function irisReferenceOf(withdrawalId: string): Promise<string> {
  const payouts = (await sim("GET", "/_sim/state")).json.payouts as { reference_no: string; notes: string }[];
  const payout = payouts.find((p) => p.notes === `Withdrawal ${withdrawalId}`);
  expect(payout, `no Iris payout for ${withdrawalId}`).toBeDefined();
  return payout!.reference_no;
}

/** Builds Iris' signed notification in the simulator and delivers those exact bytes to the service. */
export async function irisNotify(referenceNo: string, status: string, extra: Record<string, unknown> = {}) {
  const built = await sim("POST", `/_sim/iris/${referenceNo}/notify`, { status, ...extra, deliver: false });
  expect(built.status, JSON.stringify(built.json)).toBe(200);
  return call("POST", "/api/payment/midtrans/iris-webhook", { rawBody: built.json.raw, headers: { "content-type": "application/json", ...built.json.headers } });
}

/** The simulator's Xendit invoice id of an order (the service records it when Xendit's callback arrives). */
export async function xenditInvoiceOf(orderId: string): Promise<string> {
  const invoices = (await sim("GET", "/_sim/state")).json.invoices as { id: string; external_id: string }[];
  const invoice = invoices.find((i) => i.external_id === orderId);
  expect(invoice, `no Xendit invoice for ${orderId}`).toBeDefined();
  return invoice!.id;
}

export const d1Stats = (): D1Stats => ({ roundTrips: 0, statements: 0, rowsRead: 0, rowsWritten: 0 });

/**
 * The local D1, except that `change` is committed right before the first batch or statement whose SQL
 * matches `at` runs: a concurrent write landing between a caller's reads and its write.
 */
export const d1Before = (change: string, at: RegExp): D1Database => d1Intercept(at, () => env.DB.exec(change));

/** The local D1, except that the first batch or statement whose SQL matches `at` fails (D1 lost the connection). */
export const d1FailingOnce = (at: RegExp, message = "D1_ERROR: Network connection lost."): D1Database =>
  d1Intercept(at, async () => {
    throw new Error(message);
  });

/**
 * The local D1, with `first` run (and awaited) before the first batch or statement whose SQL matches `at`
 * (before each of the first `times` of them): a concurrent request committing in between.
 */
export function d1Intercept(at: RegExp, first: () => Promise<unknown>, times = 1): D1Database {
  let left = times;
  const sqlOf = new WeakMap<object, string>();
  const before = async (queries: string[]) => {
    if (left === 0 || !queries.some((q) => at.test(q))) return;
    left--;
    await first();
  };
  const wrap = (stmt: D1PreparedStatement, query: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args), query);
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") return async (...args: unknown[]) => (await before([query]), value.apply(target, args));
        return value.bind(target);
      },
    });
    sqlOf.set(proxy, query);
    return proxy;
  };
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query), query);
      if (prop === "batch") return async (statements: D1PreparedStatement[]) => (await before(statements.map((st) => sqlOf.get(st) ?? "")), target.batch(statements));
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The D1 binding, except that preparing a statement whose SQL matches `pattern` throws (a query D1 refuses, e.g. past its time limit). */
export function d1Refusing(pattern: RegExp, message = "D1_ERROR: the query exceeded its time limit"): D1Database {
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") {
        return (query: string) => {
          if (pattern.test(query)) throw new Error(message);
          return target.prepare(query);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
