import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { sign } from "hono/jwt";
import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../src/config";
import { createDb } from "../src/db/client";
import { auditLog, users } from "../src/db/schema";
import { fragment, slot, template } from "../src/db/template";
import { translateBatchError } from "../src/ledger/executor";
import { checkGuards, guard, GuardError, type Guard } from "../src/ledger/guards";
import { verifyBearer } from "../src/lib/auth";
import { ApiError } from "../src/lib/errors";
import { loadRuntimeConfig } from "../src/secrets";
import { uniqueId } from "./helpers";

const db = () => createDb(env.DB);

describe("statements rendered once and bound per use (db/template.ts)", () => {
  it("renders once per shape, binds each use's values through the columns' encoders, and keeps shapes apart", async () => {
    const shapes: number[] = [];
    const audit = template((d, n: number) => {
      shapes.push(n);
      return d.insert(auditLog).values(Array.from({ length: n }, (_, i) => ({ actorId: slot(`actor${i}`), action: "template-test", subjectType: "t", subjectId: slot("subject"), details: slot(`details${i}`), createdAt: 1 })));
    });
    const subject = uniqueId("tpl");
    await db().batch([
      audit(db(), { subject, actor0: "a", details0: { n: 1, quote: "it's" } }, 1),
      audit(db(), { subject, actor0: "b", details0: { n: 2 } }, 1),
      audit(db(), { subject, actor0: "c", details0: {}, actor1: "d; DROP TABLE users --", details1: { list: [1, 2] } }, 2),
    ]);
    expect(shapes).toEqual([1, 2]);
    const rows = (await env.DB.prepare("SELECT actor_id, details FROM audit_log WHERE subject_id = ? ORDER BY id").bind(subject).all<{ actor_id: string; details: string }>()).results;
    // The json column's encoder ran on each use's value (stored as JSON text, not "[object Object]").
    expect(rows.map((r) => [r.actor_id, JSON.parse(r.details)])).toEqual([
      ["a", { n: 1, quote: "it's" }],
      ["b", { n: 2 }],
      ["c", {}],
      ["d; DROP TABLE users --", { list: [1, 2] }],
    ]);
  });

  it("refuses a use that leaves a value out instead of binding nothing", () => {
    const byId = template((d) => d.select({ id: users.id }).from(users).where(sql`${users.id} = ${slot("id")}`));
    expect(() => byId(db(), {})).toThrow(/placeholder "id"/);
  });

  it("returns rows mapped as the statement declares them", async () => {
    const id = uniqueId("tpl-user");
    await env.DB.prepare("INSERT INTO users (id, created_at, updated_at) VALUES (?, 5, 6)").bind(id).run();
    const byId = template((d) => d.select({ id: users.id, createdAt: users.createdAt }).from(users).where(sql`${users.id} = ${slot("id")}`));
    const [first, second] = await db().batch([byId(db(), { id }), byId(db(), { id: "nobody" })]);
    expect(first).toEqual([{ id, createdAt: 5 }]);
    expect(second).toEqual([]);
  });
});

describe("fragments rendered once (db/template.ts)", () => {
  it("each use is the same condition with its own values", async () => {
    const a = uniqueId("frag-a");
    const b = uniqueId("frag-b");
    await env.DB.prepare("INSERT INTO users (id, status, created_at, updated_at) VALUES (?, 'banned', 1, 1), (?, 'active', 1, 1)").bind(a, b).run();
    const banned = fragment<"userId">(({ userId }) => sql`exists (select 1 from ${users} where ${users.id} = ${userId} and ${users.status} = 'banned')`);
    const [rows] = await db().batch([db().select({ a: sql<number>`${banned({ userId: a })}`.as("a"), b: sql<number>`${banned({ userId: b })}`.as("b"), quote: sql<number>`${banned({ userId: "x' or 1=1 --" })}`.as("quote") }).from(sql`(select 1)`)]);
    expect(rows).toEqual([{ a: 1, b: 0, quote: 0 }]);
  });

  it("a guards statement joins fragments and rendered conditions as text: the first that holds names the refusal", async () => {
    const a = uniqueId("guard-a");
    await env.DB.prepare("INSERT INTO users (id, status, created_at, updated_at) VALUES (?, 'banned', 1, 1)").bind(a).run();
    const banned = fragment<"userId">(({ userId }) => sql`exists (select 1 from ${users} where ${users.id} = ${userId} and ${users.status} = 'banned')`);
    const refusal = (guards: Guard[]) =>
      db()
        .batch([checkGuards(db(), guards)])
        .then(
          () => null,
          (error) => {
            const refused = translateBatchError(error);
            return refused instanceof GuardError ? refused.guard : refused;
          },
        );
    // Values that look like SQL stay values, in a fragment and in a condition rendered per use.
    const hostile = "x' or 1=1 -- ?";
    expect(await refusal([guard("caller_banned", banned({ userId: hostile })), guard("recipient_missing", sql`${hostile} = 'y'`)])).toBeNull();
    expect(await refusal([guard("caller_frozen", sql`${hostile} != ${hostile}`), guard("caller_banned", banned({ userId: a })), guard("recipient_missing", sql`1 = ${1}`)])).toBe("caller_banned");
    expect(await refusal([guard("recipient_missing", sql`${"?"} = ${"?"}`), guard("caller_banned", banned({ userId: a }))])).toBe("recipient_missing");
    // A fragment still embeds in a drizzle statement.
    const [rows] = await db().batch([db().select({ x: sql<number>`${banned({ userId: a })}`.as("x") }).from(sql`(select 1)`)]);
    expect(rows).toEqual([{ x: 1 }]);
  });

  it("refuses text it could not split back into values", () => {
    const odd = fragment<"v">(({ v }) => sql`${v} = '?'`);
    expect(() => odd({ v: 1 })).toThrow(/literal "\?"/);
  });
});

describe("what a request no longer redoes", () => {
  it("the configuration is checked once per bindings object; a bad one fails every time", () => {
    const good = { ...env };
    const first = loadRuntimeConfig(good);
    expect(loadRuntimeConfig(good)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    // Another bindings object (new vars) is checked afresh.
    expect(loadRuntimeConfig({ ...env, RATE_LIMIT_PER_MINUTE: "3" }).RATE_LIMIT_PER_MINUTE).toBe(3);
    const bad = { ...env, RATE_LIMIT_PER_MINUTE: "-1" };
    expect(() => loadRuntimeConfig(bad)).toThrow(ConfigError);
    expect(() => loadRuntimeConfig(bad)).toThrow(ConfigError);
  });

  it("the JWT key is kept per secret: a token verifies only against the secret that signed it", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const one = await sign({ sub: "u1", role: "user", exp }, "secret-one-0123456789", "HS256");
    const two = await sign({ sub: "u2", role: "user", exp }, "secret-two-0123456789", "HS256");
    expect(await verifyBearer(`Bearer ${one}`, "secret-one-0123456789")).toEqual({ id: "u1", role: "user" });
    await expect(verifyBearer(`Bearer ${one}`, "secret-two-0123456789")).rejects.toBeInstanceOf(ApiError);
    expect(await verifyBearer(`Bearer ${two}`, "secret-two-0123456789")).toEqual({ id: "u2", role: "user" });
    await expect(verifyBearer(`Bearer ${two}`, "secret-one-0123456789")).rejects.toBeInstanceOf(ApiError);
  });

  it("a token verified once is not verified again, but still expires, and a not-yet-valid one is never kept", async () => {
    const secret = "secret-three-0123456789";
    const start = Date.now();
    const exp = Math.floor(start / 1000) + 60;
    const token = await sign({ sub: "u3", role: "admin", exp }, secret, "HS256");
    const early = await sign({ sub: "u4", role: "user", exp, nbf: Math.floor(start / 1000) + 30 }, secret, "HS256");
    vi.useFakeTimers({ toFake: ["Date"] });
    const hmac = vi.spyOn(crypto.subtle, "verify");
    try {
      expect(await verifyBearer(`Bearer ${token}`, secret)).toEqual({ id: "u3", role: "admin" });
      expect(await verifyBearer(`Bearer ${token}`, secret)).toEqual({ id: "u3", role: "admin" });
      expect(hmac).toHaveBeenCalledTimes(1);
      await expect(verifyBearer(`Bearer ${early}`, secret)).rejects.toBeInstanceOf(ApiError);
      vi.setSystemTime(start + 31_000);
      expect(await verifyBearer(`Bearer ${early}`, secret)).toEqual({ id: "u4", role: "user" });
      vi.setSystemTime(exp * 1000);
      await expect(verifyBearer(`Bearer ${token}`, secret)).rejects.toBeInstanceOf(ApiError);
      await expect(verifyBearer(`Bearer ${early}`, secret)).rejects.toBeInstanceOf(ApiError);
    } finally {
      vi.useRealTimers();
      hmac.mockRestore();
    }
  });
});
