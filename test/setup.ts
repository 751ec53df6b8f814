import { applyD1Migrations, env } from "cloudflare:test";
import { afterAll, expect } from "vitest";
import { checkLedger } from "../src/admin/ledger-check";
import { createDb } from "../src/db/client";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Whatever a test file did, the ledger's invariants hold when it is over (SPEC §4, §15).
afterAll(async () => {
  const report = await checkLedger(createDb(env.DB));
  expect(report, JSON.stringify(report)).toMatchObject({ ok: true });
});
