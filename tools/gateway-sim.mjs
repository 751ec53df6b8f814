// Local gateway simulator: the subset of Midtrans Snap, Core (status), Iris and Xendit that the
// money service uses, plus a control API under /_sim/ that sends correctly signed notifications.
// Node built-ins only. Run with `node tools/gateway-sim.mjs`; see startSimulator() for embedding.
import { createServer } from "node:http";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const HOST = "127.0.0.1"; // never exposed beyond loopback: it accepts well-known dev keys
const DEFAULT_PORT = 8790;
const DEFAULT_SERVICE_URL = "http://127.0.0.1:8787";
const BODY_LIMIT = 1024 * 1024;
const HOLD_MS = 60_000;
const DELIVERY_TIMEOUT_MS = 10_000;
const MIDTRANS_WEBHOOK = "/api/payment/midtrans/webhook";
const IRIS_WEBHOOK = "/api/payment/midtrans/iris-webhook";
const XENDIT_WEBHOOK = "/api/payment/xendit/webhook";

const MIDTRANS_UNAUTHORIZED = {
  status_code: "401",
  error_messages: ["Access denied due to unauthorized transaction, please check client or server key"],
};
const SERVER_ERROR = {
  status_code: "500",
  error_messages: ["Sorry, we encountered internal server error. We will fix this soon."],
};
const MIDTRANS_STATUSES = new Set([
  "pending", "authorize", "capture", "settlement", "deny", "cancel", "expire", "failure",
  "refund", "partial_refund", "chargeback", "partial_chargeback",
]);
const IRIS_STATUSES = new Set(["completed", "failed", "rejected", "approved", "processed"]);
const XENDIT_STATUSES = new Set(["PAID", "SETTLED", "EXPIRED"]);
const FAULT_TARGETS = new Set(["snap", "status", "iris", "xendit"]);
// http500: answer 500 without doing anything; timeout: hold the request until the client gives up;
// late: do the work (e.g. create the payout) but answer only after LATE_MS, past any client deadline;
// reject: a definite refusal (400 with the gateway's error body), nothing done; garbage: 200 with an
// unreadable body after doing the work.
const FAULT_MODES = new Set(["http500", "timeout", "late", "reject", "garbage", "none"]);
const LATE_MS = 5_000;

class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// ---------- exported helpers ----------

const sha512 = (text) => createHash("sha512").update(text, "utf8").digest("hex");

export function midtransSignature(orderId, statusCode, grossAmount, serverKey) {
  return sha512(`${orderId}${statusCode}${grossAmount}${serverKey}`);
}

export function irisSignature(rawBody, merchantKey) {
  return sha512(`${rawBody}${merchantKey}`);
}

/** Parses KEY=VALUE lines (`#` comments, optional quotes). A missing file yields {}. */
export function readDevVars(path) {
  if (!existsSync(path)) return {};
  const vars = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const trimmed = line.trim();
    const eq = trimmed.indexOf("=");
    if (trimmed === "" || trimmed.startsWith("#") || eq < 1) continue;
    const value = trimmed.slice(eq + 1).trim();
    vars[trimmed.slice(0, eq).trim()] = value.replace(/^(["'])(.*)\1$/, "$2");
  }
  return vars;
}

/** Midtrans status_code for a transaction_status, as the status API and notifications report it. */
export function midtransStatusCode(status, fraudStatus) {
  if (status === "pending" || (status === "capture" && fraudStatus === "challenge")) return "201";
  if (status === "deny" || status === "failure") return "202";
  if (status === "expire") return "407";
  return "200";
}

// ---------- small utilities ----------

const rupiah = (amount) => `${amount}.00`;
const amountString = (value) => (typeof value === "string" ? value : Number(value).toFixed(2));
const nowIso = () => new Date().toISOString();
// Midtrans reports times as Jakarta wall-clock time (UTC+7) without a zone.
const jakartaTime = (iso) =>
  new Date(Date.parse(iso) + 7 * 3600_000).toISOString().slice(0, 19).replace("T", " ");
const json = (status, body) => ({ status, json: body });
const html = (status, body) => ({ status, html: body });
const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function basicUser(req) {
  const match = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
  if (!match) return null;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  return decoded.slice(0, decoded.includes(":") ? decoded.indexOf(":") : undefined);
}

function requireUser(req, expectedKey, unauthorizedBody) {
  if (!expectedKey || basicUser(req) !== expectedKey) throw new HttpError(401, unauthorizedBody);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > BODY_LIMIT) reject(new HttpError(413, { error: "payload_too_large", limit: BODY_LIMIT }));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody(raw, isForm) {
  if (isForm) return Object.fromEntries(new URLSearchParams(raw));
  if (raw.trim() === "") return {};
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new HttpError(400, { error: "invalid_json", message: "Request body is not valid JSON" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, { error: "invalid_json", message: "Request body must be a JSON object" });
  }
  return body;
}

const parseMaybeJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

function checkoutPage(title, rows, action, values) {
  const cells = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`);
  const forms = values.map(([field, value]) =>
    `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="${field}" ` +
    `value="${value}"><button>${value}</button></form>`);
  return `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<h1>${escapeHtml(title)}</h1><table>${cells.join("")}</table>${forms.join("")}`;
}

const resultPage = (label, delivered) => html(200,
  `<!doctype html><meta charset="utf-8"><title>Notification sent</title><p>${escapeHtml(label)} sent; ` +
  `service answered ${escapeHtml(delivered.status || delivered.error)}</p>` +
  `<pre>${escapeHtml(JSON.stringify(delivered.body ?? null, null, 2))}</pre>`);

// ---------- notification delivery ----------

async function deliver(ctx, record) {
  const url = /^https?:\/\//.test(record.path) ? record.path : ctx.serviceUrl + record.path;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...record.headers },
      body: record.body,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    return { status: res.status, body: parseMaybeJson(await res.text()) };
  } catch (err) {
    return { status: 0, error: String(err.cause?.message ?? err.message) };
  }
}

async function send(ctx, req, kind, key, path, headers, payload, raw = JSON.stringify(payload)) {
  const record = { id: ctx.state.notifications.length, kind, key, path, headers, body: raw, sent_at: nowIso() };
  ctx.state.notifications.push(record);
  if (req.simDryRun) return json(200, { delivered: null, notification: payload, raw, headers });
  record.delivered = await deliver(ctx, record);
  req.simNote = `→ ${path} ${record.delivered.status || record.delivered.error}`;
  return json(record.delivered.status ? 200 : 502, { delivered: record.delivered, notification: payload });
}

// ---------- Midtrans Snap + Core status ----------

function createSnapTransaction(ctx, { req, body }) {
  requireUser(req, ctx.keys.MIDTRANS_SERVER_KEY, MIDTRANS_UNAUTHORIZED);
  const { order_id: orderId, gross_amount: gross } = body.transaction_details ?? {};
  const errors = [];
  if (typeof orderId !== "string" || orderId === "") errors.push("transaction_details.order_id is required");
  else if (orderId.length > 50) errors.push("transaction_details.order_id may not be greater than 50 characters");
  if (!Number.isInteger(gross) || gross <= 0) errors.push("transaction_details.gross_amount must be a positive integer");
  if (errors.length) return json(400, { error_messages: errors });
  if (Array.isArray(body.item_details)) {
    const sum = body.item_details.reduce((acc, item) => acc + item?.price * item?.quantity, 0);
    if (sum !== gross) return json(400, { error_messages: ["transaction_details.gross_amount is not equal to the sum of item_details"] });
  }
  if (ctx.state.orders.has(orderId)) return json(400, { error_messages: ["transaction_details.order_id has already been taken"] });
  const token = randomUUID();
  const created = nowIso();
  ctx.state.orders.set(orderId, {
    order_id: orderId, gross_amount: gross, token, transaction_id: randomUUID(), status: "pending",
    fraud_status: "accept", item_details: body.item_details ?? null,
    customer_details: body.customer_details ?? null, created_at: created, updated_at: created,
  });
  ctx.state.tokens.set(token, orderId);
  return json(201, { token, redirect_url: `${ctx.baseUrl}/snap/v4/redirection/${token}` });
}

function snapRedirectPage(ctx, { params: [token] }) {
  const order = ctx.state.orders.get(ctx.state.tokens.get(token));
  if (!order) return html(404, "<!doctype html><p>Unknown Snap token</p>");
  const action = `/_sim/midtrans/${encodeURIComponent(order.order_id)}/notify`;
  const rows = [["Order", order.order_id], ["Amount", `IDR ${order.gross_amount}`], ["Status", order.status]];
  const values = ["settlement", "deny", "expire"].map((v) => ["transaction_status", v]);
  return html(200, checkoutPage("Midtrans Snap (simulator)", rows, action, values));
}

function statusPayload(order, serverKey) {
  const statusCode = midtransStatusCode(order.status, order.fraud_status);
  const gross = rupiah(order.gross_amount);
  return {
    status_code: statusCode, status_message: "Success, transaction is found",
    transaction_id: order.transaction_id, order_id: order.order_id, merchant_id: "G-SIM",
    gross_amount: gross, currency: "IDR", payment_type: "bank_transfer",
    transaction_time: jakartaTime(order.created_at), transaction_status: order.status,
    fraud_status: order.fraud_status,
    signature_key: midtransSignature(order.order_id, statusCode, gross, serverKey),
    ...(order.refunded ? { refund_amount: rupiah(order.refunded), refunds: order.refunds } : {}),
  };
}

function getTransactionStatus(ctx, { req, params: [orderId] }) {
  requireUser(req, ctx.keys.MIDTRANS_SERVER_KEY, MIDTRANS_UNAUTHORIZED);
  const order = ctx.state.orders.get(orderId);
  if (!order) return json(404, { status_code: "404", status_message: "Transaction doesn't exist." });
  return json(200, statusPayload(order, ctx.keys.MIDTRANS_SERVER_KEY));
}

// ---------- Midtrans Iris ----------

const IRIS_UNAUTHORIZED = { error_message: "unauthorized" };

function parseIrisAmount(value) {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : null;
  if (typeof value !== "string" || !/^\d+(\.0{1,2})?$/.test(value)) return null;
  const amount = Number.parseInt(value, 10);
  return amount > 0 ? amount : null;
}

function validatePayout(payout, i) {
  const errors = [];
  for (const field of ["beneficiary_name", "beneficiary_account", "beneficiary_bank", "notes"]) {
    if (typeof payout?.[field] !== "string" || payout[field].trim() === "") errors.push(`payouts[${i}].${field} is required`);
  }
  if (parseIrisAmount(payout?.amount) === null) errors.push(`payouts[${i}].amount must be a positive whole number of rupiah`);
  return errors;
}

// Iris keeps an X-Idempotency-Key for 24 hours: the same key with the same body answers what the first
// request got (and creates nothing); the same key with another body is refused.
function createPayouts(ctx, args) {
  const key = args.req.headers["x-idempotency-key"];
  if (typeof key !== "string" || key === "") return createPayoutsOnce(ctx, args);
  if (key.length > 100) return json(400, { error_message: "idempotency-key is too long", errors: ["idempotency-key is too long"] });
  const fingerprint = createHash("sha256").update(JSON.stringify(args.body)).digest("hex");
  const earlier = ctx.state.idempotency.get(key);
  if (earlier) {
    if (earlier.fingerprint !== fingerprint) return json(422, { error_message: "idempotency-key is not unique", errors: "idempotency-key is not unique" });
    return earlier.result;
  }
  const result = createPayoutsOnce(ctx, args);
  ctx.state.idempotency.set(key, { fingerprint, result });
  return result;
}

function createPayoutsOnce(ctx, { req, body }) {
  requireUser(req, ctx.keys.MIDTRANS_IRIS_API_KEY, IRIS_UNAUTHORIZED);
  const list = Array.isArray(body.payouts) ? body.payouts : [];
  const errors = list.length ? list.flatMap(validatePayout) : ["payouts must be a non-empty array"];
  if (errors.length) return json(400, { error_message: "An error occurred when creating payouts", errors });
  const created = list.map((p) => {
    const now = nowIso();
    const payout = {
      reference_no: randomBytes(9).toString("hex"), amount: parseIrisAmount(p.amount),
      beneficiary_name: p.beneficiary_name, beneficiary_account: p.beneficiary_account,
      beneficiary_bank: p.beneficiary_bank, beneficiary_email: p.beneficiary_email ?? null,
      notes: p.notes, status: "queued", created_at: now, updated_at: now,
    };
    ctx.state.payouts.set(payout.reference_no, payout);
    return { status: payout.status, reference_no: payout.reference_no };
  });
  return json(201, { payouts: created });
}

function getPayout(ctx, { req, params: [referenceNo] }) {
  requireUser(req, ctx.keys.MIDTRANS_IRIS_API_KEY, IRIS_UNAUTHORIZED);
  const p = ctx.state.payouts.get(referenceNo);
  if (!p) return json(404, { error_message: "Payout not found" });
  return json(200, {
    amount: rupiah(p.amount), beneficiary_name: p.beneficiary_name, beneficiary_account: p.beneficiary_account,
    bank: p.beneficiary_bank, reference_no: p.reference_no, notes: p.notes,
    beneficiary_email: p.beneficiary_email, status: p.status, created_by: "simulator",
    created_at: p.created_at, updated_at: p.updated_at,
  });
}

// ---------- Xendit invoices ----------

const XENDIT_UNAUTHORIZED = { error_code: "INVALID_API_KEY", message: "API key is not authorized for this API service" };

function createInvoice(ctx, { req, body }) {
  requireUser(req, ctx.keys.XENDIT_SECRET_KEY, XENDIT_UNAUTHORIZED);
  const { external_id: externalId, amount } = body;
  if (typeof externalId !== "string" || externalId === "") {
    return json(400, { error_code: "API_VALIDATION_ERROR", message: "external_id is required" });
  }
  if (!Number.isInteger(amount) || amount <= 0) {
    return json(400, { error_code: "API_VALIDATION_ERROR", message: "amount must be a positive integer" });
  }
  if ([...ctx.state.invoices.values()].some((inv) => inv.external_id === externalId)) {
    return json(400, { error_code: "DUPLICATE_ERROR", message: `Invoice with external_id ${externalId} already exists` });
  }
  const id = randomBytes(12).toString("hex");
  const created = nowIso();
  const invoice = {
    id, external_id: externalId, user_id: "sim-user", status: "PENDING", merchant_name: "Simulator",
    amount, ...(body.payer_email ? { payer_email: body.payer_email } : {}),
    ...(body.description ? { description: body.description } : {}),
    invoice_url: `${ctx.baseUrl}/xendit/invoices/${id}`,
    expiry_date: new Date(Date.parse(created) + 24 * 3600_000).toISOString(),
    currency: "IDR", created, updated: created,
  };
  ctx.state.invoices.set(id, invoice);
  return json(200, invoice);
}

function getInvoice(ctx, { req, params: [id] }) {
  requireUser(req, ctx.keys.XENDIT_SECRET_KEY, XENDIT_UNAUTHORIZED);
  const invoice = ctx.state.invoices.get(id);
  return invoice ? json(200, invoice) : json(404, { error_code: "INVOICE_NOT_FOUND_ERROR", message: "Invoice not found" });
}

function invoicePage(ctx, { params: [id] }) {
  const inv = ctx.state.invoices.get(id);
  if (!inv) return html(404, "<!doctype html><p>Unknown invoice</p>");
  const rows = [["External id", inv.external_id], ["Amount", `IDR ${inv.amount}`], ["Status", inv.status]];
  const values = ["PAID", "EXPIRED"].map((v) => ["status", v]);
  return html(200, checkoutPage("Xendit invoice (simulator)", rows, `/_sim/xendit/${id}/notify`, values));
}

// ---------- control API ----------

async function notifyMidtrans(ctx, { req, params: [orderId], body, isForm }) {
  const status = body.transaction_status;
  if (!MIDTRANS_STATUSES.has(status)) return json(400, { error: "invalid_transaction_status", allowed: [...MIDTRANS_STATUSES] });
  const order = ctx.state.orders.get(orderId);
  // The status API must already agree when the service reacts to the notification. Refunds and
  // chargebacks accumulate: `refund_amount` in a notify is the amount of this refund (the full gross
  // for refund/chargeback without one), and the order reports the cumulative total, as Midtrans does.
  const refundStatuses = ["refund", "partial_refund", "chargeback", "partial_chargeback"];
  let refund = null;
  if (order && refundStatuses.includes(status)) {
    const full = status === "refund" || status === "chargeback";
    const amount = body.refund_amount !== undefined ? Number(body.refund_amount) : full ? order.gross_amount - (order.refunded ?? 0) : 0;
    order.refunded = Math.min(order.gross_amount, (order.refunded ?? 0) + amount);
    refund = { refund_chargeback_id: (order.refunds ??= []).length + 1, refund_amount: rupiah(amount), created_at: jakartaTime(nowIso()), reason: body.reason ?? "simulated" };
    order.refunds.push(refund);
  }
  if (order) Object.assign(order, { status, fraud_status: body.fraud_status ?? "accept", updated_at: nowIso() });
  const statusCode = String(body.status_code ?? midtransStatusCode(status, body.fraud_status));
  const gross = body.gross_amount !== undefined ? amountString(body.gross_amount) : rupiah(order?.gross_amount ?? 0);
  const notification = {
    transaction_time: jakartaTime(order?.created_at ?? nowIso()), transaction_status: status,
    transaction_id: order?.transaction_id ?? randomUUID(), status_message: "midtrans payment notification",
    status_code: statusCode,
    signature_key: body.signature_key ?? midtransSignature(orderId, statusCode, gross, ctx.keys.MIDTRANS_SERVER_KEY ?? ""),
    payment_type: "bank_transfer", order_id: orderId, merchant_id: "G-SIM", gross_amount: gross,
    fraud_status: body.fraud_status ?? "accept", currency: "IDR",
    ...(order?.refunded ? { refund_amount: rupiah(order.refunded) } : {}),
    ...(refund ? { refund_chargeback_id: refund.refund_chargeback_id } : {}),
  };
  const result = await send(ctx, req, "midtrans", orderId, body.target ?? MIDTRANS_WEBHOOK, {}, notification);
  return isForm ? resultPage(`Midtrans ${status} for ${orderId}`, result.json.delivered) : result;
}

async function replayMidtrans(ctx, { req, params: [orderId], body }) {
  const sent = ctx.state.notifications.filter((n) => n.kind === "midtrans" && n.key === orderId);
  const record = sent[body.index ?? sent.length - 1];
  if (!record) return json(404, { error: "notification_not_found", order_id: orderId, sent: sent.length });
  record.delivered = await deliver(ctx, record);
  req.simNote = `→ replay ${record.path} ${record.delivered.status || record.delivered.error}`;
  return json(record.delivered.status ? 200 : 502, { delivered: record.delivered, notification: JSON.parse(record.body) });
}

async function notifyIris(ctx, { req, params: [referenceNo], body }) {
  if (!IRIS_STATUSES.has(body.status)) return json(400, { error: "invalid_status", allowed: [...IRIS_STATUSES] });
  const payout = ctx.state.payouts.get(referenceNo);
  const updated = nowIso();
  if (payout) Object.assign(payout, { status: body.status, updated_at: updated });
  const notification = {
    reference_no: referenceNo,
    amount: body.amount !== undefined ? amountString(body.amount) : rupiah(payout?.amount ?? 0),
    status: body.status, updated_at: updated,
    ...(body.error_code !== undefined ? { error_code: body.error_code } : {}),
    ...(body.error_message !== undefined ? { error_message: body.error_message } : {}),
  };
  // The signature covers the exact bytes delivered, so send() must post this very string.
  const raw = JSON.stringify(notification);
  const signature = body.signature ?? irisSignature(raw, ctx.keys.MIDTRANS_IRIS_MERCHANT_KEY ?? "");
  return send(ctx, req, "iris", referenceNo, body.target ?? IRIS_WEBHOOK, { "Iris-Signature": signature }, notification, raw);
}

async function notifyXendit(ctx, { req, params: [id], body, isForm }) {
  if (!XENDIT_STATUSES.has(body.status)) return json(400, { error: "invalid_status", allowed: [...XENDIT_STATUSES] });
  const invoice = ctx.state.invoices.get(id);
  const now = nowIso();
  const paid = body.status !== "EXPIRED";
  const amount = body.amount !== undefined ? Number(body.amount) : invoice?.amount ?? 0;
  if (invoice) Object.assign(invoice, { status: body.status, updated: now }, paid ? { paid_amount: amount, paid_at: now } : {});
  const notification = {
    id, external_id: body.external_id ?? invoice?.external_id ?? id, user_id: "sim-user", is_high: false,
    // Real Xendit omits the payment details when an invoice expires unpaid.
    ...(paid ? { payment_method: "BANK_TRANSFER" } : {}), status: body.status, merchant_name: "Simulator", amount,
    ...(paid ? { paid_amount: amount, bank_code: "BCA", paid_at: now } : {}),
    payer_email: invoice?.payer_email ?? null, description: invoice?.description ?? null, currency: "IDR",
    ...(paid ? { payment_channel: "BCA" } : {}), created: invoice?.created ?? now, updated: now,
  };
  const token = body.callback_token ?? ctx.keys.XENDIT_CALLBACK_TOKEN ?? "";
  const result = await send(ctx, req, "xendit", id, body.target ?? XENDIT_WEBHOOK, { "x-callback-token": token }, notification);
  return isForm ? resultPage(`Xendit ${body.status} for ${id}`, result.json.delivered) : result;
}

function setFault(ctx, { body }) {
  const { target, mode, count = 1, delayMs = LATE_MS } = body;
  if (!FAULT_TARGETS.has(target) || !FAULT_MODES.has(mode) || !(Number.isInteger(count) && count > 0)) {
    return json(400, { error: "invalid_fault", targets: [...FAULT_TARGETS], modes: [...FAULT_MODES] });
  }
  if (mode === "none") ctx.faults.delete(target);
  else ctx.faults.set(target, { mode, remaining: count, delayMs });
  return json(200, { faults: Object.fromEntries(ctx.faults) });
}

function takeFault(ctx, target) {
  const fault = target && ctx.faults.get(target);
  if (!fault) return null;
  if (--fault.remaining <= 0) ctx.faults.delete(target);
  return fault;
}

const getState = (ctx) => json(200, {
  orders: [...ctx.state.orders.values()], payouts: [...ctx.state.payouts.values()],
  invoices: [...ctx.state.invoices.values()], notifications: ctx.state.notifications,
  faults: Object.fromEntries(ctx.faults),
});

function reset(ctx) {
  for (const value of Object.values(ctx.state)) value instanceof Map ? value.clear() : (value.length = 0);
  ctx.faults.clear();
  return json(200, { ok: true });
}

// ---------- routing ----------

const ROUTES = [
  ["POST", /^\/snap\/v1\/transactions$/, "snap", createSnapTransaction],
  ["GET", /^\/snap\/v4\/redirection\/([^/]+)$/, null, snapRedirectPage],
  ["POST", /^\/v2\/invoices$/, "xendit", createInvoice],
  ["GET", /^\/v2\/invoices\/([^/]+)$/, "xendit", getInvoice],
  ["GET", /^\/v2\/([^/]+)\/status$/, "status", getTransactionStatus],
  ["POST", /^\/iris\/api\/v1\/payouts$/, "iris", createPayouts],
  ["GET", /^\/iris\/api\/v1\/payouts\/([^/]+)$/, "iris", getPayout],
  ["GET", /^\/xendit\/invoices\/([^/]+)$/, null, invoicePage],
  ["POST", /^\/_sim\/midtrans\/([^/]+)\/notify$/, null, notifyMidtrans],
  ["POST", /^\/_sim\/midtrans\/([^/]+)\/replay$/, null, replayMidtrans],
  ["POST", /^\/_sim\/iris\/([^/]+)\/notify$/, null, notifyIris],
  ["POST", /^\/_sim\/xendit\/([^/]+)\/notify$/, null, notifyXendit],
  ["POST", /^\/_sim\/faults$/, null, setFault],
  ["GET", /^\/_sim\/state$/, null, getState],
  ["POST", /^\/_sim\/reset$/, null, reset],
  ["GET", /^\/_sim\/health$/, null, () => json(200, { ok: true })],
].map(([method, pattern, fault, handler]) => ({ method, pattern, fault, handler }));

function writeResult(res, { status, json: body, html: page }) {
  const text = page ?? JSON.stringify(body);
  res.writeHead(status, {
    "content-type": page !== undefined ? "text/html; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
    ...(status === 413 ? { connection: "close" } : {}),
  });
  res.end(text);
}

function hold(ctx, req, res, answer) {
  const entry = { req, timer: answer ?? setTimeout(() => req.socket.destroy(), HOLD_MS) };
  ctx.held.add(entry);
  res.on("close", () => {
    clearTimeout(entry.timer);
    ctx.held.delete(entry);
  });
}

async function dispatch(ctx, req, res) {
  const { pathname } = new URL(req.url, "http://sim");
  let params = null;
  const route = ROUTES.find((r) => r.method === req.method && (params = r.pattern.exec(pathname)));
  if (!route) return writeResult(res, json(404, { error: "not_found", message: `No simulator route for ${req.method} ${pathname}` }));
  const fault = takeFault(ctx, route.fault);
  const mode = fault?.mode;
  if (mode === "timeout") return hold(ctx, req, res);
  if (mode === "http500") return writeResult(res, json(500, SERVER_ERROR));
  if (mode === "reject") return writeResult(res, json(400, { error_message: "An error occurred when creating payouts", errors: ["rejected by the simulator (fault: reject)"], error_messages: ["rejected by the simulator (fault: reject)"] }));
  const raw = req.method === "GET" ? "" : await readBody(req);
  // `curl -d '{...}'` labels JSON as form data, so a body that looks like JSON is parsed as JSON.
  const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded") &&
    !raw.trimStart().startsWith("{");
  const body = parseBody(raw, isForm);
  // `deliver: false` on a notify/replay builds and records the notification without posting it, so a
  // test that runs the service in-process can deliver the exact bytes itself.
  req.simDryRun = body?.deliver === false;
  const args = { req, params: params.slice(1).map(decodeURIComponent), body, isForm };
  const result = await route.handler(ctx, args);
  if (mode === "garbage") return writeResult(res, { status: 200, html: "<html>upstream proxy says hello</html>" });
  if (mode === "late") {
    // The work is done (a payout exists); the answer arrives after the client stopped waiting.
    const timer = setTimeout(() => writeResult(res, result), fault.delayMs);
    return hold(ctx, req, res, timer);
  }
  writeResult(res, result);
}

function logRequests(req, res) {
  const started = Date.now();
  res.on("close", () => {
    const outcome = res.writableFinished ? res.statusCode : "no response";
    const note = req.simNote ? ` ${req.simNote}` : "";
    console.log(`[gateway-sim] ${req.method} ${req.url} ${outcome} ${Date.now() - started}ms${note}`);
  });
}

/** Starts the simulator; resolves once it is listening. */
export function startSimulator(options = {}) {
  const ctx = {
    keys: { ...(options.keys ?? {}) },
    serviceUrl: (options.serviceUrl ?? DEFAULT_SERVICE_URL).replace(/\/+$/, ""),
    state: { orders: new Map(), tokens: new Map(), payouts: new Map(), invoices: new Map(), idempotency: new Map(), notifications: [] },
    faults: new Map(),
    held: new Set(),
    baseUrl: "",
  };
  const server = createServer((req, res) => {
    if (options.log ?? true) logRequests(req, res);
    dispatch(ctx, req, res).catch((err) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof HttpError) return writeResult(res, json(err.status, err.body));
      writeResult(res, json(500, { error: "simulator_error", message: String(err?.message ?? err) }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? DEFAULT_PORT, HOST, () => {
      const { port } = server.address();
      ctx.baseUrl = `http://${HOST}:${port}`;
      const close = () => new Promise((done) => {
        for (const { req, timer } of ctx.held) {
          clearTimeout(timer);
          req.socket.destroy();
        }
        server.close(() => done());
        server.closeAllConnections(); // keep-alive clients would otherwise keep close() pending
      });
      resolve({ url: ctx.baseUrl, port, close, state: ctx.state });
    });
  });
}

async function main() {
  const file = existsSync(".dev.vars") ? ".dev.vars" : ".dev.vars.example";
  const sim = await startSimulator({
    port: Number(process.env.SIM_PORT ?? DEFAULT_PORT),
    serviceUrl: process.env.SERVICE_URL ?? DEFAULT_SERVICE_URL,
    keys: readDevVars(file),
  });
  console.log(`gateway simulator listening on ${sim.url}`);
  const stop = () => sim.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`gateway simulator failed to start: ${err.message}`);
    process.exit(1);
  });
}
