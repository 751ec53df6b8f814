#!/usr/bin/env node
// Prints an HS256 token signed with the local JWT_SECRET. Development only: production tokens come
// from the platform's identity service. Usage: npm run dev:token -- <userId> [user|admin] [hours]
import { createHmac } from "node:crypto";
import { ensureDevVars } from "./dev-vars.mjs";

export function signToken(sub, role, secret, hours = 24) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, role, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + hours * 3600 });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [sub = "demo-user", role = "user", hours = "24"] = process.argv.slice(2);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(sub) || !["user", "admin"].includes(role)) {
    console.error("usage: npm run dev:token -- <userId: [A-Za-z0-9_-]{1,64}> [user|admin] [hours]");
    process.exit(2);
  }
  console.log(signToken(sub, role, ensureDevVars().JWT_SECRET, Number(hours)));
}
