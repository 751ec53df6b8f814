#!/usr/bin/env node
// The README's walkthroughs, run as written against a fresh service: every shell block from
// "## Walkthrough" up to the daily payouts, in order, in bash, with only the ports changed. Each curl's
// HTTP status is recorded; the answers must all be 2xx except the refusals the README itself announces
// in a comment ("# 422 below_minimum"), in that order; the nightly batch it fires must pay bob what the
// README shows; and the ledger must add up afterwards.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signToken } from "./dev-token.mjs";
import { ensureDevVars } from "./dev-vars.mjs";
import { request, startLocalService } from "./local-service.mjs";

const port = Number(process.env.README_PORT ?? 8767);
const simPort = Number(process.env.README_SIM_PORT ?? 8768);
const readme = readFileSync("README.md", "utf8");
const from = readme.indexOf("## Walkthrough");
const to = readme.indexOf("### How a day is judged");
if (from < 0 || to < from) throw new Error("README sections not found: ## Walkthrough … ### How a day is judged");
const section = readme.slice(from, to);
const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
// Refusals the README announces: "# 422 below_minimum" — not the conditional ones ("… if demand moved it").
const expected = [...section.matchAll(/#\s+(4\d\d) ([a-z_]+)([^\n]*)/g)].filter((m) => !/\bif\b/.test(m[3])).map((m) => `${m[1]} ${m[2]}`);

const work = mkdtempSync(join(process.cwd(), ".readme-check-"));
const log = join(work, "statuses.log");
const script = [
  "set -u",
  `cd ${JSON.stringify(work)}`,
  // curl as written, plus its status (and the problem code, if any) appended to the log.
  `curl() { local out status; out=$(command curl -sS -w '\\n%{http_code}' "$@"); status=\${out##*$'\\n'}; out=\${out%$'\\n'*}; printf '%s' "$out"; printf '%s %s\\n' "$status" "$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(JSON.parse(s).code??"")}catch{}})')" >> ${JSON.stringify(log)}; }`,
  ...blocks.map((b) => b.replaceAll("localhost:8787", `localhost:${port}`).replaceAll("localhost:8790", `localhost:${simPort}`)),
].join("\n");
writeFileSync(join(work, "walkthrough.sh"), script);

const service = startLocalService({ name: "readme", port, simPort });
let failed = false;
try {
  await service.ready();
  const output = execFileSync("bash", [join(work, "walkthrough.sh")], { encoding: "utf8", timeout: 300_000, stdio: ["ignore", "pipe", "pipe"] });
  if (process.env.README_VERBOSE) console.log(output);
  const statuses = readFileSync(log, "utf8").trim().split("\n");
  const refused = statuses.map((s) => s.trim()).filter((s) => !/^2\d\d\b/.test(s));
  console.log(`${statuses.length} requests; refusals: ${refused.join(", ") || "none"}; announced: ${expected.join(", ") || "none"}`);
  if (JSON.stringify(refused) !== JSON.stringify(expected)) {
    failed = true;
    console.error(`FAIL: the walkthrough's refusals differ from what the README announces\n${output.slice(-4000)}`);
  }
  const { JWT_SECRET } = ensureDevVars();
  const admin = signToken("readme-admin", "admin", JWT_SECRET, 1);
  // The nightly batch the walkthrough fired finishes on the queue: it must pay bob what the README says.
  const today = new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 10);
  let batch;
  for (let i = 0; i < 120 && batch?.status !== "done"; i++) {
    batch = (await request("GET", `${service.api}/api/admin/batches/${today}`, { token: admin })).json;
    if (batch?.status !== "done") await new Promise((r) => setTimeout(r, 500));
  }
  const announced = Number(/"idrBalance":(\d+)/.exec(section)?.[1]);
  const bob = (await request("GET", `${service.api}/api/wallet/balance`, { token: signToken("bob", "user", JWT_SECRET, 1) })).json;
  console.log(`batch ${batch?.status}, levels ${JSON.stringify(batch?.levels)}, paid ${JSON.stringify(batch?.payouts?.paid)}; bob's idrBalance ${bob?.idrBalance} (README: ${announced})`);
  if (batch?.status !== "done" || !(announced > 0) || bob?.idrBalance !== announced) {
    failed = true;
    console.error("FAIL: the daily payout demo did not pay bob what the README shows");
  }
  const ledger = await request("GET", `${service.api}/api/admin/ledger/check`, { token: admin });
  if (ledger.json?.ok !== true) {
    failed = true;
    console.error(`FAIL: the ledger check after the walkthrough: ${ledger.text}`);
  }
} catch (error) {
  failed = true;
  console.error(`FAIL: ${error instanceof Error ? error.message : String(error)}\n${service.log().slice(-3000)}`);
} finally {
  service.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log(failed ? "README walkthrough: FAILED" : "README walkthrough: ok");
process.exit(failed ? 1 : 0);
