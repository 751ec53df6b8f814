import { describe, expect, it } from "vitest";
import { adjust, adminToken, call, newUser, verifiedUser } from "./helpers";

/**
 * Every operation of the API description, driven with hostile input: path parameters with SQL
 * metacharacters or far too long, and for each property of a JSON body (starting from the operation's
 * own example) a wrong type, a huge, negative or fractional number, SQL metacharacters, a long string,
 * null, plus a body that is not JSON, an array, and one over the size limit. Nothing may answer 5xx, and
 * every refusal is problem+json. (The ledger check after each test proves nothing moved unbalanced.)
 */
type Op = { method: string; path: string; op: any };

const HOSTILE_PARAMS = ["x' OR '1'='1' --", "a".repeat(300), "..%2F..%2Fetc%2Fpasswd", "%00", "1e309", "-1"];
const HOSTILE_VALUES: unknown[] = ["' OR 1=1; DROP TABLE accounts; --", "🙂".repeat(3000), 2 ** 63, 1e308, -1, 1.5, -0, true, null, [], {}, { $gt: "" }, "9".repeat(400)];
const SOCKETS = new Set(["/api/realtime", "/api/realtime/lobby", "/api/realtime/admin"]);

function schemaOf(doc: any, schema: any): any {
  const ref = schema?.$ref as string | undefined;
  return ref ? doc.components.schemas[ref.split("/").at(-1)!] : schema;
}

function exampleOf(doc: any, op: any): Record<string, unknown> | undefined {
  const body = op.requestBody?.content?.["application/json"];
  if (!body) return undefined;
  return body.example ?? schemaOf(doc, body.schema)?.example ?? body.schema?.example;
}

function propertiesOf(doc: any, op: any): string[] {
  const schema = schemaOf(doc, op.requestBody?.content?.["application/json"]?.schema);
  return Object.keys(schema?.properties ?? {});
}

/** A path with its parameters filled: by `fill` for hostile runs, or a plain id. */
const pathWith = (path: string, fill: string) => path.replace(/\{[^}]+\}/g, () => fill);

async function sweep(ops: Op[], doc: any, token: string) {
  const failures: string[] = [];
  let requests = 0;
  const check = async (label: string, res: Awaited<ReturnType<typeof call>>) => {
    requests++;
    if (res.status >= 500 && res.status !== 502) failures.push(`${label}: ${res.status} ${res.text.slice(0, 200)}`);
    else if (res.status >= 400 && !(res.headers.get("content-type") ?? "").includes("application/problem+json")) failures.push(`${label}: ${res.status} without problem+json`);
  };
  const vars = { RATE_LIMIT_PER_MINUTE: "1000000" };
  for (const { method, path, op } of ops) {
    const params = /\{/.test(path) ? HOSTILE_PARAMS : ["plain-id"];
    for (const p of params) {
      const url = pathWith(path, encodeURIComponent(p).replaceAll("%25", "%"));
      if (method === "get" || method === "delete") {
        const query = (op.parameters ?? []).filter((q: any) => q.in === "query").map((q: any) => `${q.name}=${encodeURIComponent(String(HOSTILE_VALUES[0]))}`);
        await check(`${method} ${url}`, await call(method.toUpperCase(), `${url}${query.length ? `?${query.join("&")}` : ""}`, { token, vars }));
        continue;
      }
      const example = exampleOf(doc, op) ?? {};
      await check(`${method} ${url} no body`, await call(method.toUpperCase(), url, { token, vars }));
      if (p !== params[0]) continue;
      await check(`${method} ${url} not JSON`, await call(method.toUpperCase(), url, { token, vars, rawBody: "{not json", headers: { "content-type": "application/json" } }));
      await check(`${method} ${url} array`, await call(method.toUpperCase(), url, { token, vars, body: [example] }));
      await check(`${method} ${url} oversized`, await call(method.toUpperCase(), url, { token, vars, rawBody: JSON.stringify({ ...example, pad: "x".repeat(70 * 1024) }), headers: { "content-type": "application/json" } }));
      for (const prop of propertiesOf(doc, op)) {
        for (const value of HOSTILE_VALUES) {
          await check(`${method} ${url} ${prop}=${JSON.stringify(value)?.slice(0, 40)}`, await call(method.toUpperCase(), url, { token, vars, body: { ...example, [prop]: value } }));
        }
      }
    }
  }
  return { failures, requests };
}

describe("hostile input on every operation", () => {
  it("no operation answers 5xx, and every refusal is problem+json", async () => {
    const doc = (await call("GET", "/openapi.json")).json;
    const ops: Op[] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      if (SOCKETS.has(path)) continue;
      for (const [method, op] of Object.entries(methods)) ops.push({ method, path, op });
    }
    expect(ops.length).toBeGreaterThan(60);
    const user = await verifiedUser("sweep");
    await adjust(user.id, 1_000);
    await newUser("sweep-peer");
    const admin = await adminToken();
    const isAdmin = (path: string) => path.startsWith("/api/admin") || path.startsWith("/api/fraud");
    const members = await sweep(ops.filter((o) => !isAdmin(o.path)), doc, user.token);
    const admins = await sweep(ops.filter((o) => isAdmin(o.path)), doc, admin);
    expect(members.requests + admins.requests).toBeGreaterThan(1000);
    expect([...members.failures, ...admins.failures]).toEqual([]);
  }, 240_000);
});
