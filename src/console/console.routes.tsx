import { and, desc, eq } from "drizzle-orm";
import { z } from "@hono/zod-openapi";
import { Hono, type Context } from "hono";
import { UserStatusChange } from "../admin/operations.routes";
import { AlertIdPattern, AlertReview } from "../fraud/fraud.routes";
import { KycReview } from "../kyc/kyc.routes";
import { WithdrawalResolution } from "../payouts/payouts.routes";
import { latestLedgerCheck, recordLedgerCheck } from "../admin/ledger-check";
import { USER_ID_PATTERN } from "../lib/auth";
import { batchRuns, kycSubmissions, payouts, withdrawals } from "../db/schema";
import { listAlerts, reviewAlert } from "../fraud/fraud.service";
import { decideHeldPayout } from "../jobs/batch-payouts";
import { reviewKyc, viewPhoto } from "../kyc/kyc.service";
import { ApiError } from "../lib/errors";
import { addDays, businessDay } from "../lib/time";
import { metricsReport } from "../metrics/metrics.service";
import { resolveWithdrawal } from "../payouts/withdrawals.service";
import { setUserStatus, userOverview } from "../users/users.service";
import { Action, Chart, Page } from "./layout";
import { consoleSession, flashSignature, loginCsrf, noStore, readForm, signIn, signOut, type ConsoleEnv } from "./session";
import { constantTimeEqual } from "../lib/crypto";

const rupiah = (v: number) => `Rp ${Math.round(v).toLocaleString("en-US")}`;
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
const when = (ms: number | null) => (ms === null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19));

/**
 * The banner after an action: `?ok=` / `?error=` with `sig`, an HMAC of the message under the session's
 * own CSRF secret. A message in an address someone else wrote (no valid signature) is not shown.
 */
async function flashOf(c: Context<ConsoleEnv>) {
  const q = new URL(c.req.url).searchParams;
  const [kind, text] = q.has("ok") ? (["ok", q.get("ok")!] as const) : q.has("error") ? (["error", q.get("error")!] as const) : [];
  if (!kind || !constantTimeEqual(q.get("sig") ?? "", await flashSignature(c.var.csrf, `${kind}:${text}`))) return {};
  return { [kind]: text };
}

/** Runs an action through the same service as the API; redirects back with its outcome, signed for this session. */
async function act(c: Context<ConsoleEnv>, back: string, run: () => Promise<unknown>, done: string): Promise<string> {
  let kind: "ok" | "error";
  let text: string;
  try {
    await run();
    [kind, text] = ["ok", done];
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    [kind, text] = ["error", `${error.code}: ${error.detail}`];
  }
  const sig = await flashSignature(c.var.csrf, `${kind}:${text}`);
  return `${back}${back.includes("?") ? "&" : "?"}${kind}=${encodeURIComponent(text)}&sig=${sig}`;
}

const field = (form: Record<string, unknown>, name: string) => (typeof form[name] === "string" ? (form[name] as string) : "");

/** A form's fields read through the API's own schema for the same action (same limits, same refusals). */
function formInput<T extends z.ZodObject>(schema: T, form: Record<string, unknown>, extra: Record<string, unknown> = {}): z.infer<T> {
  const fields = Object.keys(schema.shape).filter((k) => field(form, k) !== "").map((k) => [k, field(form, k)]);
  const parsed = schema.safeParse({ ...Object.fromEntries(fields), ...extra });
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({ path: ["form", ...i.path].join("."), message: i.message }));
    throw new ApiError("validation_failed", errors.map((e) => `${e.path}: ${e.message}`).join("; "), { errors });
  }
  return parsed.data;
}

/** Mounted at /admin: the operators' console, server-rendered, no script. */
export const consoleRouter = new Hono<ConsoleEnv>();

const LOGIN_ERRORS: Record<string, string> = {
  banned: "This admin account is banned.",
  form_expired: "The sign-in form expired; please try again.",
  invalid: "That is not a valid admin token.",
};

consoleRouter.use("*", noStore);

consoleRouter.get("/login", (c) => {
  const csrf = loginCsrf(c);
  const error = c.req.query("error");
  return c.html(
    <Page title="Sign in" flash={{ error: error ? (LOGIN_ERRORS[error] ?? LOGIN_ERRORS.invalid) : undefined }}>
      <form method="post" action="/admin/login" class="card">
        <input type="hidden" name="_csrf" value={csrf} />
        <p>
          <label>
            Admin token (JWT) <br />
            <input type="password" name="token" autocomplete="off" size={60} required />
          </label>
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Page>,
  );
});

consoleRouter.post("/login", async (c) => {
  const form = await readForm(c);
  const outcome = await signIn(c, field(form, "token"), field(form, "_csrf"));
  return c.redirect(outcome === "ok" ? "/admin" : `/admin/login?error=${outcome}`, 303);
});

consoleRouter.use("*", consoleSession);

consoleRouter.post("/logout", async (c) => {
  await signOut(c);
  return c.redirect("/admin/login", 303);
});

consoleRouter.get("/", async (c) => {
  const today = businessDay(Date.now(), c.var.config.BUSINESS_TZ_OFFSET);
  const [m, ledger] = await Promise.all([metricsReport(c.var.db, c.env, c.var.config, { from: addDays(today, -29), to: today }, Date.now()), latestLedgerCheck(c.var.db)]);
  const series = (pick: (d: (typeof m.days)[number]) => number | null) => m.days.map((d) => ({ label: d.date, value: pick(d) }));
  const t = m.totals;
  return c.html(
    <Page title="Overview" path="/admin" csrf={c.var.csrf} flash={await flashOf(c)}>
      <div class="card" id="ledger">
        Ledger check: <strong>{ledger ? (ledger.ok ? "ok" : "FAILED") : "not run yet"}</strong>{" "}
        {ledger ? <span class="muted">({when(ledger.checkedAt)}; it runs daily with the batch)</span> : null}{" "}
        <Action action="/admin/ledger-check" csrf={c.var.csrf}>
          <button type="submit">Check now</button>
        </Action>
      </div>
      <div class="card" id="totals">
        Last 30 days: {t.activeUsers} active users, {t.payers} payers, revenue {rupiah(t.revenueIdr)}, ARPU {rupiah(t.arpuIdr)}, conversion {pct(t.conversionRate)}, payment
        success {pct(t.paymentSuccessRate)}, gateway p50/p95 {t.gatewayLatencyMs.p50 ?? "–"}/{t.gatewayLatencyMs.p95 ?? "–"} ms, chargeback rate {pct(t.chargebackRate)}, bans per
        week {t.bansPerWeek}.
      </div>
      <div class="grid">
        <Chart title="Revenue per day" kind="bar" points={series((d) => d.revenueIdr)} format={rupiah} />
        <Chart title="Paying users per day" kind="line" points={series((d) => d.dailyActivePayers)} />
        <Chart title="Payment success" kind="line" points={series((d) => d.paymentSuccessRate)} format={pct} />
        <Chart title="Fraud alerts per day" kind="bar" points={series((d) => d.flaggedTransactions)} />
      </div>
    </Page>,
  );
});

consoleRouter.post("/ledger-check", async (c) =>
  c.redirect(
    await act(
      c,
      "/admin",
      async () => {
        const report = await recordLedgerCheck(c.var.db, Date.now(), c.var.config.BUSINESS_TZ_OFFSET);
        if (!report.ok) throw new ApiError("conflict", "The ledger check FAILED; a critical alert was raised (GET /api/admin/ledger/check has the details).");
      },
      "Ledger checked: ok.",
    ),
    303,
  ),
);

consoleRouter.get("/alerts", async (c) => {
  const status = c.req.query("status") as "open" | "investigating" | "resolved" | "false_positive" | undefined;
  const severity = c.req.query("severity") as "low" | "medium" | "high" | "critical" | undefined;
  const alertType = c.req.query("type") || undefined;
  const before = c.req.query("before");
  const filters = {
    status: status && ["open", "investigating", "resolved", "false_positive"].includes(status) ? status : undefined,
    severity: severity && ["low", "medium", "high", "critical"].includes(severity) ? severity : undefined,
    alertType: alertType && /^[a-z_]{1,60}$/.test(alertType) ? alertType : undefined,
  };
  const page = await listAlerts(c.var.db, { limit: 50, ...filters, before: before && AlertIdPattern.test(before) ? before : undefined });
  const query = (extra: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries({ status: filters.status, severity: filters.severity, type: filters.alertType, ...extra }).filter((e): e is [string, string] => e[1] !== undefined));
    return q.size > 0 ? `?${q}` : "";
  };
  // Where a review returns to: this page and its filters, without the banner of the last action.
  const back = `/admin/alerts${query(before && AlertIdPattern.test(before) ? { before } : {})}`;
  const older = page.nextCursor === null ? null : `/admin/alerts${query({ before: page.items.at(-1)!.id })}`;
  return c.html(
    <Page title="Fraud alerts" path="/admin/alerts" csrf={c.var.csrf} flash={await flashOf(c)}>
      <form method="get" action="/admin/alerts" class="card inline">
        <select name="status" aria-label="status">
          <option value="">any status</option>
          {["open", "investigating", "resolved", "false_positive"].map((s) => (
            <option value={s} selected={s === status}>
              {s}
            </option>
          ))}
        </select>
        <select name="severity" aria-label="severity">
          <option value="">any severity</option>
          {["low", "medium", "high", "critical"].map((s) => (
            <option value={s} selected={s === severity}>
              {s}
            </option>
          ))}
        </select>
        <input name="type" placeholder="alert type" value={alertType ?? ""} aria-label="alert type" />
        <button type="submit">Filter</button>
      </form>
      <table>
        <thead>
          <tr>
            <th>Raised</th>
            <th>User</th>
            <th>Type</th>
            <th>Severity</th>
            <th>Status</th>
            <th>Action</th>
            <th>Review</th>
          </tr>
        </thead>
        <tbody>
          {page.items.map((a) => (
            <tr data-alert={a.id}>
              <td>{a.createdAt}</td>
              <td>{a.userId ? <a href={`/admin/users/${a.userId}`}>{a.userId}</a> : "–"}</td>
              <td>{a.alertType}</td>
              <td>{a.severity}</td>
              <td class="status">{a.status}</td>
              <td>{a.actionTaken ?? "–"}</td>
              <td>
                <Action action={`/admin/alerts/${a.id}/review?back=${encodeURIComponent(back)}`} csrf={c.var.csrf}>
                  <select name="status" aria-label="new status">
                    {["investigating", "resolved", "false_positive"].map((s) => (
                      <option value={s}>{s}</option>
                    ))}
                  </select>
                  <select name="action" aria-label="action">
                    {["warned", "frozen", "banned", "cleared"].map((s) => (
                      <option value={s}>{s}</option>
                    ))}
                  </select>
                  <button type="submit">Review</button>
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {older ? (
        <p>
          <a href={older} rel="next">
            Older alerts →
          </a>
        </p>
      ) : null}
    </Page>,
  );
});

consoleRouter.post("/alerts/:id/review", async (c) => {
  const form = await readForm(c);
  const back = safeBack(c.req.query("back"), "/admin/alerts");
  return c.redirect(
    await act(c, back, async () => {
      const review = formInput(AlertReview, form, { alertId: c.req.param("id") });
      await reviewAlert(c.var.db, c.var.user.id, review);
    }, `Alert reviewed: ${field(form, "status")}, ${field(form, "action")}.`),
    303,
  );
});

/** Only a path inside the console may be a redirect target. */
function safeBack(back: string | undefined, fallback: string): string {
  return back && /^\/admin(\/[A-Za-z0-9_\-/]*)?(\?[A-Za-z0-9_\-=&%.]*)?$/.test(back) ? back : fallback;
}

consoleRouter.get("/kyc", async (c) => {
  const pending = await c.var.db.select().from(kycSubmissions).where(eq(kycSubmissions.status, "pending")).orderBy(kycSubmissions.id).limit(50);
  return c.html(
    <Page title="KYC queue" path="/admin/kyc" csrf={c.var.csrf} flash={await flashOf(c)}>
      {pending.length === 0 ? <p>Nothing waiting.</p> : null}
      {pending.map((k) => (
        <div class="card" data-kyc={k.userId}>
          <p>
            <a href={`/admin/users/${k.userId}`}>{k.userId}</a> · {k.idType.toUpperCase()} · submitted {when(k.submittedAt)}
          </p>
          <p>
            <img class="kyc" alt="ID photo" src={`/admin/kyc/${k.userId}/photo/id`} /> <img class="kyc" alt="Selfie" src={`/admin/kyc/${k.userId}/photo/selfie`} />
          </p>
          <Action action={`/admin/kyc/${k.userId}/review`} csrf={c.var.csrf}>
            <input type="hidden" name="submissionId" value={k.id} />
            <select name="decision" aria-label="decision">
              <option value="verified">verify</option>
              <option value="rejected">reject</option>
            </select>
            <input name="reason" placeholder="reason (for a rejection)" aria-label="reason" />
            <button type="submit">Decide</button>
          </Action>
        </div>
      ))}
    </Page>,
  );
});

consoleRouter.get("/kyc/:userId/photo/:kind", async (c) => {
  const { userId, kind } = c.req.param();
  if (!USER_ID_PATTERN.test(userId) || (kind !== "id" && kind !== "selfie")) return c.notFound();
  // The same service as the API: decrypted for this view, and the view audited.
  const photo = await viewPhoto(c.var.db, c.env.KYC_BUCKET, c.env, c.var.user.id, userId, kind);
  return c.body(photo.bytes, 200, { "content-type": photo.contentType, "cache-control": "no-store" });
});

consoleRouter.post("/kyc/:userId/review", async (c) => {
  const form = await readForm(c);
  const userId = c.req.param("userId");
  return c.redirect(
    await act(c, "/admin/kyc", async () => {
      if (!USER_ID_PATTERN.test(userId)) throw new ApiError("validation_failed", "No such user id.", { errors: [{ path: "param.userId", message: "not a user id" }] });
      const { decision, reason, submissionId } = formInput(KycReview, form);
      if (decision === "rejected" && !reason) throw new ApiError("validation_failed", "A rejection needs a reason.", { errors: [{ path: "form.reason", message: "required for a rejection" }] });
      await reviewKyc(c.var.db, c.var.user.id, userId, decision, reason, submissionId);
    }, `KYC of ${userId}: ${field(form, "decision")}.`),
    303,
  );
});

consoleRouter.get("/payouts", async (c) => {
  const held = await c.var.db.select().from(payouts).where(eq(payouts.status, "held")).orderBy(desc(payouts.day), payouts.id).limit(100);
  return c.html(
    <Page title="Held payouts" path="/admin/payouts" csrf={c.var.csrf} flash={await flashOf(c)}>
      {held.length === 0 ? <p>No payout is held.</p> : null}
      <table>
        <thead>
          <tr>
            <th>Day</th>
            <th>User</th>
            <th>Campaign</th>
            <th class="num">Units</th>
            <th class="num">Payout</th>
            <th class="num">Fee</th>
            <th>Decide</th>
          </tr>
        </thead>
        <tbody>
          {held.map((p) => (
            <tr data-payout={p.id}>
              <td>{p.day}</td>
              <td>
                <a href={`/admin/users/${p.userId}`}>{p.userId}</a>
              </td>
              <td>{p.campaignId}</td>
              <td class="num">{p.units}</td>
              <td class="num">{rupiah(p.amountIdr)}</td>
              <td class="num">{rupiah(p.feeIdr)}</td>
              <td>
                <Action action={`/admin/payouts/${p.id}/release`} csrf={c.var.csrf}>
                  <button type="submit">Release</button>
                </Action>{" "}
                <Action action={`/admin/payouts/${p.id}/reject`} csrf={c.var.csrf}>
                  <button type="submit">Reject</button>
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>,
  );
});

for (const decision of ["release", "reject"] as const) {
  consoleRouter.post(`/payouts/:id/${decision}`, async (c) =>
    c.redirect(await act(c, "/admin/payouts", () => decideHeldPayout(c.var.db, c.req.param("id"), decision, c.var.user.id), `Payout ${c.req.param("id")}: ${decision === "release" ? "released" : "rejected"}.`), 303),
  );
}

consoleRouter.get("/withdrawals", async (c) => {
  const rows = await c.var.db.select().from(withdrawals).where(and(eq(withdrawals.status, "pending"), eq(withdrawals.unconfirmed, true))).orderBy(withdrawals.id).limit(100);
  return c.html(
    <Page title="Unconfirmed withdrawals" path="/admin/withdrawals" csrf={c.var.csrf} flash={await flashOf(c)}>
      <p class="muted">Iris' answer was ambiguous; reconciliation keeps asking. Resolve one only once you know what Iris did.</p>
      {rows.length === 0 ? <p>None.</p> : null}
      <table>
        <thead>
          <tr>
            <th>Requested</th>
            <th>User</th>
            <th class="num">Net</th>
            <th>Bank</th>
            <th>Checks</th>
            <th>Resolve</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((w) => (
            <tr data-withdrawal={w.id}>
              <td>{when(w.createdAt)}</td>
              <td>
                <a href={`/admin/users/${w.userId}`}>{w.userId}</a>
              </td>
              <td class="num">{rupiah(w.netIdr)}</td>
              <td>
                {w.bankName} ···{w.accountNumber.slice(-4)}
              </td>
              <td>{w.checks}</td>
              <td>
                <Action action={`/admin/withdrawals/${w.id}/resolve`} csrf={c.var.csrf}>
                  <select name="outcome" aria-label="outcome">
                    <option value="completed">completed</option>
                    <option value="failed">failed</option>
                  </select>
                  <input name="reason" placeholder="what Iris' dashboard shows" required aria-label="reason" />
                  <button type="submit">Resolve</button>
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>,
  );
});

consoleRouter.post("/withdrawals/:id/resolve", async (c) => {
  const form = await readForm(c);
  return c.redirect(
    await act(c, "/admin/withdrawals", async () => {
      const { outcome, reason } = formInput(WithdrawalResolution, form);
      await resolveWithdrawal(c.var.db, c.req.param("id"), outcome, reason, c.var.user.id);
    }, `Withdrawal ${c.req.param("id")}: ${field(form, "outcome")}.`),
    303,
  );
});

consoleRouter.get("/users", async (c) => {
  const id = c.req.query("id")?.trim();
  if (id && USER_ID_PATTERN.test(id)) return c.redirect(`/admin/users/${id}`, 303);
  return c.html(
    <Page title="Users" path="/admin/users" csrf={c.var.csrf} flash={await flashOf(c)}>
      <form method="get" action="/admin/users" class="card inline">
        <input name="id" placeholder="user id" required aria-label="user id" />
        <button type="submit">Open</button>
      </form>
    </Page>,
  );
});

consoleRouter.get("/users/:id", async (c) => {
  const id = c.req.param("id");
  if (!USER_ID_PATTERN.test(id)) return c.notFound();
  let u;
  try {
    u = await userOverview(c.var.db, id);
  } catch (error) {
    if (error instanceof ApiError && error.code === "not_found") return c.html(<Page title={`User ${id}`} path="/admin/users" csrf={c.var.csrf} flash={{ error: "No such user." }} />, 404);
    throw error;
  }
  return c.html(
    <Page title={`User ${u.id}`} path="/admin/users" csrf={c.var.csrf} flash={await flashOf(c)}>
      <div class="card" id="user">
        Status <strong class="user-status">{u.status}</strong> · KYC {u.kycStatus} · {u.verificationRequired ? "verification required · " : ""}since {u.createdAt}
        <br />
        Coins {u.balances.coin} (locked {u.balances.coinLocked}) · Rupiah {u.balances.idr} (locked {u.balances.idrLocked}) · debt {u.balances.debt} coins, {u.balances.idrDebt} rupiah
      </div>
      {u.status !== "banned" ? (
        <Action action={`/admin/users/${u.id}/status`} csrf={c.var.csrf}>
          <input type="hidden" name="status" value={u.status === "frozen" ? "active" : "frozen"} />
          <input name="reason" placeholder="reason" required aria-label="reason" />
          <button type="submit">{u.status === "frozen" ? "Unfreeze" : "Freeze"}</button>
        </Action>
      ) : (
        <p>Banned: permanent.</p>
      )}
      <h2>Devices</h2>
      <table>
        <tbody>
          {u.devices.map((d) => (
            <tr>
              <td>{d.fingerprint}</td>
              <td>{d.userAgent ?? "–"}</td>
              <td>{d.ip ?? "–"}</td>
              <td>{d.lastSeen}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Recent transactions</h2>
      <table>
        <tbody>
          {u.recentTransactions.map((t) => (
            <tr>
              <td>{t.createdAt}</td>
              <td>{t.type}</td>
              <td>{t.status}</td>
              <td class="num">
                {t.amount} {t.asset}
              </td>
              <td>{t.role}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>,
  );
});

consoleRouter.post("/users/:id/status", async (c) => {
  const id = c.req.param("id");
  const form = await readForm(c);
  return c.redirect(
    await act(c, `/admin/users/${encodeURIComponent(id)}`, async () => {
      if (!USER_ID_PATTERN.test(id)) throw new ApiError("validation_failed", "No such user id.", { errors: [{ path: "param.id", message: "not a user id" }] });
      const { status, reason } = formInput(UserStatusChange, form);
      await setUserStatus(c.var.db, c.var.user.id, id, status, reason, Date.now());
    }, field(form, "status") === "frozen" ? "User frozen." : "User unfrozen."),
    303,
  );
});

consoleRouter.get("/batches", async (c) => {
  const runs = await c.var.db.select().from(batchRuns).orderBy(desc(batchRuns.day)).limit(30);
  return c.html(
    <Page title="Daily batch runs" path="/admin/batches" csrf={c.var.csrf} flash={await flashOf(c)}>
      <table>
        <thead>
          <tr>
            <th>Day</th>
            <th>Status</th>
            <th class="num">Active users</th>
            <th class="num">Runs</th>
            <th class="num">Queue messages</th>
            <th class="num">Failed chunks</th>
            <th>μ / σ</th>
            <th>Started</th>
            <th>Finished</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr>
              <td>{r.day}</td>
              <td>{r.status}</td>
              <td class="num">{r.activeUsers}</td>
              <td class="num">{r.runs}</td>
              <td class="num">{r.queueMessages}</td>
              <td class="num">{r.failedChunks}</td>
              <td>{r.mu === null ? "–" : `${r.mu.toFixed(2)} / ${(r.sigma ?? 0).toFixed(2)}`}</td>
              <td>{when(r.startedAt)}</td>
              <td>{when(r.finishedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>,
  );
});

