import { and, eq, gte, inArray, notLike, sql } from "drizzle-orm";
import type { Config } from "../config";
import { ruleInBatch } from "../fraud/engine";
import type { Db } from "../db/client";
import { accounts, fraudAlerts, paymentOrders, users, type PaymentOrderRow } from "../db/schema";
import { alertWhen, dedupeKey } from "../fraud/alerts";
import { campaignAccountId, userAccountId, userDebtAccountId } from "../ledger/accounts";
import { applyPlan, applyPlans, applyStatements, type ApplyOptions } from "../ledger/executor";
import { guard } from "../ledger/guards";
import { entryPlan, type LedgerPlan } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { idAfter, newId } from "../lib/ids";
import { actionForOrder, CANCELLED, creditedAmount, creditPostings, reversalPostings, reversalStep, type GatewayAction } from "./deposit-rules";

export type SettleOutcome = "credited" | "duplicate" | "failed" | "reversed" | "refunded" | "ignored";

/** Orders that can still be credited: a failure reported earlier may be overruled by a confirmed settlement. */
export const CREDITABLE: PaymentOrderRow["status"][] = ["pending", "failed"];
/** Whether a confirmed payment may still credit the order (a cancelled one is final: deposit-rules' CANCELLED; the gateway's status says so). */
export const creditable = (order: Pick<PaymentOrderRow, "status" | "gatewayStatus">) => CREDITABLE.includes(order.status) && order.gatewayStatus !== CANCELLED;
const creditableSql = (orderId: string) =>
  sql`exists (select 1 from ${paymentOrders} where ${paymentOrders.id} = ${orderId} and ${inArray(paymentOrders.status, CREDITABLE)} and coalesce(${paymentOrders.gatewayStatus}, '') <> ${CANCELLED})`;
/** Nothing more can happen to these: fully reversed after a credit, or refunded before one. */
export const FINAL: PaymentOrderRow["status"][] = ["reversed", "refunded"];

/**
 * multiple_failed_payments, as statements for the batch that fails an order (decided at commit time, so a
 * retry after a lost write judges the same failures): orders of the user the gateway failed in the last
 * hour. Our own outages when opening an order (`create_*` reasons) are not the user's failures, nor are
 * failures an earlier alert of the rule already stands for: a failure just after one is not a second
 * finding (which would freeze again a user an admin had just cleared).
 */
export function failedPaymentStatements(db: Db, config: Config, userId: string, orderId: string | null, now: number) {
  const previous = sql`(select max(${fraudAlerts.createdAt}) from ${fraudAlerts} where ${fraudAlerts.userId} = ${userId} and ${fraudAlerts.alertType} = 'multiple_failed_payments')`;
  const failedLastHour = sql`(select count(*) from ${paymentOrders} where ${and(
    eq(paymentOrders.userId, userId),
    eq(paymentOrders.status, "failed"),
    gte(paymentOrders.failedAt, now - 3_600_000),
    sql`${paymentOrders.failedAt} > coalesce(${previous}, -1)`,
    notLike(paymentOrders.failureReason, "create_%"),
  )})`;
  // Judged only when this batch failed the order (a repeated or late failure notification is no new failure).
  const failedNow = orderId === null ? failedLastHour : sql`(case when exists (select 1 from ${paymentOrders} where ${paymentOrders.id} = ${orderId} and ${paymentOrders.failedAt} = ${now}) then ${failedLastHour} else 0 end)`;
  return ruleInBatch(db, config, "multiple_failed_payments", "payment_failed", { userId, deviceFingerprint: null }, { failedLastHour: failedNow, previousAlertAt: previous }, now);
}

const walletOf = (order: PaymentOrderRow) => (order.kind === "campaign_deposit" ? campaignAccountId(order.campaignId!) : userAccountId(order.userId, "COIN"));

/**
 * A campaign's budget is its advertiser's money, held for them: their open debt is settled from it in the
 * batch that credits it (a deposit) or books that debt (a deposit's reversal the budget seemed unable to cover).
 */
const budgetHeldFor = (order: PaymentOrderRow) => (order.kind === "campaign_deposit" ? { heldFor: { [walletOf(order)]: { owner: order.userId, asset: "IDR" as const } } } : {});
/** Whose balance the transaction row records: the buyer's wallet; a campaign budget is not the advertiser's balance. */
const sideOf = (order: PaymentOrderRow) => (order.kind === "campaign_deposit" ? undefined : walletOf(order));

export interface Confirmed {
  gatewayStatus: string;
  /** Cumulative refunded (or charged back) rupiah, for reversals. */
  refundedIdr?: number;
  gatewayRef?: string;
}

/**
 * Applies what a confirmed gateway status means to an order. Each outcome happens at most once and
 * every state change is decided inside the batch that makes it: the credit under once-key
 * `deposit:<order>` and only while the order is creditable; each refund under a once-key of its
 * cumulative amount and only from the reversal state it was sized against.
 */
export async function settleOrder(db: Db, config: Config, order: PaymentOrderRow, action: GatewayAction, confirmed: Confirmed): Promise<SettleOutcome> {
  const now = Date.now();
  if (action === "wait") return "ignored";
  if (action === "fail") {
    // A late failure cannot undo money already received; only an order not yet paid fails, judged by the rule in the same batch.
    // A cancel also marks an order that failed before (a denied card the buyer then retried): cancelled is final.
    const cancel = confirmed.gatewayStatus === CANCELLED;
    // An order we failed on our own outage keeps that reason (it is not the user's failed payment).
    const reason = sql`case when substr(${paymentOrders.failureReason}, 1, 7) = 'create_' then ${paymentOrders.failureReason} else ${`gateway_${confirmed.gatewayStatus}`} end`;
    const [failed] = await applyStatements(db, [
      db
        .update(paymentOrders)
        .set({ status: "failed", gatewayStatus: confirmed.gatewayStatus, failureReason: reason, failedAt: sql`coalesce(${paymentOrders.failedAt}, ${now})`, updatedAt: now })
        .where(and(eq(paymentOrders.id, order.id), cancel ? inArray(paymentOrders.status, CREDITABLE) : eq(paymentOrders.status, "pending")))
        .returning({ id: paymentOrders.id, failedAt: paymentOrders.failedAt }),
      ...failedPaymentStatements(db, config, order.userId, order.id, now),
    ]);
    if ((failed as unknown[]).length > 0) return "failed";
    // Paid meanwhile (a credit committed while this was confirmed): a cancel still takes it back.
    const fresh = await db.query.paymentOrders.findFirst({ where: eq(paymentOrders.id, order.id) });
    if (fresh && actionForOrder(fresh, confirmed.gatewayStatus, action) === "reverse") return reverse(db, fresh, { ...confirmed, refundedIdr: fresh.amountIdr }, now);
    return "ignored";
  }
  if (action === "credit") return credit(db, order, confirmed, now);
  // A cancel of a credited capture reverses all of it.
  return reverse(db, order, confirmed.gatewayStatus === "cancel" ? { ...confirmed, refundedIdr: order.amountIdr } : confirmed, now);
}

/** The credit of a confirmed payment, refused at commit unless the order is still creditable (once-key `deposit:<order>`). */
function creditItem(db: Db, order: PaymentOrderRow, confirmed: Confirmed, now: number, id = newId(now)): { plan: LedgerPlan; options: ApplyOptions } {
  const coinPackage = order.kind === "coin_package";
  const plan = entryPlan({
    tx: {
      id,
      type: "deposit",
      asset: coinPackage ? "COIN" : "IDR",
      amount: creditedAmount(order),
      userId: order.userId,
      metadata: {
        orderId: order.id,
        paymentMethod: order.gateway,
        priceIdr: order.amountIdr,
        ...(coinPackage ? { packageId: order.packageId, coinsCredited: order.coins + order.bonusCoins, bonusCoins: order.bonusCoins } : { campaignId: order.campaignId }),
      },
      deviceFingerprint: order.deviceFingerprint,
    },
    postings: creditPostings(order),
    sideAccountId: sideOf(order),
    onceKeys: [`deposit:${order.id}`],
    ...budgetHeldFor(order),
    audit: { actorId: `gateway:${order.gateway}`, action: "payment.credit", subjectType: "payment_order", subjectId: order.id, details: { gatewayStatus: confirmed.gatewayStatus } },
    now,
  });
  return {
    plan,
    options: {
      // A refund confirmed first (status `refunded`), a cancel, or a credit already applied aborts this batch.
      guards: [guard("order_not_creditable", sql`not ${creditableSql(order.id)}`)],
      alongside: [
        db
          .update(paymentOrders)
          .set({ status: "paid", gatewayStatus: confirmed.gatewayStatus, gatewayRef: sql`coalesce(${confirmed.gatewayRef ?? null}, ${paymentOrders.gatewayRef})`, paidAt: now, failureReason: null, updatedAt: now })
          .where(eq(paymentOrders.id, order.id)),
        db
          .update(users)
          .set({
            ...(coinPackage ? { totalDepositedCoins: sql`${users.totalDepositedCoins} + ${creditedAmount(order)}` } : {}),
            // The first settled deposit makes the user a payer (metrics: new payers, conversion).
            firstPaidAt: sql`coalesce(${users.firstPaidAt}, ${now})`,
          })
          .where(eq(users.id, order.userId)),
      ],
    },
  };
}

async function credit(db: Db, order: PaymentOrderRow, confirmed: Confirmed, now: number): Promise<SettleOutcome> {
  const { plan, options } = creditItem(db, order, confirmed, now);
  try {
    await applyPlan(db, plan, options);
    return "credited";
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") return "duplicate";
    throw error;
  }
}

type Step = ReturnType<typeof reversalStep>;

/** A refund or a chargeback: the alert it raises, and the order's first chargeback time (metrics count a charged-back order once, on that day). */
function reversalKind(confirmed: Confirmed, now: number) {
  const chargeback = confirmed.gatewayStatus.includes("chargeback");
  return {
    alertType: chargeback ? ("chargeback" as const) : ("payment_refunded" as const),
    chargedBackAt: chargeback ? sql`coalesce(${paymentOrders.chargedBackAt}, ${now})` : sql`${paymentOrders.chargedBackAt}`,
  };
}

/**
 * One reversal step of a credited order, refused at commit if the order's reversal state moved since it was
 * sized (once-key of its cumulative refunded amount). `available` is what the wallet (or budget) can give:
 * the rest is booked to the owner's debt, which the batch settles from what the wallet holds at commit.
 */
async function reversalItem(db: Db, order: PaymentOrderRow, confirmed: Confirmed, step: Step, available: number, now: number, id = newId(now)): Promise<{ plan: LedgerPlan; options: ApplyOptions }> {
  const { alertType, chargedBackAt } = reversalKind(confirmed, now);
  const coinPackage = order.kind === "coin_package";
  const postings = reversalPostings(order, available, step);
  const debt = -(postings.at(-1)?.amount ?? 0);
  const plan = entryPlan({
    tx: {
      id,
      type: "refund",
      // A refund whose rupiah round into coins already taken back moves rupiah only.
      asset: coinPackage && step.amount > 0 ? "COIN" : "IDR",
      amount: step.amount > 0 ? step.amount : step.idrAmount,
      userId: order.userId,
      metadata: { orderId: order.id, paymentMethod: order.gateway, gatewayStatus: confirmed.gatewayStatus, refundedIdr: step.cumulativeIdr, reversed: step.amount, debtBooked: debt },
    },
    postings,
    sideAccountId: sideOf(order),
    onceKeys: [`reversal:${order.id}:${step.cumulativeIdr}`],
    ...budgetHeldFor(order),
    audit: { actorId: `gateway:${order.gateway}`, action: "payment.reverse", subjectType: "payment_order", subjectId: order.id, details: { gatewayStatus: confirmed.gatewayStatus, refundedIdr: step.cumulativeIdr, reversed: step.amount, debt } },
    now,
  });
  return {
    plan,
    options: {
      guards: [
        guard(
          "order_reversal_moved",
          sql`not exists (select 1 from ${paymentOrders} where ${paymentOrders.id} = ${order.id} and ${paymentOrders.status} = 'paid' and ${paymentOrders.reversedAmount} = ${order.reversedAmount} and ${paymentOrders.refundedIdr} = ${order.refundedIdr})`,
        ),
      ],
      alongside: [
        db
          .update(paymentOrders)
          .set({
            status: step.complete ? "reversed" : "paid",
            reversedAmount: step.reversedTotal,
            refundedIdr: Math.max(step.cumulativeIdr, order.refundedIdr),
            gatewayStatus: confirmed.gatewayStatus,
            chargedBackAt,
            updatedAt: now,
          })
          .where(eq(paymentOrders.id, order.id)),
        // SPEC §5's totalDeposited counts the coins deposits still stand for: what a refund takes back is no longer deposited.
        ...(coinPackage && step.amount > 0 ? [db.update(users).set({ totalDepositedCoins: sql`${users.totalDepositedCoins} - ${step.amount}` }).where(eq(users.id, order.userId))] : []),
        // `debt`: what the owner owes in the asset once this batch settled what it could (read at commit:
        // what it booked may have been covered by the wallet or budget in the same batch).
        alertWhen(
          db,
          {
            userId: order.userId,
            alertType,
            severity: "high",
            details: sql`json_object('orderId', ${order.id}, 'amountIdr', ${order.amountIdr}, 'refundedIdr', ${step.cumulativeIdr}, 'reversed', ${step.amount}, 'gatewayStatus', ${confirmed.gatewayStatus}, 'debt', -coalesce((select ${accounts.balance} from ${accounts} where ${accounts.id} = ${userDebtAccountId(order.userId, coinPackage ? "COIN" : "IDR")}), 0))`,
            dedupeKey: await dedupeKey(alertType, order.id, step.cumulativeIdr),
          },
          now,
          sql`1`,
        ),
      ],
    },
  };
}

/**
 * Refund or chargeback. A full one before the credit marks the order `refunded` (no credit may follow). A
 * partial one proves the payment settled: the credit and the reversal of the refunded part commit in one
 * batch, so the buyer keeps what they still paid for whatever order the notifications are handled in.
 * After the credit, the part of it the refunded rupiah stand for is reversed; what the wallet no longer
 * holds becomes recorded debt instead of a silent failure, and an alert goes to the admins. The wallet read
 * and the order's reversal state only size the step: a guard aborts the batch if the order moved on
 * meanwhile and the accounts CHECK refuses an overdraft, and the step is then sized again. After an
 * overdraft (the owner spent, or the budget paid out, meanwhile) the step reads no wallet: it books the
 * whole step to the owner's debt, so spending cannot keep an authentic notification from being applied
 * (SPEC §6.2). Either way what is booked to debt is settled in the batch from what the wallet (a campaign's
 * budget first, then the advertiser's own rupiah) holds at commit: debt is only what it cannot cover then.
 */
async function reverse(db: Db, first: PaymentOrderRow, confirmed: Confirmed, now: number): Promise<SettleOutcome> {
  const { alertType, chargedBackAt } = reversalKind(confirmed, now);
  const refundedIdr = confirmed.refundedIdr ?? first.amountIdr;
  let order = first;
  let outspent = false;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      if (CREDITABLE.includes(order.status) && refundedIdr < order.amountIdr && creditable(order)) {
        // Credited, then reversed in part: the step is sized against the order as the credit leaves it, and
        // may take all of the credit unless settling the owner's open debt took some of it first.
        const paid: PaymentOrderRow = { ...order, status: "paid" };
        const step = reversalStep(paid, refundedIdr);
        // The refund is listed after its deposit (and the deposit's debt settlement): its id follows theirs.
        const creditId = newId(now);
        const items = [creditItem(db, order, confirmed, now, creditId)];
        if (step.amount > 0 || step.idrAmount > 0) items.push(await reversalItem(db, paid, confirmed, step, outspent ? 0 : creditedAmount(order), now, idAfter(creditId)));
        await applyPlans(db, items);
        return items.length > 1 ? "reversed" : "credited";
      }
      if (CREDITABLE.includes(order.status)) {
        // The mark and its alert commit together (the alert only if this batch marked it; once per order).
        const [marked] = await applyStatements(db, [
          db
            .update(paymentOrders)
            .set({
              status: "refunded",
              gatewayStatus: confirmed.gatewayStatus,
              refundedIdr: Math.min(refundedIdr, order.amountIdr),
              chargedBackAt,
              updatedAt: now,
            })
            .where(and(eq(paymentOrders.id, order.id), inArray(paymentOrders.status, CREDITABLE)))
            .returning({ id: paymentOrders.id }),
          alertWhen(
            db,
            { userId: order.userId, alertType, severity: "high", details: { orderId: order.id, amountIdr: order.amountIdr, gatewayStatus: confirmed.gatewayStatus, beforeCredit: true }, dedupeKey: await dedupeKey(alertType, order.id, "before_credit") },
            now,
            sql`changes() > 0`,
          ),
        ]);
        if ((marked as unknown[]).length > 0) return "refunded";
      } else if (order.status !== "paid") {
        return "duplicate";
      } else {
        const step = reversalStep(order, refundedIdr);
        if (step.amount === 0 && step.idrAmount === 0) return "duplicate";
        const wallet = outspent ? undefined : await db.query.accounts.findFirst({ where: eq(accounts.id, walletOf(order)) });
        const { plan, options } = await reversalItem(db, order, confirmed, step, wallet ? wallet.balance - wallet.locked : 0, now);
        await applyPlan(db, plan, options);
        return "reversed";
      }
    } catch (error) {
      // Applied already (a repeat), or the order moved on (credited, reversed, refunded meanwhile): read it and decide again.
      if (!(error instanceof ApiError) || !["already_applied", "insufficient_funds", "conflict"].includes(error.code)) throw error;
      if (error.code === "insufficient_funds") outspent = true;
    }
    const fresh = await db.query.paymentOrders.findFirst({ where: eq(paymentOrders.id, first.id) });
    if (!fresh) throw new ApiError("not_found", "No such order.");
    order = fresh;
  }
  throw new Error(`reversal of ${first.id} kept racing with other movements`);
}
