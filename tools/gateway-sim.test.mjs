// Run with: node --test tools/
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import midtransClient from "midtrans-client";
import ApiConfig from "midtrans-client/lib/apiConfig.js";
import { irisSignature, midtransSignature, readDevVars, startSimulator } from "./gateway-sim.mjs";

const KEYS = {
  MIDTRANS_SERVER_KEY: "SB-Mid-server-test",
  MIDTRANS_IRIS_API_KEY: "IRIS-test-api",
  MIDTRANS_IRIS_MERCHANT_KEY: "IRIS-test-merchant",
  XENDIT_SECRET_KEY: "xnd_development_test",
  XENDIT_CALLBACK_TOKEN: "test-callback-token",
};
const basic = (user) => `Basic ${Buffer.from(`${user}:`).toString("base64")}`;

let sim;
let service;
const received = [];

function startService() {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, raw: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function call(method, path, { body, auth, signal, headers = {} } = {}) {
  const res = await fetch(sim.url + path, {
    method,
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...(auth ? { authorization: basic(auth) } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

const createOrder = (orderId, gross = 150000, extra = {}) =>
  call("POST", "/snap/v1/transactions", {
    auth: KEYS.MIDTRANS_SERVER_KEY,
    body: { transaction_details: { order_id: orderId, gross_amount: gross }, ...extra },
  });

before(async () => {
  service = await startService();
  sim = await startSimulator({ port: 0, keys: KEYS, log: false, serviceUrl: `http://127.0.0.1:${service.address().port}/` });
});

after(async () => {
  await sim.close();
  service.closeAllConnections();
  await new Promise((r) => service.close(r));
});

beforeEach(async () => {
  received.length = 0;
  await call("POST", "/_sim/reset");
});

describe("basics", () => {
  test("health, unknown routes, invalid JSON and body limit", async () => {
    assert.deepEqual((await call("GET", "/_sim/health")).json, { ok: true });
    const missing = await call("GET", "/nope");
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error, "not_found");
    assert.equal((await call("POST", "/snap/v1/transactions", { body: "{oops", auth: KEYS.MIDTRANS_SERVER_KEY })).status, 400);
    const big = await call("POST", "/_sim/faults", { body: JSON.stringify({ pad: "x".repeat(1024 * 1024 + 10) }) });
    assert.equal(big.status, 413);
  });

  test("readDevVars parses comments, quotes and the example file", () => {
    const dir = mkdtempSync(join(tmpdir(), "gateway-sim-"));
    try {
      const file = join(dir, ".dev.vars");
      writeFileSync(file, "# comment\nA=1\n\n B = \"two words\" \nC='x=y'\nnot a line\n");
      assert.deepEqual(readDevVars(file), { A: "1", B: "two words", C: "x=y" });
      assert.deepEqual(readDevVars(join(dir, "missing")), {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const example = readDevVars(fileURLToPath(new URL("../.dev.vars.example", import.meta.url)));
    assert.ok(example.MIDTRANS_SERVER_KEY);
    assert.ok(example.XENDIT_CALLBACK_TOKEN);
  });
});

describe("Midtrans Snap and status API", () => {
  test("create requires Basic auth with the server key", async () => {
    for (const auth of [undefined, "wrong-key"]) {
      const res = await call("POST", "/snap/v1/transactions", { auth, body: { transaction_details: { order_id: "o-1", gross_amount: 1000 } } });
      assert.equal(res.status, 401);
      assert.equal(res.json.status_code, "401");
      assert.match(res.json.error_messages[0], /unauthorized transaction/);
    }
    const ok = await createOrder("o-1", 1000);
    assert.equal(ok.status, 201);
    assert.match(ok.json.token, /^[0-9a-f-]{36}$/);
    assert.equal(ok.json.redirect_url, `${sim.url}/snap/v4/redirection/${ok.json.token}`);
    const page = await call("GET", new URL(ok.json.redirect_url).pathname);
    assert.match(page.text, /o-1/);
    assert.match(page.text, /action="\/_sim\/midtrans\/o-1\/notify"/);
    assert.equal(sim.state.orders.get("o-1").status, "pending");
  });

  test("validation: sum rule, duplicate order id, bad amount, long order id", async () => {
    const items = (price, quantity) => ({ item_details: [{ id: "a", price, quantity, name: "A" }] });
    const mismatch = await createOrder("o-2", 1000, items(300, 3));
    assert.equal(mismatch.status, 400);
    assert.deepEqual(mismatch.json.error_messages, ["transaction_details.gross_amount is not equal to the sum of item_details"]);
    assert.equal((await createOrder("o-2", 900, items(300, 3))).status, 201);
    const dup = await createOrder("o-2", 900);
    assert.deepEqual(dup.json.error_messages, ["transaction_details.order_id has already been taken"]);
    assert.equal((await createOrder("o-3", 10.5)).status, 400);
    assert.equal((await createOrder("o-3", "1000")).status, 400);
    assert.equal((await createOrder("x".repeat(51), 1000)).status, 400);
  });

  test("status API reflects notify; unknown order is 404", async () => {
    const auth = KEYS.MIDTRANS_SERVER_KEY;
    const unknown = await call("GET", "/v2/nope/status", { auth });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { status_code: "404", status_message: "Transaction doesn't exist." });
    assert.equal((await call("GET", "/v2/nope/status", { auth: "bad" })).status, 401);
    await createOrder("o-4", 250000);
    const pending = (await call("GET", "/v2/o-4/status", { auth })).json;
    assert.equal(pending.status_code, "201");
    assert.equal(pending.transaction_status, "pending");
    assert.match(pending.transaction_time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await call("POST", "/_sim/midtrans/o-4/notify", { body: { transaction_status: "settlement" } });
    const settled = (await call("GET", "/v2/o-4/status", { auth })).json;
    assert.equal(settled.status_code, "200");
    assert.equal(settled.transaction_status, "settlement");
    assert.equal(settled.gross_amount, "250000.00");
    assert.equal(settled.signature_key, midtransSignature("o-4", "200", "250000.00", auth));
    await call("POST", "/_sim/midtrans/o-4/notify", { body: { transaction_status: "expire" } });
    assert.equal((await call("GET", "/v2/o-4/status", { auth })).json.status_code, "407");
  });
});

describe("Midtrans notifications", () => {
  test("notify delivers a verifiable signature and an xxx.00 gross_amount", async () => {
    await createOrder("o-5", 150000);
    const res = await call("POST", "/_sim/midtrans/o-5/notify", { body: { transaction_status: "settlement" } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.delivered, { status: 200, body: { ok: true } });
    assert.equal(received.length, 1);
    assert.equal(received[0].url, "/api/payment/midtrans/webhook");
    assert.equal(received[0].headers["content-type"], "application/json");
    const body = JSON.parse(received[0].raw);
    assert.deepEqual(body, res.json.notification);
    assert.equal(body.gross_amount, "150000.00");
    assert.equal(body.status_code, "200");
    assert.equal(body.signature_key, midtransSignature(body.order_id, body.status_code, body.gross_amount, KEYS.MIDTRANS_SERVER_KEY));
  });

  test("overrides forge mismatches; unknown orders are allowed; target path", async () => {
    await createOrder("o-6", 150000);
    const forged = (await call("POST", "/_sim/midtrans/o-6/notify", { body: { transaction_status: "settlement", gross_amount: "1.00" } })).json.notification;
    assert.equal(forged.signature_key, midtransSignature("o-6", "200", "1.00", KEYS.MIDTRANS_SERVER_KEY));
    const bad = (await call("POST", "/_sim/midtrans/o-6/notify", { body: { transaction_status: "settlement", signature_key: "deadbeef" } })).json.notification;
    assert.equal(bad.signature_key, "deadbeef");
    const unknown = (await call("POST", "/_sim/midtrans/ghost/notify", { body: { transaction_status: "deny", target: "/elsewhere" } })).json.notification;
    assert.equal(unknown.gross_amount, "0.00");
    assert.equal(unknown.status_code, "202");
    assert.equal(received.at(-1).url, "/elsewhere");
    assert.equal((await call("POST", "/_sim/midtrans/o-6/notify", { body: { transaction_status: "bogus" } })).status, 400);
  });

  test("replay re-delivers identical bytes", async () => {
    await createOrder("o-7", 5000);
    await call("POST", "/_sim/midtrans/o-7/notify", { body: { transaction_status: "pending" } });
    await call("POST", "/_sim/midtrans/o-7/notify", { body: { transaction_status: "settlement" } });
    const replay = await call("POST", "/_sim/midtrans/o-7/replay", { body: {} });
    assert.equal(replay.status, 200);
    assert.equal(received[2].raw, received[1].raw);
    await call("POST", "/_sim/midtrans/o-7/replay", { body: { index: 0 } });
    assert.equal(received[3].raw, received[0].raw);
    assert.equal((await call("POST", "/_sim/midtrans/none/replay", { body: {} })).status, 404);
  });

  test("form-encoded notify from the redirect page answers HTML", async () => {
    await createOrder("o-8", 7000);
    const res = await call("POST", "/_sim/midtrans/o-8/notify", {
      body: "transaction_status=settlement",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /text\/html/);
    assert.equal(JSON.parse(received[0].raw).transaction_status, "settlement");
    const curlStyle = await call("POST", "/_sim/midtrans/o-8/notify", {
      body: JSON.stringify({ transaction_status: "expire" }),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(curlStyle.json.notification.transaction_status, "expire");
  });
});

describe("Midtrans Iris", () => {
  const payout = { beneficiary_name: "Budi", beneficiary_account: "1234567890", beneficiary_bank: "bca", amount: "88000.00", notes: "withdrawal w-1" };

  test("create, get and notify with a verifiable Iris-Signature", async () => {
    const auth = KEYS.MIDTRANS_IRIS_API_KEY;
    const unauthorized = await call("POST", "/iris/api/v1/payouts", { auth: "nope", body: { payouts: [payout] } });
    assert.equal(unauthorized.status, 401);
    assert.deepEqual(unauthorized.json, { error_message: "unauthorized" });
    const invalid = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [{ ...payout, amount: "88000.50", beneficiary_name: "" }] } });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json.error_message, "An error occurred when creating payouts");
    assert.equal(invalid.json.errors.length, 2);
    const created = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [payout, { ...payout, amount: 1000 }] } });
    assert.equal(created.status, 201);
    const [{ status, reference_no: ref }, second] = created.json.payouts;
    assert.equal(status, "queued");
    assert.notEqual(ref, second.reference_no);
    const details = (await call("GET", `/iris/api/v1/payouts/${ref}`, { auth })).json;
    assert.equal(details.amount, "88000.00");
    assert.equal(details.bank, "bca");
    assert.equal((await call("GET", "/iris/api/v1/payouts/missing", { auth })).status, 404);

    const res = await call("POST", `/_sim/iris/${ref}/notify`, { body: { status: "failed", error_code: "001", error_message: "Account closed" } });
    assert.equal(res.status, 200);
    const hook = received[0];
    assert.equal(hook.url, "/api/payment/midtrans/iris-webhook");
    assert.equal(hook.headers["iris-signature"], irisSignature(hook.raw, KEYS.MIDTRANS_IRIS_MERCHANT_KEY));
    assert.deepEqual(JSON.parse(hook.raw), { reference_no: ref, amount: "88000.00", status: "failed", updated_at: res.json.notification.updated_at, error_code: "001", error_message: "Account closed" });
    assert.equal((await call("GET", `/iris/api/v1/payouts/${ref}`, { auth })).json.status, "failed");
    await call("POST", `/_sim/iris/${ref}/notify`, { body: { status: "completed", signature: "forged" } });
    assert.equal(received[1].headers["iris-signature"], "forged");
  });
});

describe("Iris idempotency keys and partial refunds", () => {
  const payout = { beneficiary_name: "Budi", beneficiary_account: "1234567890", beneficiary_bank: "bca", amount: "88000.00", notes: "Withdrawal W1" };
  const auth = KEYS.MIDTRANS_IRIS_API_KEY;

  test("the same X-Idempotency-Key and body answer the first result and create nothing; another body is refused", async () => {
    const headers = { "x-idempotency-key": "withdrawal-W1" };
    const first = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [payout] }, headers });
    const again = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [payout] }, headers });
    assert.equal(first.status, 201);
    assert.deepEqual(again.json, first.json);
    assert.equal((await call("GET", "/_sim/state")).json.payouts.length, 1);
    const other = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [{ ...payout, amount: "1.00" }] }, headers });
    assert.equal(other.status, 422);
    assert.equal(other.json.error_message, "idempotency-key is not unique");
  });

  test("late creates the payout but answers after the client gave up; reject refuses and creates nothing", async () => {
    await call("POST", "/_sim/faults", { body: { target: "iris", mode: "late" } });
    await assert.rejects(call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [payout] }, signal: AbortSignal.timeout(300) }), { name: "TimeoutError" });
    assert.equal((await call("GET", "/_sim/state")).json.payouts.length, 1);
    await call("POST", "/_sim/faults", { body: { target: "iris", mode: "reject" } });
    const refused = await call("POST", "/iris/api/v1/payouts", { auth, body: { payouts: [payout] } });
    assert.equal(refused.status, 400);
    assert.ok(refused.json.error_message);
    assert.equal((await call("GET", "/_sim/state")).json.payouts.length, 1);
  });

  test("partial refunds accumulate in the status API; a full refund takes the rest", async () => {
    await createOrder("r-1", 85000);
    await call("POST", "/_sim/midtrans/r-1/notify", { body: { transaction_status: "settlement", deliver: false } });
    const partial = await call("POST", "/_sim/midtrans/r-1/notify", { body: { transaction_status: "partial_refund", refund_amount: 10000, deliver: false } });
    assert.equal(partial.json.notification.refund_amount, "10000.00");
    const status = (await call("GET", "/v2/r-1/status", { auth: KEYS.MIDTRANS_SERVER_KEY })).json;
    assert.equal(status.transaction_status, "partial_refund");
    assert.equal(status.refund_amount, "10000.00");
    await call("POST", "/_sim/midtrans/r-1/notify", { body: { transaction_status: "refund", deliver: false } });
    const full = (await call("GET", "/v2/r-1/status", { auth: KEYS.MIDTRANS_SERVER_KEY })).json;
    assert.equal(full.refund_amount, "85000.00");
    assert.equal(full.refunds.length, 2);
  });
});

describe("Xendit invoices", () => {
  test("create, get and notify with the callback token", async () => {
    const auth = KEYS.XENDIT_SECRET_KEY;
    const unauthorized = await call("POST", "/v2/invoices", { auth: "bad", body: { external_id: "x-1", amount: 50000 } });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.json.error_code, "INVALID_API_KEY");
    assert.equal((await call("POST", "/v2/invoices", { auth, body: { external_id: "x-1", amount: -5 } })).json.error_code, "API_VALIDATION_ERROR");
    const created = await call("POST", "/v2/invoices", { auth, body: { external_id: "x-1", amount: 50000, payer_email: "a@b.id", description: "Top up" } });
    assert.equal(created.status, 200);
    const invoice = created.json;
    assert.equal(invoice.status, "PENDING");
    assert.equal(invoice.invoice_url, `${sim.url}/xendit/invoices/${invoice.id}`);
    const dup = await call("POST", "/v2/invoices", { auth, body: { external_id: "x-1", amount: 50000 } });
    assert.equal(dup.status, 400);
    assert.equal(dup.json.error_code, "DUPLICATE_ERROR");
    assert.deepEqual((await call("GET", `/v2/invoices/${invoice.id}`, { auth })).json, invoice);
    assert.equal((await call("GET", "/v2/invoices/missing", { auth })).json.error_code, "INVOICE_NOT_FOUND_ERROR");

    await call("POST", `/_sim/xendit/${invoice.id}/notify`, { body: { status: "PAID" } });
    assert.equal(received[0].url, "/api/payment/xendit/webhook");
    assert.equal(received[0].headers["x-callback-token"], KEYS.XENDIT_CALLBACK_TOKEN);
    const hook = JSON.parse(received[0].raw);
    assert.equal(hook.external_id, "x-1");
    assert.equal(hook.status, "PAID");
    assert.equal(hook.paid_amount, 50000);
    assert.equal(hook.payer_email, "a@b.id");
    assert.equal((await call("GET", `/v2/invoices/${invoice.id}`, { auth })).json.status, "PAID");
    await call("POST", `/_sim/xendit/${invoice.id}/notify`, { body: { status: "SETTLED", callback_token: "wrong" } });
    assert.equal(received[1].headers["x-callback-token"], "wrong");
  });
});

describe("faults", () => {
  test("http500 fails the next `count` requests, then recovers", async () => {
    assert.equal((await call("POST", "/_sim/faults", { body: { target: "snap", mode: "http500", count: 2 } })).status, 200);
    for (let i = 0; i < 2; i++) {
      const res = await createOrder("f-1", 1000);
      assert.equal(res.status, 500);
      assert.equal(res.json.status_code, "500");
    }
    assert.equal((await createOrder("f-1", 1000)).status, 201);
    await call("POST", "/_sim/faults", { body: { target: "xendit", mode: "http500", count: 5 } });
    await call("POST", "/_sim/faults", { body: { target: "xendit", mode: "none" } });
    assert.equal((await call("GET", "/v2/invoices/x", { auth: KEYS.XENDIT_SECRET_KEY })).status, 404);
    assert.equal((await call("POST", "/_sim/faults", { body: { target: "db", mode: "http500" } })).status, 400);
  });

  test("timeout holds the request until the client gives up", async () => {
    await createOrder("f-2", 1000);
    await call("POST", "/_sim/faults", { body: { target: "status", mode: "timeout" } });
    const started = Date.now();
    await assert.rejects(
      call("GET", "/v2/f-2/status", { auth: KEYS.MIDTRANS_SERVER_KEY, signal: AbortSignal.timeout(300) }),
      { name: "TimeoutError" },
    );
    assert.ok(Date.now() - started < 2000);
    assert.equal((await call("GET", "/v2/f-2/status", { auth: KEYS.MIDTRANS_SERVER_KEY })).status, 200);
  });

  test("close() does not hang on a held request", async () => {
    const other = await startSimulator({ port: 0, keys: KEYS, log: false });
    await fetch(`${other.url}/_sim/faults`, { method: "POST", body: JSON.stringify({ target: "iris", mode: "timeout" }) });
    const pending = fetch(`${other.url}/iris/api/v1/payouts/x`).then(() => "answered", () => "failed");
    while (!(await isHeld(other))) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await other.close();
    assert.ok(Date.now() - started < 1000);
    assert.equal(await pending, "failed");
  });
});

// A held request has consumed the fault, so the fault list is empty once the request arrived.
async function isHeld(instance) {
  const res = await fetch(`${instance.url}/_sim/state`);
  return Object.keys((await res.json()).faults).length === 0;
}

describe("real midtrans-client 1.4.3 against the simulator", () => {
  before(() => {
    ApiConfig.SNAP_SANDBOX_BASE_URL = `${sim.url}/snap/v1`;
    ApiConfig.CORE_SANDBOX_BASE_URL = sim.url;
    ApiConfig.IRIS_SANDBOX_BASE_URL = `${sim.url}/iris/api/v1`;
  });

  test("Snap createTransaction, Core transaction.status and Iris createPayouts", async () => {
    const serverKey = KEYS.MIDTRANS_SERVER_KEY;
    const snap = new midtransClient.Snap({ isProduction: false, serverKey });
    const created = await snap.createTransaction({
      transaction_details: { order_id: "mc-1", gross_amount: 20000 },
      item_details: [{ id: "topup", price: 10000, quantity: 2, name: "Top up" }],
      customer_details: { email: "a@b.id" },
    });
    assert.ok(created.token);
    assert.ok(created.redirect_url.startsWith(`${sim.url}/snap/v4/redirection/`));

    const core = new midtransClient.CoreApi({ isProduction: false, serverKey });
    const status = await core.transaction.status("mc-1");
    assert.equal(status.transaction_status, "pending");
    assert.equal(status.gross_amount, "20000.00");

    const wrongKey = new midtransClient.Snap({ isProduction: false, serverKey: "nope" });
    await assert.rejects(wrongKey.createTransaction({ transaction_details: { order_id: "mc-2", gross_amount: 1 } }), { httpStatusCode: 401 });

    const iris = new midtransClient.Iris({ isProduction: false, serverKey: KEYS.MIDTRANS_IRIS_API_KEY });
    const payouts = await iris.createPayouts({
      payouts: [{ beneficiary_name: "Budi", beneficiary_account: "123", beneficiary_bank: "bca", beneficiary_email: "b@c.id", amount: "88000.00", notes: "w-2" }],
    });
    assert.equal(payouts.payouts[0].status, "queued");
    const details = await iris.getPayoutDetails(payouts.payouts[0].reference_no);
    assert.equal(details.amount, "88000.00");
  });
});
