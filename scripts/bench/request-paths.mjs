// The four request paths `npm run bench` compares and `npm run bench:profile` profiles: 20 funded users
// transferring 1–5 coins among themselves, on a service whose rate limit, velocity rule and daily limit
// are lifted (the users deliberately send far more than those allow, so the figures show the paths).
import { signToken } from "../dev-token.mjs";

export const USERS = 20;

export const REQUEST_PATH_VARS = ["D1_METRICS:true", "RATE_LIMIT_PER_MINUTE:1000000", "RAPID_TRANSACTIONS_PER_MINUTE:1000000", "SPEND_LIMIT_DAILY_UNVERIFIED_IDR:1000000000000"];

/** Creates and funds the users on a started service; returns the admin token and the endpoints by name. */
export async function requestPaths(service) {
  const suffix = Date.now().toString(36);
  const admin = signToken(`bench-admin-${suffix}`, "admin", service.secret, 2);
  const users = Array.from({ length: USERS }, (_, i) => ({ id: `bench-u${i}-${suffix}`, token: signToken(`bench-u${i}-${suffix}`, "user", service.secret, 2) }));
  for (const u of users) {
    await service.call("GET", "/api/wallet/balance", u.token); // first sight
    const funded = await service.call("POST", "/api/admin/adjustments", admin, { userId: u.id, asset: "COIN", amount: 1_000_000_000, reason: "benchmark funding" });
    if (funded.status !== 201) throw new Error(`funding ${u.id}: ${funded.status} ${funded.text.slice(0, 300)}`);
  }
  const pick = (i) => users[i % USERS];
  const endpoints = {
    healthz: { ok: 200, make: () => ({ method: "GET", path: "/healthz" }) },
    packages: { ok: 200, make: () => ({ method: "GET", path: "/api/payment/packages" }) },
    balance: { ok: 200, make: (i) => ({ method: "GET", path: "/api/wallet/balance", token: pick(i).token }) },
    transfer: {
      ok: 201,
      make: (i) => {
        const from = pick(i);
        const to = users[(i + 1 + Math.floor(Math.random() * (USERS - 1))) % USERS];
        return { method: "POST", path: "/api/wallet/transfer", token: from.token, body: { toUserId: to.id, amount: 1 + (i % 5) } };
      },
    },
  };
  return { admin, endpoints };
}
