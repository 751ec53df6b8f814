import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { eq } from "drizzle-orm";
import { users } from "../db/schema";
import type { AppEnv, AuthUser } from "../env";
import { verifyBearer } from "../lib/auth";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { lobbyShard } from "./outbox";

const TICKET = /^rt1\.([A-Za-z0-9_-]{1,88})\.([A-Za-z0-9_-]{43})$/;
const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

const userObject = (env: Env, userId: string) => env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId));

/**
 * Who is connecting: the bearer header (native clients) or a one-time ticket (browsers, which cannot
 * set headers on a WebSocket). A ticket names its user; only that user's object knows it, once.
 */
async function realtimeCaller(c: Context<AppEnv>): Promise<AuthUser> {
  const authorization = c.req.header("authorization");
  if (authorization) return verifyBearer(authorization, c.env.JWT_SECRET);
  const ticket = c.req.query("ticket");
  const match = ticket ? TICKET.exec(ticket) : null;
  if (!ticket || !match) throw new ApiError("unauthorized", "A bearer token or a ticket from POST /api/realtime/ticket is required.");
  let userId: string;
  try {
    userId = new TextDecoder().decode(Uint8Array.from(atob(match[1]!.replaceAll("-", "+").replaceAll("_", "/")), (ch) => ch.charCodeAt(0)));
  } catch {
    throw new ApiError("unauthorized", "The ticket is invalid.");
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(userId)) throw new ApiError("unauthorized", "The ticket is invalid.");
  const role = await userObject(c.env, userId).consumeTicket(ticket, Date.now());
  if (!role) throw new ApiError("unauthorized", "The ticket is unknown, used or expired.");
  return { id: userId, role };
}

/**
 * Rooms other than one's own are refused to a banned caller, as every route but reading one's own balance
 * and transactions is (SPEC §3; their own socket carries only those). The role is in the token, the ban in D1.
 */
async function refuseBanned(c: Context<AppEnv>, caller: AuthUser) {
  const [record] = await c.var.db.select({ status: users.status }).from(users).where(eq(users.id, caller.id));
  if (record?.status === "banned") throw new ApiError("account_banned", "This account is banned.");
}

/** Authenticates, then hands the upgrade to the object that holds the socket. Anything else is refused before the upgrade. */
type Target = { stub: { fetch(request: Request): Promise<Response> }; maxSockets: number; awayResyncMs?: number; maxPerUser?: number };

async function upgrade(c: Context<AppEnv>, pick: (caller: AuthUser) => Target | Promise<Target>) {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new ApiError("upgrade_required", "This is a WebSocket endpoint: send Upgrade: websocket.");
  // Checked before the caller: a ticket is used up by the authentication it buys, so a request refused for
  // its own fault must not spend it.
  const since = c.req.query("since");
  if (since !== undefined && !/^\d{1,15}$/.test(since)) throw new ApiError("validation_failed", "`since` is the last seq the client received.", { errors: [{ path: "query.since", message: "a whole number ≥ 0" }] });
  const caller = await realtimeCaller(c);
  const { stub, maxSockets, awayResyncMs, maxPerUser } = await pick(caller);
  const url = new URL("https://realtime.internal/socket");
  if (since !== undefined) url.searchParams.set("since", since);
  const headers: Record<string, string> = { upgrade: "websocket", "x-realtime-user": caller.id, "x-realtime-max-sockets": String(maxSockets) };
  if (awayResyncMs !== undefined) headers["x-realtime-away-resync-ms"] = String(awayResyncMs);
  if (maxPerUser !== undefined) headers["x-realtime-max-sockets-per-user"] = String(maxPerUser);
  return stub.fetch(new Request(url, { headers }));
}

const CATALOGUE =
  "Frames are JSON `{ seq, type, at, data }`; `seq` increases by one per socket source (your user, the lobby shard, the admins' room) without gaps (one is skipped when you come back after the replay window: you get `resync` then). " +
  "Events: `coin-balance-update { balance, available, change, reason, transactionId }` and `transaction-update { transactionId, type, status, asset, amount }` for every movement " +
  "that enters your history (transfers both sides, deposits, withdrawals and their outcome, payouts, unlocks, gifts, boosts, orders, refunds, debt settlements; also one of yours that moves only your debt or your campaign's budget, such as a chargeback of coins already spent or a campaign deposit: `transaction-update` only, one per movement), " +
  "`stream-boosted { streamId, boostLevel, startsAt, expiresAt }` in the lobby; `fraud-alert { alertId, userId, alertType, severity }` and `account-banned { userId }` in the admins' room (a banned admin's sockets there are then closed, code 4003, as are a banned user's lobby sockets). " +
  "Reconnect with `?since=<last seq>` to receive what you missed, in order, before live events; `{ type: \"resync\", seq }` means some are no longer kept " +
  "(REALTIME_REPLAY_EVENTS, REALTIME_REPLAY_HOURS) or could not be delivered in order: re-read balance and history. Send the text `ping` to get `pong` (answered without waking the server). " +
  "Events are published after the batch that caused them commits; a refused request publishes nothing. They are kept for you while you are present " +
  "(a socket open, or your last one closed within REALTIME_REPLAY_HOURS); back after longer, you get `resync` whatever `since` you send.";

const socketRoute = (path: string, summary: string) =>
  createRoute({
    method: "get",
    path,
    tags: ["realtime"],
    summary,
    description: CATALOGUE,
    security: bearerSecurity,
    request: { query: z.object({ ticket: z.string().optional().openapi({ description: "A one-time ticket instead of the bearer header (browsers)." }), since: z.string().optional().openapi({ description: "The last seq received." }) }) },
    responses: { 101: { description: "Switching Protocols: the WebSocket" }, ...errorResponses, 426: problemFor("Not a WebSocket upgrade (`upgrade_required`).") },
  });

/** Mounted at /api/realtime. */
export const realtimeRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/ticket",
      tags: ["realtime"],
      summary: "A one-time ticket to open a realtime WebSocket from a browser (valid REALTIME_TICKET_SECONDS, 60 s)",
      security: bearerSecurity,
      responses: { 201: { description: "Ticket", content: { "application/json": { schema: z.object({ ticket: z.string(), expiresAt: z.string() }).openapi("RealtimeTicket") } } }, ...errorResponses },
    }),
    async (c) => {
      const { id, role } = c.var.user;
      const ticket = `rt1.${b64url(new TextEncoder().encode(id))}.${b64url(crypto.getRandomValues(new Uint8Array(32)))}`;
      const expiresAt = await userObject(c.env, id).issueTicket(ticket, role, Date.now(), c.var.config.REALTIME_TICKET_SECONDS * 1000);
      return c.json({ ticket, expiresAt: new Date(expiresAt).toISOString() }, 201);
    },
  )
  .openapi(socketRoute("/", "Your realtime events over a WebSocket held by your user object (balance and transaction updates)"), async (c) =>
    upgrade(c, (caller) => ({ stub: userObject(c.env, caller.id), maxSockets: c.var.config.REALTIME_MAX_SOCKETS_PER_USER, awayResyncMs: c.var.config.REALTIME_REPLAY_HOURS * 3_600_000 })) as never,
  )
  .openapi(socketRoute("/lobby", "The lobby: stream-boosted broadcasts (your shard of the lobby)"), async (c) =>
    upgrade(c, async (caller) => {
      await refuseBanned(c, caller);
      return {
        stub: c.env.REALTIME_ROOMS.get(c.env.REALTIME_ROOMS.idFromName(`lobby:${lobbyShard(caller.id, c.var.config.REALTIME_LOBBY_SHARDS)}`)),
        maxSockets: c.var.config.REALTIME_MAX_SOCKETS_PER_ROOM,
        maxPerUser: c.var.config.REALTIME_MAX_SOCKETS_PER_USER,
      };
    }) as never,
  )
  .openapi(socketRoute("/admin", "Admins: every fraud alert as it is written"), async (c) =>
    upgrade(c, async (caller) => {
      if (caller.role !== "admin") throw new ApiError("forbidden", "The admins' room is for admins.");
      await refuseBanned(c, caller);
      return { stub: c.env.REALTIME_ROOMS.get(c.env.REALTIME_ROOMS.idFromName("admins")), maxSockets: c.var.config.REALTIME_MAX_SOCKETS_PER_ROOM, maxPerUser: c.var.config.REALTIME_MAX_SOCKETS_PER_USER };
    }) as never,
  );
