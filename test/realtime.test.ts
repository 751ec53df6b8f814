import { createExecutionContext, createScheduledController, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import type { UserActivity } from "../src/durable/user-activity";
import { createDb } from "../src/db/client";
import { systemAccountId, userDebtAccountId } from "../src/ledger/accounts";
import { applyPlan } from "../src/ledger/executor";
import { movePlan } from "../src/ledger/plan";
import { newId } from "../src/lib/ids";
import { loadConfig } from "../src/config";
import { publishOutbox } from "../src/realtime/outbox";
import { DAILY_BATCH_CRON } from "../src/jobs/crons";
import { adjust, adminToken, call, d1Refusing, expectProblem, midtransNotification, newUser, postMidtransWebhook, setUserStatus, tokenFor, uniqueId } from "./helpers";

type Frame = { seq?: number; type: string; at?: string; data?: any };

interface Socket {
  ws: WebSocket;
  /** The upgrade response's headers. */
  headers: Headers;
  frames: Frame[];
  closed: { code: number } | null;
  /** Waits until at least `n` frames arrived (or fails after `ms`). */
  next(n: number, ms?: number): Promise<Frame[]>;
}

async function connect(path: string, opts: { token?: string; query?: Record<string, string>; upgrade?: boolean; vars?: Record<string, string> } = {}): Promise<Socket | { status: number; json: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (opts.upgrade !== false) headers.upgrade = "websocket";
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const qs = new URLSearchParams(opts.query ?? {}).toString();
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://money.test/api/realtime${path}${qs ? `?${qs}` : ""}`, { headers }) as Request<unknown, IncomingRequestCfProperties>, { ...env, ...opts.vars }, ctx);
  await waitOnExecutionContext(ctx);
  if (res.status !== 101 || !res.webSocket) return { status: res.status, json: await res.json(), headers: res.headers };
  const ws = res.webSocket;
  const socket: Socket = {
    ws,
    headers: res.headers,
    frames: [],
    closed: null,
    async next(n, ms = 3000) {
      const deadline = Date.now() + ms;
      while (socket.frames.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return socket.frames;
    },
  };
  ws.addEventListener("message", (e) => socket.frames.push(JSON.parse(String(e.data))));
  ws.addEventListener("close", (e) => (socket.closed = { code: e.code }));
  ws.accept();
  return socket;
}

const open = async (path: string, opts: Parameters<typeof connect>[1]) => {
  const s = await connect(path, opts);
  if (!("ws" in s)) throw new Error(`no socket: ${s.status} ${JSON.stringify(s.json)}`);
  return s;
};
/** The first frame that matches, waiting up to `ms`. */
async function until(s: Socket, match: (f: Frame) => boolean, ms = 3000): Promise<Frame | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const found = s.frames.find(match);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}
const quiet = () => new Promise((r) => setTimeout(r, 250));
/** Bob had a socket, received Alice's transfer (up to `seen`) and closed it. */
async function receivedThenLeft() {
  const [alice, bob] = [await newUser("alice"), await newUser("bob")];
  await adjust(alice.id, 500);
  const s = await open("", { token: bob.token });
  expect((await transfer(alice, bob.id, 1)).status).toBe(201);
  const seen = (await s.next(2)).at(-1)!.seq!;
  s.ws.close(1000, "bye");
  await quiet();
  return { alice, bob, seen };
}
/** Makes the user's last socket have closed `ms` earlier (in D1's presence and in their object). */
async function awayFor(userId: string, ms: number) {
  await env.DB.prepare("UPDATE realtime_presence SET last_seen = last_seen - ? WHERE user_id = ?").bind(ms, userId).run();
  await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId)), (_, state) => {
    state.storage.sql.exec("UPDATE realtime_away SET since = since - ?", ms);
  });
}
/** How many events the user's object keeps in its replay log. */
const logged = (userId: string) =>
  runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId)), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM realtime_events").one().n);
const transfer = (from: { token: string }, to: string, amount: number, vars?: Record<string, string>) => call("POST", "/api/wallet/transfer", { token: from.token, body: { toUserId: to, amount }, vars });

describe("realtime events over WebSockets", () => {
  it("a transfer reaches both sides' sockets with the right numbers; a refused transfer sends nothing", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 500);
    const a = await open("", { token: alice.token });
    const b = await open("", { token: bob.token });
    const phone = await open("", { token: bob.token });
    const res = await transfer(alice, bob.id, 120);
    expect(res.status).toBe(201);
    const [aBalance, aTx] = await a.next(2);
    expect(aBalance).toMatchObject({ seq: expect.any(Number), type: "coin-balance-update", data: { balance: 380, change: -120, reason: "transfer", transactionId: res.json.id } });
    expect(aTx).toMatchObject({ seq: aBalance!.seq! + 1, type: "transaction-update", data: { transactionId: res.json.id, status: "completed", amount: 120, asset: "COIN" } });
    for (const s of [b, phone]) {
      const [balance, tx] = await s.next(2);
      expect(balance).toMatchObject({ seq: 1, type: "coin-balance-update", data: { balance: 120, change: 120, reason: "transfer" } });
      expect(tx).toMatchObject({ seq: 2, type: "transaction-update", data: { transactionId: res.json.id, amount: 120 } });
      expect(Date.parse(tx!.at!)).toBeGreaterThan(0);
    }
    expectProblem(await transfer(bob, alice.id, 121), 422, "insufficient_funds");
    await quiet();
    expect(b.frames).toHaveLength(2);
    expect(a.frames).toHaveLength(2);
    for (const s of [a, b, phone]) s.ws.close(1000, "done");
  });

  it("reconnecting with since replays exactly what was missed, in order, then live events; a since older than what is kept gets resync", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 500);
    const first = await open("", { token: bob.token });
    expect((await transfer(alice, bob.id, 1)).status).toBe(201);
    const seen = (await first.next(2)).at(-1)!.seq!;
    first.ws.close(1000, "going offline");
    for (const amount of [2, 3, 4]) expect((await transfer(alice, bob.id, amount)).status).toBe(201);

    const back = await open("", { token: bob.token, query: { since: String(seen) } });
    const replayed = await back.next(6);
    expect(replayed).toHaveLength(6);
    expect(replayed.map((f) => f.seq)).toEqual([seen + 1, seen + 2, seen + 3, seen + 4, seen + 5, seen + 6]);
    expect(replayed.filter((f) => f.type === "coin-balance-update").map((f) => f.data.change)).toEqual([2, 3, 4]);
    expect((await transfer(alice, bob.id, 5)).status).toBe(201);
    const live = await back.next(8);
    expect(live.slice(6).map((f) => [f.seq, f.type])).toEqual([
      [seen + 7, "coin-balance-update"],
      [seen + 8, "transaction-update"],
    ]);
    // Up to date: nothing to replay.
    const current = await open("", { token: bob.token, query: { since: String(seen + 8) } });
    await quiet();
    expect(current.frames).toEqual([]);

    // Only 2 events kept: since=0 is too old.
    expect((await transfer(alice, bob.id, 6, { REALTIME_REPLAY_EVENTS: "2" })).status).toBe(201);
    const stale = await open("", { token: bob.token, query: { since: "0" } });
    expect(await stale.next(1)).toEqual([{ type: "resync", seq: seen + 10 }]);
    const ahead = await open("", { token: bob.token, query: { since: String(seen + 99) } });
    expect(await ahead.next(1)).toEqual([{ type: "resync", seq: seen + 10 }]);
    for (const s of [back, current, stale, ahead]) s.ws.close(1000, "done");
  });

  it("tickets: one use, 60 s, bound to their user; no auth or a bad token is 401 before the upgrade; not an upgrade is 426", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    const ticket = (await call("POST", "/api/realtime/ticket", { token: alice.token })).json.ticket as string;
    expect(ticket).toMatch(/^rt1\./);
    // A request refused before the upgrade for its own fault leaves the one-time ticket unused.
    expect(await connect("", { query: { ticket, since: "latest" } })).toMatchObject({ status: 400, json: { code: "validation_failed" } });
    const s = await open("", { query: { ticket } });
    // The object's upgrade response passes through the Worker's security headers too.
    expect(s.headers.get("x-content-type-options")).toBe("nosniff");
    expect(s.headers.get("x-frame-options")).toBe("DENY");
    s.ws.close(1000, "done");
    const reused = await connect("", { query: { ticket } });
    expect(reused).toMatchObject({ status: 401, json: { code: "unauthorized" } });

    // Another user's name on a ticket: that user's object never issued it.
    const mine = (await call("POST", "/api/realtime/ticket", { token: alice.token })).json.ticket as string;
    const forged = mine.replace(/^rt1\.[^.]+\./, `rt1.${btoa(bob.id).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}.`);
    expect(await connect("", { query: { ticket: forged } })).toMatchObject({ status: 401 });
    expect(await connect("", { query: { ticket: "rt1.x.y" } })).toMatchObject({ status: 401 });
    expect(await connect("", {})).toMatchObject({ status: 401, json: { code: "unauthorized" } });
    expect(await connect("", { token: await tokenFor(alice.id, "user", {}, "not-the-secret") })).toMatchObject({ status: 401 });
    expect(await connect("", { token: alice.token, upgrade: false })).toMatchObject({ status: 426, json: { code: "upgrade_required" } });
    expect(await connect("", { token: alice.token, query: { since: "-1" } })).toMatchObject({ status: 400 });
    expect(await connect("/admin", { token: alice.token })).toMatchObject({ status: 403, json: { code: "forbidden" } });
    // A banned admin is refused the admins' room like everything else, by bearer and by ticket.
    const bannedAdmin = uniqueId("ops-banned");
    const bannedToken = await tokenFor(bannedAdmin, "admin");
    const adminTicket = (await call("POST", "/api/realtime/ticket", { token: bannedToken })).json.ticket;
    await setUserStatus(bannedAdmin, "banned");
    expect(await connect("/admin", { token: bannedToken })).toMatchObject({ status: 403, json: { code: "account_banned" } });
    expect(await connect("/admin", { query: { ticket: adminTicket } })).toMatchObject({ status: 403, json: { code: "account_banned" } });
    // A banned user keeps reading their own balance and transactions (SPEC §3), so their own socket stays
    // open to them; the lobby is not theirs to read.
    const bannedUser = uniqueId("banned-lobby");
    const bannedUserToken = await tokenFor(bannedUser);
    const lobbyTicket = (await call("POST", "/api/realtime/ticket", { token: bannedUserToken })).json.ticket;
    await setUserStatus(bannedUser, "banned");
    expect(await connect("/lobby", { token: bannedUserToken })).toMatchObject({ status: 403, json: { code: "account_banned" } });
    expect(await connect("/lobby", { query: { ticket: lobbyTicket } })).toMatchObject({ status: 403, json: { code: "account_banned" } });
    // A ticket is a first sight like any other request of a user: the service knows them from then on.
    const fresh = uniqueId("ticket-first");
    expect((await call("POST", "/api/realtime/ticket", { token: await tokenFor(fresh) })).status).toBe(201);
    expect(await env.DB.prepare("select count(*) as n from users where id = ?").bind(fresh).first<number>("n")).toBe(1);
    // ... and a browser opens that own socket with a ticket, as a native client does with the bearer header.
    const ownTicket = await call("POST", "/api/realtime/ticket", { token: bannedUserToken });
    expect(ownTicket.status, ownTicket.text).toBe(201);
    const own = await connect("", { query: { ticket: ownTicket.json.ticket } });
    expect("ws" in own, JSON.stringify(own)).toBe(true);
    if ("ws" in own) own.ws.close();
    expectProblem(await call("POST", "/api/realtime/ticket"), 401, "unauthorized");

    // Expired: a ticket issued 61 s ago with the default 60 s life.
    const short = (await call("POST", "/api/realtime/ticket", { token: alice.token, vars: { REALTIME_TICKET_SECONDS: "5" } })).json;
    expect(Date.parse(short.expiresAt) - Date.now()).toBeLessThanOrEqual(5000);
    const expiredTicket = `rt1.${btoa(alice.id).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}.${"A".repeat(43)}`;
    await env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(alice.id)).issueTicket(expiredTicket, "user", Date.now() - 61_000, 60_000);
    expect(await connect("", { query: { ticket: expiredTicket } })).toMatchObject({ status: 401 });
  });

  it("an admin banned while their socket is open in the admins' room is disconnected; the other admins are told", async () => {
    const rogue = uniqueId("ops-rogue");
    const rogueToken = await tokenFor(rogue, "admin");
    expect((await call("GET", "/api/wallet/balance", { token: rogueToken })).status).toBe(200); // first sight
    const rogueSocket = await open("/admin", { token: rogueToken });
    const watcher = await open("/admin", { token: await adminToken() });
    const alertId = newId(Date.now());
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, created_at) values (?, ?, 'manual_review', 'high', '{}', ?)").bind(alertId, rogue, Date.now()).run();
    const reviewed = await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId, status: "resolved", action: "banned" } });
    expect(reviewed.status, reviewed.text).toBe(200);
    const deadline = Date.now() + 3000;
    while (!rogueSocket.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(rogueSocket.closed).toMatchObject({ code: 4003 });
    expect(await until(watcher, (f) => f.type === "account-banned" && f.data.userId === rogue)).toBeDefined();
    watcher.ws.close(1000, "done");
  });

  it("the admins' room is told of a ban once: reviewing another alert of a banned user 'banned' announces nothing", async () => {
    const admin = await open("/admin", { token: await adminToken() });
    const user = await newUser("ban-once");
    const alertOf = async (tag: string) => {
      const id = `AL-${tag}-${user.id}`;
      await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(id, user.id, Date.now()).run();
      return id;
    };
    for (const tag of ["first", "second"]) {
      const r = await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId: await alertOf(tag), status: "resolved", action: "banned" } });
      expect(r.status, r.text).toBe(200);
    }
    expect(await until(admin, (f) => f.type === "account-banned" && f.data.userId === user.id)).toBeDefined();
    await quiet();
    expect(admin.frames.filter((f) => f.type === "account-banned" && f.data.userId === user.id)).toHaveLength(1);
    admin.ws.close(1000, "done");
  });

  it("an admin's socket receives the fraud alert a rule raises", async () => {
    const admin = await open("/admin", { token: await adminToken() });
    const alice = await newUser("rapid");
    const bob = await newUser("bob");
    await adjust(alice.id, 100);
    const vars = { RATE_LIMIT_PER_MINUTE: "100", RAPID_TRANSACTIONS_PER_MINUTE: "2" };
    for (let i = 0; i < 3; i++) expect((await transfer(alice, bob.id, 1, vars)).status).toBe(201);
    const alert = await until(admin, (f) => f.type === "fraud-alert" && f.data.userId === alice.id);
    expect(alert).toMatchObject({ data: { alertType: "rapid_transactions", severity: "medium", alertId: expect.any(String) } });
    admin.ws.close(1000, "done");
  });

  it("a user banned while holding a lobby socket is disconnected from it (4003) and hears nothing more there; the lobby is not told", async () => {
    const [victim, buyer, other] = [await newUser("lobby-ban"), await newUser("lobby-buyer"), await newUser("lobby-other")];
    await adjust(buyer.id, 500);
    const lobby = await open("/lobby", { token: victim.token });
    const watcher = await open("/lobby", { token: other.token });
    const alertId = newId(Date.now());
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, created_at) values (?, ?, 'manual_review', 'high', '{}', ?)").bind(alertId, victim.id, Date.now()).run();
    expect((await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId, status: "resolved", action: "banned" } })).status).toBe(200);
    const deadline = Date.now() + 3000;
    while (lobby.closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lobby.closed).toEqual({ code: 4003 });
    const streamId = `stream-ban-${victim.id}`;
    expect((await call("POST", `/api/live/${streamId}/boost`, { token: buyer.token, body: { level: "basic" } })).status).toBe(201);
    expect(await until(watcher, (f) => f.type === "stream-boosted" && f.data.streamId === streamId)).toBeDefined();
    expect(lobby.frames.some((f) => f.type === "stream-boosted" && f.data.streamId === streamId)).toBe(false);
    expect(watcher.frames.some((f) => f.type === "account-banned")).toBe(false);
    watcher.ws.close(1000, "done");
  });

  it("one user cannot push others out of a lobby shard: their own oldest sockets close past the per-user cap, and a full shard refuses newcomers (429)", async () => {
    // One shard of 3 sockets, 2 per user (a room of its own, so other tests' lobby sockets do not count).
    const vars = { REALTIME_LOBBY_SHARDS: "1", REALTIME_MAX_SOCKETS_PER_ROOM: "3", REALTIME_MAX_SOCKETS_PER_USER: "2" };
    await runInDurableObject(env.REALTIME_ROOMS.get(env.REALTIME_ROOMS.idFromName("lobby:0")), (_o, state) => state.getWebSockets().forEach((ws) => ws.close(1000, "reset")));
    const [victim, attacker, late] = [await newUser("victim"), await newUser("attacker"), await newUser("late")];
    const mine = await open("/lobby", { token: victim.token, vars });
    const theirs: Socket[] = [];
    for (let i = 0; i < 5; i++) theirs.push(await open("/lobby", { token: attacker.token, vars }));
    await quiet();
    expect(mine.closed).toBeNull();
    expect(theirs.filter((s) => s.closed === null)).toHaveLength(2);
    expect(theirs.slice(0, 3).every((s) => s.closed?.code === 4008)).toBe(true);
    const refused = await connect("/lobby", { token: late.token, vars });
    expect(refused).toMatchObject({ status: 429, json: { code: "rate_limited" } });
    for (const s of [mine, ...theirs]) s.ws.close(1000, "done");
  });

  it("a boost reaches every lobby socket", async () => {
    const [u1, u2, buyer] = [await newUser("l1"), await newUser("l2"), await newUser("booster")];
    await adjust(buyer.id, 500);
    const ticket = (await call("POST", "/api/realtime/ticket", { token: u2.token })).json.ticket;
    const lobbies = [await open("/lobby", { token: u1.token }), await open("/lobby", { query: { ticket } })];
    const res = await call("POST", "/api/live/stream-rt/boost", { token: buyer.token, body: { level: "basic" } });
    expect(res.status, res.text).toBe(201);
    for (const l of lobbies) {
      const frame = await until(l, (f) => f.type === "stream-boosted" && f.data.streamId === "stream-rt");
      expect(frame).toMatchObject({ seq: expect.any(Number), data: { boostLevel: "basic", expiresAt: res.json.featuredUntil } });
      l.ws.close(1000, "done");
    }
  });

  it("jobs publish only to users present (a socket open, or closed within the replay window); a user away longer gets resync", async () => {
    const [buyer, seller, absent] = [await newUser("buyer"), await newUser("seller"), await newUser("absent")];
    await adjust(buyer.id, 500);
    const online = await open("", { token: seller.token });
    const placed = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { sellerId: seller.id, productId: "p", amount: 100 } });
    const other = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { sellerId: absent.id, productId: "p", amount: 100 } });
    expect([placed.status, other.status]).toEqual([201, 201]);
    // The escrow release is a queue job (fan-out, release, then its events): each hop waits for the queue's batch window.
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() + 8 * 86_400_000 }), env, ctx);
    await waitOnExecutionContext(ctx);
    const released = await until(online, (f) => f.type === "coin-balance-update" && f.data.reason === "escrow_release", 15_000);
    expect(released).toMatchObject({ data: { balance: 85, change: 85 } });
    // Nobody listens for `absent`: its object was never asked to keep the release.
    const absentLog = await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(absent.id)), (_, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM realtime_events").one().n,
    );
    expect(absentLog).toBe(0);

    // The seller goes away for more than the replay window: whatever `since` says, they must re-read.
    const seen = online.frames.at(-1)!.seq!;
    online.ws.close(1000, "bye");
    await quiet();
    await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(seller.id)), (_, state) => {
      state.storage.sql.exec("UPDATE realtime_away SET since = since - ?", 25 * 3_600_000);
    });
    const back = await open("", { token: seller.token, query: { since: String(seen) } });
    // (The object forgot its log and skipped one seq, so any other device behind it is told too.)
    expect(await back.next(1)).toEqual([{ type: "resync", seq: seen + 1 }]);
    back.ws.close(1000, "done");
  });

  it("requests publish only to users present too: nobody who never connected, or left longer than the replay window ago, is written to", async () => {
    const [alice, bob, carol, dave] = [await newUser("alice"), await newUser("bob"), await newUser("carol"), await newUser("dave")];
    await adjust(alice.id, 500);
    // Neither side has ever had a socket: the transfer wakes neither object.
    expect((await transfer(alice, bob.id, 10)).status).toBe(201);
    expect([await logged(alice.id), await logged(bob.id)]).toEqual([0, 0]);

    // Carol left 25 hours ago (past the 24-hour window): not written to, and told to re-read on return.
    const c = await open("", { token: carol.token });
    expect((await transfer(alice, carol.id, 1)).status).toBe(201);
    const seen = (await c.next(2)).at(-1)!.seq!;
    c.ws.close(1000, "bye");
    await quiet();
    await env.DB.prepare("UPDATE realtime_presence SET last_seen = last_seen - ? WHERE user_id = ?").bind(25 * 3_600_000, carol.id).run();
    await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(carol.id)), (_, state) => {
      state.storage.sql.exec("UPDATE realtime_away SET since = since - ?", 25 * 3_600_000);
    });
    expect((await transfer(alice, carol.id, 2)).status).toBe(201);
    expect(await logged(carol.id)).toBe(2);
    const back = await open("", { token: carol.token, query: { since: String(seen) } });
    // (The object forgot its log and skipped one seq, so any other device behind it is told too.)
    expect(await back.next(1)).toEqual([{ type: "resync", seq: seen + 1 }]);

    // Dave left a moment ago: kept for his replay.
    const d = await open("", { token: dave.token });
    d.ws.close(1000, "bye");
    await quiet();
    expect((await transfer(alice, dave.id, 3)).status).toBe(201);
    expect(await logged(dave.id)).toBe(2);
    back.ws.close(1000, "done");
  });

  it("a socket is accepted only once the user's presence is written: a batch committing meanwhile either publishes to it or was before the resync's re-read", async () => {
    const user = await newUser("joining");
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id));
    const rowAtAccept = await runInDurableObject<UserActivity, string>(stub, async (instance) => {
      const log = (instance as unknown as { log: { accept: (...args: unknown[]) => Response } }).log;
      const accept = log.accept.bind(log);
      let seen: Promise<{ connected: number } | null> | undefined;
      log.accept = (...args) => {
        // What a batch committing at this instant would read (D1 runs statements in arrival order).
        seen = env.DB.prepare("SELECT connected FROM realtime_presence WHERE user_id = ?").bind(user.id).first<{ connected: number }>();
        return accept(...args);
      };
      const res = await instance.fetch(new Request("http://do/", { headers: { upgrade: "websocket", "x-realtime-user": user.id } }));
      res.webSocket?.accept();
      res.webSocket?.close(1000, "done");
      return JSON.stringify((await seen) ?? null);
    });
    expect(JSON.parse(rowAtAccept)).toEqual({ connected: 1 });
  });

  it("after a long absence every device is told to re-read, not only the first to come back", async () => {
    const { alice, bob, seen } = await receivedThenLeft();
    await awayFor(bob.id, 25 * 3_600_000);
    expect((await transfer(alice, bob.id, 2)).status).toBe(201); // not kept: Bob is away
    const laptop = await open("", { token: bob.token }); // fresh: reads its state anyway
    const phone = await open("", { token: bob.token, query: { since: String(seen) } });
    const [frame] = await phone.next(1);
    expect(frame).toMatchObject({ type: "resync" });
    expect(frame!.seq).toBeGreaterThan(seen);
    for (const x of [laptop, phone]) x.ws.close(1000, "done");
  });

  it("an object that kept events but has no record of when its user left (older objects) answers resync, not a partial replay", async () => {
    const { bob, seen } = await receivedThenLeft();
    await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(bob.id)), (_, state) => {
      state.storage.sql.exec("DELETE FROM realtime_away");
    });
    const back = await open("", { token: bob.token, query: { since: String(seen) } });
    expect((await back.next(1))[0]).toMatchObject({ type: "resync" });
    back.ws.close(1000, "done");
  });

  it("a reload (the old socket closing while the new one is being accepted) leaves the user present", async () => {
    const user = await newUser("reloading");
    const old = await open("", { token: user.token });
    await runInDurableObject<UserActivity, void>(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id)), async (instance, state) => {
      const [server] = state.getWebSockets();
      const opening = instance.fetch(new Request("http://do/", { headers: { upgrade: "websocket", "x-realtime-user": user.id } }));
      await instance.webSocketClose(server!, 1001, "reload");
      const res = await opening;
      res.webSocket?.accept();
    });
    await quiet();
    expect(await env.DB.prepare("SELECT connected FROM realtime_presence WHERE user_id = ?").bind(user.id).first()).toEqual({ connected: 1 });
    old.ws.close(1000, "done");
  });

  it("presence is judged at commit time (a queued event is kept for a user present then) and errs towards publishing", async () => {
    const config = loadConfig(env);
    const day = 86_400_000;
    const users = [await newUser("committed"), await newUser("legacy"), await newUser("gone")];
    const at = Date.now() - 10 * 60_000; // committed 10 minutes ago, published now
    const event = (user: string, seenAt: number | null | undefined) => ({ to: { user, seenAt } as { user: string; seenAt: number | null }, type: "transaction-update", at, data: {} });
    await publishOutbox(env, config, [
      event(users[0]!.id, at - day + 60_000), // left 23h59m before the commit
      event(users[1]!.id, undefined), // a queue message written before events carried presence
      event(users[2]!.id, at - day - 3_600_000), // left 25 hours before the commit
    ]);
    expect([await logged(users[0]!.id), await logged(users[1]!.id), await logged(users[2]!.id)]).toEqual([1, 1, 0]);
  });

  it("the daily cron's failed ledger check reaches the admins' sockets", async () => {
    const user = await newUser("skewed");
    await adjust(user.id, 100);
    const admin = await open("/admin", { token: await adminToken() });
    await env.DB.prepare("UPDATE accounts SET balance = balance + 7 WHERE id = ?").bind(`usr:${user.id}:COIN`).run();
    try {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: DAILY_BATCH_CRON, scheduledTime: Date.now() }), env, ctx);
      await waitOnExecutionContext(ctx);
      const alert = await until(admin, (f) => f.type === "fraud-alert" && f.data.alertType === "ledger_check_failed", 15_000);
      expect(alert).toMatchObject({ data: { severity: "critical", userId: null } });
    } finally {
      await env.DB.prepare("UPDATE accounts SET balance = balance - 7 WHERE id = ?").bind(`usr:${user.id}:COIN`).run();
      admin.ws.close(1000, "done");
    }
  });

  it("a daily ledger check that cannot run reaches the admins' sockets too (it was only logged)", async () => {
    const admin = await open("/admin", { token: await adminToken() });
    try {
      const ctx = createExecutionContext();
      const refusing = { ...env, DB: d1Refusing(/group by transaction_id, asset/) };
      await worker.scheduled(createScheduledController({ cron: DAILY_BATCH_CRON, scheduledTime: Date.now() }), refusing, ctx);
      await waitOnExecutionContext(ctx);
      const alert = await until(admin, (f) => f.type === "fraud-alert" && f.data.alertType === "ledger_check_failed", 15_000);
      expect(alert).toMatchObject({ data: { severity: "critical", userId: null } });
    } finally {
      admin.ws.close(1000, "done");
    }
  });

  it("a debt settled by an incoming transfer reaches the owner's socket (its statement reads the owner's presence too)", async () => {
    const [alice, bob] = [await newUser("alice"), await newUser("bob")];
    await adjust(alice.id, 500);
    // Recorded debt of 30 (posted directly: how debt arises is content.test's concern).
    const now = Date.now();
    await applyPlan(
      createDb(env.DB),
      movePlan({ tx: { id: newId(now), type: "adjustment", asset: "COIN", amount: 30, userId: bob.id }, from: userDebtAccountId(bob.id, "COIN"), to: systemAccountId("adjustments", "COIN"), audit: { actorId: "test", action: "debt", subjectType: "user", subjectId: bob.id }, now }),
    );
    const b = await open("", { token: bob.token });
    expect((await transfer(alice, bob.id, 50)).status).toBe(201);
    const settled = await until(b, (f) => f.type === "coin-balance-update" && f.data.reason === "debt_settlement");
    expect(settled).toMatchObject({ data: { balance: 20, available: 20, change: -30 } });
    b.ws.close(1000, "done");
  });

  it("every movement that enters a user's history reaches their socket, also one that moves only their debt or their campaign's budget", async () => {
    const [buyer, other, advertiser] = [await newUser("cb-debt"), await newUser("cb-to"), await newUser("adv")];
    const order = await call("POST", "/api/payment/midtrans/create", { token: buyer.token, body: { packageId: "pkg_100" } });
    expect((await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    expect((await transfer(buyer, other.id, 100)).status).toBe(201);
    const [b, a] = [await open("", { token: buyer.token }), await open("", { token: advertiser.token })];
    // A chargeback of coins already spent: all of it is booked to the buyer's debt, their wallet does not move.
    expect((await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "chargeback" }))).json.outcome).toBe("reversed");
    const refund = (await call("GET", "/api/wallet/transactions?type=refund", { token: buyer.token })).json.items[0];
    expect(await until(b, (f) => f.type === "transaction-update" && f.data.transactionId === refund.id)).toMatchObject({ data: { type: "refund", status: "completed", asset: "COIN", amount: 100 } });
    // A campaign deposit credits the campaign's budget, the advertiser's money.
    const campaign = await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "Launch" } });
    const deposit = await call("POST", `/api/campaigns/${campaign.json.id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
    expect((await postMidtransWebhook(await midtransNotification(deposit.json.orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    const credited = (await call("GET", "/api/wallet/transactions", { token: advertiser.token })).json.items[0];
    expect(credited).toMatchObject({ type: "deposit", amount: 50_000 });
    expect(await until(a, (f) => f.type === "transaction-update" && f.data.transactionId === credited.id)).toMatchObject({ data: { type: "deposit", asset: "IDR", amount: 50_000 } });
    // One event per movement and user, not one per account it touched.
    await quiet();
    expect(b.frames.filter((f) => f.type === "transaction-update" && f.data.transactionId === refund.id)).toHaveLength(1);
    for (const s of [a, b]) s.ws.close(1000, "done");
  });

  it("at most REALTIME_MAX_SOCKETS_PER_USER (10) sockets: the 11th closes the oldest; the others all receive", async () => {
    const user = await newUser("many");
    const sockets: Socket[] = [];
    for (let i = 0; i < 11; i++) sockets.push(await open("", { token: user.token }));
    await quiet();
    expect(sockets[0]!.closed?.code).toBe(4008);
    expect(sockets.slice(1).every((s) => s.closed === null)).toBe(true);
    await adjust(user.id, 5);
    for (const s of sockets.slice(1)) expect((await s.next(2)).map((f) => f.type)).toEqual(["coin-balance-update", "transaction-update"]);
    for (const s of sockets.slice(1)) s.ws.close(1000, "done");
  });
});

describe("a job's realtime events of any size reach the queue", () => {
  it("a user with hundreds of events from one job (a creator deleting an item with 500 buyers) is published in order; every queue message stays under the 128 KB limit", async () => {
    const { outboxMessages } = await import("../src/realtime/outbox");
    const { enqueueOutbox } = await import("../src/jobs/queue");
    const creator = await newUser("many-events");
    const socket = await open("", { token: creator.token });
    const at = Date.now();
    const busy = Array.from({ length: 1000 }, (_, i) => ({
      to: { user: creator.id, seenAt: Number.MAX_SAFE_INTEGER },
      type: i % 2 === 0 ? "coin-balance-update" : "transaction-update",
      at,
      data: { balance: 100_000 - i, available: 100_000 - i, change: -350, reason: "content_refund", transactionId: `01TX${String(i).padStart(22, "0")}`, n: i },
    }));
    const others = Array.from({ length: 60 }, (_, i) => ({ to: { user: `other-${i}`, seenAt: null }, type: "coin-balance-update", at, data: { balance: i } }));
    const { messages, direct } = outboxMessages([...busy, ...others]);
    for (const m of messages) expect(new TextEncoder().encode(JSON.stringify(m)).length).toBeLessThan(128 * 1024);
    expect(direct).toHaveLength(1000);
    expect(messages.flatMap((m) => m.events)).toHaveLength(60);

    await enqueueOutbox(env, loadConfig(env), [...busy, ...others]);
    const frames = await socket.next(1000, 10_000);
    expect(frames.map((f) => f.data.n)).toEqual(busy.map((e) => e.data.n));
    socket.ws.close(1000, "done");
  });
});

describe("housekeeping announces what it settled whatever the latency recorder does", () => {
  it("a withdrawal settled by reconciliation reaches its user's socket even when recording the gateway timings fails", async () => {
    const { irisReferenceOf, sim, verifiedUser } = await import("./helpers");
    const user = await verifiedUser("hk");
    await adjust(user.id, 1000);
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 700 } });
    expect(res.status, res.text).toBe(202);
    await sim("POST", `/_sim/iris/${await irisReferenceOf(res.json.withdrawalId)}/notify`, { status: "completed", deliver: false });
    const socket = await open("", { token: user.token });
    const broken = { ...env, GATEWAY_LATENCY: { idFromName: () => ({}), get: () => ({ record: async () => Promise.reject(new Error("recorder overloaded")) }) } } as unknown as Env;
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() + 31 * 60_000 }), broken, ctx);
    await waitOnExecutionContext(ctx);
    const settled = await until(socket, (f) => f.type === "transaction-update" && f.data.type === "withdraw" && f.data.status === "completed", 15_000);
    expect(settled).toBeDefined();
    socket.ws.close(1000, "done");
  });
});

describe("an event whose publish fails is published again, not acknowledged away", () => {
  it("a queued realtime message whose object call fails hands a resync for that user back to the queue (bounded), which arrives: never an old balance after a newer one", async () => {
    const user = await newUser("lost");
    const socket = await open("", { token: user.token });
    const events = [{ to: { user: user.id, seenAt: Number.MAX_SAFE_INTEGER }, type: "coin-balance-update", at: Date.now(), data: { balance: 85, change: 85, reason: "escrow_release" } }];
    const sent: { body: any }[] = [];
    const flaky = {
      ...env,
      USER_ACTIVITY: { idFromName: (n: string) => env.USER_ACTIVITY.idFromName(n), get: () => ({ publish: async () => Promise.reject(new Error("Durable Object is overloaded")) }) },
      BATCH_QUEUE: { send: async (body: unknown) => void sent.push({ body }), sendBatch: async (bodies: { body: unknown }[]) => void sent.push(...bodies) },
    } as unknown as Env;
    const outcome: string[] = [];
    const delivery = (body: unknown) => ({ queue: "daily-batch", messages: [{ id: "m1", timestamp: new Date(), attempts: 1, body, ack: () => outcome.push("ack"), retry: () => outcome.push("retry") }], ackAll() {}, retryAll() {} }) as unknown as MessageBatch<never>;
    await worker.queue(delivery({ kind: "realtime", events }), flaky);
    expect(outcome).toEqual(["ack"]);
    expect(sent).toHaveLength(1);
    // Handed back as a resync: by the time it is delivered, newer events may have arrived (a balance update
    // replayed after them would show an old balance); a resync tells the client to re-read.
    expect(sent[0]!.body).toMatchObject({ kind: "realtime", hops: 1, events: [{ to: { user: user.id }, type: "resync" }] });
    expect(sent[0]!.body.events).toHaveLength(1);
    // Meanwhile a newer movement's event is published directly; the handed-back resync arrives after it.
    await env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id)).publish([{ type: "coin-balance-update", at: Date.now(), data: { balance: 40, change: -45, reason: "transfer" } }], { keep: 500, maxAgeMs: 86_400_000 });
    await worker.queue(delivery(sent[0]!.body), env);
    expect(await until(socket, (f) => f.type === "resync")).toBeDefined();
    expect(socket.frames.filter((f) => f.type === "coin-balance-update").map((f) => f.data.balance)).toEqual([40]);
    // An object that keeps failing is given up on after REALTIME_PUBLISH_HOPS hand-backs, not looped forever.
    sent.length = 0;
    await worker.queue(delivery({ kind: "realtime", events, hops: 3 }), flaky);
    expect(sent).toHaveLength(0);
    socket.ws.close(1000, "done");
  });
});

describe("the replay log never has a hole", () => {
  it("events that reach the object out of time order are pruned as a prefix: a replay is whole or a resync", async () => {
    const user = await newUser("hole");
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id));
    const phone = await open("", { token: user.token });
    const keep = { keep: 500, maxAgeMs: 24 * 3_600_000 };
    const day = 24 * 3_600_000;
    const t = Date.now();
    // A request's event, then a queued job's event committed earlier (an older `at`), both almost a day old.
    await stub.publish([{ type: "transaction-update", at: t - day + 60_000, data: { n: 1 } }], keep);
    await stub.publish([{ type: "transaction-update", at: t - day + 1_000, data: { n: 2 } }], keep);
    await new Promise((r) => setTimeout(r, 1_500));
    await stub.publish([{ type: "transaction-update", at: Date.now(), data: { n: 3 } }], keep);
    const kept = await runInDurableObject(stub, (_, s: DurableObjectState) => s.storage.sql.exec<{ seq: number }>("SELECT seq FROM realtime_events ORDER BY seq").toArray().map((r) => r.seq));
    expect(kept).toEqual(kept.length === 0 ? [] : Array.from({ length: kept.length }, (_, i) => kept[0]! + i));
    const laptop = await open("", { token: user.token, query: { since: "0" } });
    const frames = await laptop.next(1, 1_500);
    expect(frames[0]?.type === "resync" || frames.map((f) => f.seq).join(",") === "1,2,3", JSON.stringify(frames)).toBe(true);
    for (const s of [phone, laptop]) s.ws.close(1000, "done");
  });
});

describe("a socket that fails", () => {
  it("is dropped like a closed one: the user is marked away, so movements stop waking their object", async () => {
    const user = await newUser("errored");
    const socket = await open("", { token: user.token });
    const connected = () => env.DB.prepare("SELECT connected FROM realtime_presence WHERE user_id = ?").bind(user.id).first<{ connected: number }>();
    expect(await connected()).toEqual({ connected: 1 });
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id));
    await runInDurableObject(stub, async (instance: UserActivity, state) => {
      const [ws] = state.getWebSockets();
      await (instance as unknown as { webSocketError(ws: WebSocket, error: unknown): Promise<void> }).webSocketError(ws!, new Error("connection reset"));
    });
    expect(await connected()).toEqual({ connected: 0 });
    socket.ws.close(1000, "done");
  });
});
