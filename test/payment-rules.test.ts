import { describe, expect, it } from "vitest";
import type { PaymentOrderRow } from "../src/db/schema";
import { assertBalanced } from "../src/ledger/plan";
import { creditPostings, midtransAction, parseGatewayAmount, reversalPostings, xenditAction } from "../src/payments/deposit-rules";
import { constantTimeEqual, ipAllowed, verifyIrisSignature, verifyMidtransSignature, sha512Hex } from "../src/payments/signatures";

const order = (over: Partial<PaymentOrderRow> = {}): PaymentOrderRow => ({
  id: "ORD-1", userId: "u1", kind: "coin_package", gateway: "midtrans", packageId: "pkg_500", campaignId: null, amountIdr: 45_000, coins: 500, bonusCoins: 50,
  status: "paid", gatewayStatus: null, gatewayRef: null, redirectUrl: null, failureReason: null, deviceFingerprint: null, createdAt: 0, updatedAt: 0, paidAt: 0, failedAt: null, chargedBackAt: null, reversedAmount: 0, refundedIdr: 0, ...over,
});

describe("status mapping", () => {
  it("maps every Midtrans status", () => {
    expect(midtransAction("settlement", undefined)).toBe("credit");
    expect(midtransAction("capture", "accept")).toBe("credit");
    expect(midtransAction("capture", "challenge")).toBe("wait");
    expect(midtransAction("capture", "deny")).toBe("fail");
    expect(midtransAction("pending", undefined)).toBe("wait");
    for (const s of ["deny", "cancel", "expire", "failure"]) expect(midtransAction(s, undefined)).toBe("fail");
    for (const s of ["refund", "partial_refund", "chargeback", "partial_chargeback"]) expect(midtransAction(s, undefined)).toBe("reverse");
    expect(midtransAction("authorize", undefined)).toBe("wait");
    expect(xenditAction("PAID")).toBe("credit");
    expect(xenditAction("SETTLED")).toBe("credit");
    expect(xenditAction("EXPIRED")).toBe("fail");
    expect(xenditAction("PENDING")).toBe("wait");
  });

  it("parses gateway amounts strictly", () => {
    expect(parseGatewayAmount("10000.00")).toBe(10_000);
    expect(parseGatewayAmount("10000")).toBe(10_000);
    expect(parseGatewayAmount(10_000)).toBe(10_000);
    for (const bad of ["10000.50", "1e4", "-10000", " 10000", "10,000", "", null, 10.5, "0x2710"]) expect(parseGatewayAmount(bad)).toBeNull();
  });
});

describe("deposit postings", () => {
  it("credit balances per asset and pays coins plus bonus", () => {
    const p = creditPostings(order());
    assertBalanced(p);
    expect(p.find((x) => x.accountId === "usr:u1:COIN")?.amount).toBe(550);
    const campaign = creditPostings(order({ kind: "campaign_deposit", campaignId: "C1", coins: 0, bonusCoins: 0, amountIdr: 50_000 }));
    assertBalanced(campaign);
    expect(campaign.find((x) => x.accountId === "cmp:C1:IDR")?.amount).toBe(50_000);
  });

  it("reversal undoes the credit and books what was spent as debt", () => {
    const full = reversalPostings(order(), 10_000).filter((p) => p.amount !== 0);
    assertBalanced(full);
    expect(full.find((x) => x.accountId === "usr:u1:COIN")?.amount).toBe(-550);
    const partial = reversalPostings(order(), 50);
    assertBalanced(partial);
    expect(partial.find((x) => x.accountId === "usr:u1:COIN")?.amount).toBe(-50);
    expect(partial.find((x) => x.accountId === "debt:u1:COIN")?.amount).toBe(-500);
  });
});

describe("signatures", () => {
  it("Midtrans signature over the strings as received", async () => {
    const n = { order_id: "ORD-1", status_code: "200", gross_amount: "10000.00" };
    const signature_key = await sha512Hex("ORD-1" + "200" + "10000.00" + "key");
    expect(await verifyMidtransSignature({ ...n, signature_key }, "key")).toBe(true);
    expect(await verifyMidtransSignature({ ...n, signature_key: signature_key.toUpperCase() }, "key")).toBe(true);
    expect(await verifyMidtransSignature({ ...n, gross_amount: "10000", signature_key }, "key")).toBe(false);
    expect(await verifyMidtransSignature({ ...n, signature_key }, "other")).toBe(false);
    expect(await verifyMidtransSignature({ ...n, gross_amount: 10000 as unknown as string, signature_key }, "key")).toBe(false);
  });

  it("Iris signature over the raw body", async () => {
    const raw = '{"reference_no":"r1","status":"completed"}';
    const sig = await sha512Hex(raw + "merchant");
    expect(await verifyIrisSignature(raw, sig, "merchant")).toBe(true);
    expect(await verifyIrisSignature(raw.replace("completed", "failed"), sig, "merchant")).toBe(false);
    expect(await verifyIrisSignature(raw, undefined, "merchant")).toBe(false);
  });

  it("constant-time equality and CIDR allow-lists", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(ipAllowed("1.2.3.4", "")).toBe(true);
    expect(ipAllowed("103.10.128.9", "103.10.128.0/22")).toBe(true);
    expect(ipAllowed("103.10.132.9", "103.10.128.0/22")).toBe(false);
    expect(ipAllowed(undefined, "1.2.3.4")).toBe(false);
    expect(ipAllowed("1.2.3.4", "1.2.3.4")).toBe(true);
    expect(ipAllowed("2001:db8::1", "2001:db8::/32")).toBe(true);
    expect(ipAllowed("2001:db9::1", "2001:db8::/32")).toBe(false);
    expect(ipAllowed("999.1.1.1", "0.0.0.0/0")).toBe(false);
    expect(ipAllowed("::ffff", "1.2.3.0/24")).toBe(false);
  });
});
