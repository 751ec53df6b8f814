import { sql, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Config } from "../config";
import { sendBatches } from "../jobs/fanout";
import { realtimePresence } from "../db/schema";

/**
 * Realtime events (SPEC §13) leave through an outbox. A statement that announces (a wallet's balance
 * update, a debt settlement, an alert, a boost) registers how its returned rows become events; the
 * database wrapper (`createDb(d1, outbox)`) collects them only once the batch that ran the statement has
 * committed — a failed batch announces nothing — and whoever owns the outbox publishes it after the work
 * is done (`waitUntil`): one RPC per affected user present, one per room. No D1 work.
 *
 * A user's event carries the user's realtime presence as the batch saw it (`seenAt`, read by the
 * announcing statement itself): only users present (a socket open, or closed within the replay window)
 * are published to, so an offline user's object is never woken. Whoever comes back later than that is
 * told to re-read (`resync`, see EventLog.accept), so skipping them loses nothing.
 */
/** A lobby event handed back for one shard names it (`shard`); otherwise it goes to every shard. */
export type Audience = { user: string; seenAt: number | null } | { room: "admins" } | { room: "lobby"; shard?: number };

export interface OutboxEvent {
  to: Audience;
  type: string;
  at: number;
  data: Record<string, unknown>;
}

export type Outbox = OutboxEvent[];

/** An event as a socket receives it: `seq` increases by one per user (or room) without gaps (but for one skipped after a user's long absence, see EventLog.accept). */
export interface DeliveredEvent {
  seq: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

type Announcer = (rows: unknown) => OutboxEvent[];
const ANNOUNCERS = new WeakMap<object, Announcer>();

/** Marks a statement as announcing: once its batch commits, `toEvents` turns its returned rows into events. */
export function announce<S extends object>(statement: S, toEvents: Announcer): S {
  ANNOUNCERS.set(statement, toEvents);
  return statement;
}

/**
 * Marks an update of user records that may ban (its RETURNING gives `id` and `status`): each row left
 * banned becomes `account-banned { userId }` in the admins' room, which also closes that user's sockets
 * there (an admin banned while listening stops receiving the fraud alerts at once) and in the lobby
 * (publishOutbox). Their own socket stays: it carries only their balance and transactions (SPEC §3).
 */
export function announceBans<S extends object>(statement: S, at: number): S {
  return announce(statement, (rows) =>
    (rows as { id: string; status: string }[]).filter((r) => r.status === "banned").map((r) => ({ to: { room: "admins" as const }, type: ACCOUNT_BANNED, at, data: { userId: r.id } })),
  );
}

export const ACCOUNT_BANNED = "account-banned";

/** After a committed batch: the events its announcing statements produce, in statement order. */
export function collect(outbox: Outbox, statements: readonly unknown[], results: readonly unknown[]): void {
  statements.forEach((statement, i) => {
    const toEvents = typeof statement === "object" && statement !== null ? ANNOUNCERS.get(statement) : undefined;
    if (toEvents) outbox.push(...toEvents(results[i]));
  });
}

export type RealtimeConfig = Pick<Config, "REALTIME_LOBBY_SHARDS" | "REALTIME_REPLAY_EVENTS" | "REALTIME_REPLAY_HOURS">;

export const retention = (config: RealtimeConfig) => ({ keep: config.REALTIME_REPLAY_EVENTS, maxAgeMs: config.REALTIME_REPLAY_HOURS * 3_600_000 });

/** `seenAt` of a user with a socket open. */
const CONNECTED = Number.MAX_SAFE_INTEGER;

/**
 * The realtime presence of the user `userId` names, for an announcing statement's RETURNING: when they
 * last had a socket (CONNECTED while they have one), null when they never had one.
 */
export const seenAtSql = (userId: SQLiteColumn): SQL<number | null> =>
  sql<number | null>`(select case when ${realtimePresence.connected} then ${CONNECTED} else ${realtimePresence.lastSeen} end from ${realtimePresence} where ${realtimePresence.userId} = ${userId})`;

/** Clocks differ between the Worker that commits and the object that notes a close: presence errs towards publishing by this much. */
const CLOCK_MARGIN_MS = 5 * 60_000;

/**
 * A user is present at `at` (the commit) when they had a socket then, or had closed their last one
 * within the replay window: their object keeps the event for a replay. The complement (but for the
 * margin) of EventLog.accept's "away for longer than the window", which answers `resync` whatever the
 * client says it has seen. Judged at the commit, not at publishing: a queued event may be delivered
 * later, and whoever was present when it happened is owed it.
 */
export const present = (seenAt: number | null, at: number, windowMs: number): boolean => seenAt !== null && at - seenAt <= windowMs + CLOCK_MARGIN_MS;

/** The lobby shard a user's lobby socket lives on (stable, so a reconnect replays from the same log). */
export function lobbyShard(userId: string, shards: number): number {
  let h = 2166136261;
  for (let i = 0; i < userId.length; i++) h = Math.imul(h ^ userId.charCodeAt(i), 16777619) >>> 0;
  return h % shards;
}

/**
 * Publishes an outbox: one RPC per present user with their events in order, one per room (the lobby: each
 * shard). Returns the events whose call failed (a whole user's or room's group: none of them was logged).
 */
export async function publishOutbox(env: Env, config: RealtimeConfig, outbox: Outbox): Promise<Outbox> {
  const windowMs = config.REALTIME_REPLAY_HOURS * 3_600_000;
  // (A queue message written before events carried presence has no `seenAt`: published, as it was then.)
  outbox = outbox.filter((e) => !("user" in e.to) || e.to.seenAt === undefined || present(e.to.seenAt, e.at, windowMs));
  if (outbox.length === 0) return [];
  const byUser = new Map<string, OutboxEvent[]>();
  const rooms = { admins: [] as OutboxEvent[], lobby: [] as OutboxEvent[] };
  for (const e of outbox) {
    if ("user" in e.to) (byUser.get(e.to.user) ?? byUser.set(e.to.user, []).get(e.to.user)!).push(e);
    else rooms[e.to.room].push(e);
  }
  const keep = retention(config);
  const plain = (events: OutboxEvent[]) => events.map(({ type, at, data }) => ({ type, at, data }));
  const calls: { events: OutboxEvent[]; call: Promise<unknown> }[] = [];
  for (const [userId, events] of byUser) calls.push({ events, call: env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId)).publish(plain(events), keep) });
  if (rooms.admins.length > 0) calls.push({ events: rooms.admins, call: env.REALTIME_ROOMS.get(env.REALTIME_ROOMS.idFromName("admins")).publish(plain(rooms.admins), keep) });
  // Lobby events go to every shard, or to the one shard a handed-back event names.
  const shards = new Map<number, OutboxEvent[]>();
  for (const e of rooms.lobby) {
    const to = e.to as { room: "lobby"; shard?: number };
    for (const shard of to.shard === undefined ? Array.from({ length: config.REALTIME_LOBBY_SHARDS }, (_, i) => i) : [to.shard]) {
      (shards.get(shard) ?? shards.set(shard, []).get(shard)!).push({ ...e, to: { room: "lobby", shard } });
    }
  }
  for (const [shard, events] of shards) calls.push({ events, call: env.REALTIME_ROOMS.get(env.REALTIME_ROOMS.idFromName(`lobby:${shard}`)).publish(plain(events), keep) });
  // A banned user's lobby sockets close too (on their shard, without telling the lobby); best effort: a
  // socket left open is refused on its next connection.
  for (const e of rooms.admins.filter((a) => a.type === ACCOUNT_BANNED)) {
    const userId = String(e.data.userId);
    const shard = env.REALTIME_ROOMS.get(env.REALTIME_ROOMS.idFromName(`lobby:${lobbyShard(userId, config.REALTIME_LOBBY_SHARDS)}`));
    await shard.disconnect([userId], "account banned").catch((error: unknown) => console.error("banned user's lobby sockets not closed", error instanceof Error ? error.message : String(error)));
  }
  const results = await Promise.allSettled(calls.map((c) => c.call));
  const failed: Outbox = [];
  results.forEach((r, i) => {
    if (r.status === "fulfilled") return;
    console.error("realtime publish failed", r.reason instanceof Error ? r.reason.message : String(r.reason));
    failed.push(...calls[i]!.events);
  });
  return failed;
}

/** Times events whose publish failed are handed back to the queue before they are given up (logged). */
export const REALTIME_PUBLISH_HOPS = 3;

/**
 * Publishes, and hands the events whose object call failed (an object restarting or overloaded) back to the
 * queue to be published again, at most REALTIME_PUBLISH_HOPS times: an event that was never logged would
 * otherwise be lost without a gap in `seq` to show it. A user's failed events come back as one `resync`
 * (a call whose answer was lost after the object logged them delivers them and then the resync); a room's
 * as they were. A group too large for a message is tried once more directly. Groups that were published are
 * not handed back. A hand-back that cannot be queued is logged, not thrown, so a queued message is not
 * retried whole (which would publish its other groups again).
 */
export async function publishReliably(env: Env, config: RealtimeConfig, outbox: Outbox, hops = 0): Promise<void> {
  let failed = resyncs(await publishOutbox(env, config, outbox));
  if (failed.length === 0) return;
  if (hops >= REALTIME_PUBLISH_HOPS) {
    console.error(`realtime events given up after ${hops} attempts`, failed.length);
    return;
  }
  const { messages, direct } = outboxMessages(failed);
  if (direct.length > 0) failed = await publishOutbox(env, config, direct);
  for (const group of sendBatches(messages.map((m) => ({ ...m, hops: hops + 1 })))) {
    await env.BATCH_QUEUE.sendBatch(group.map((body) => ({ body, delaySeconds: 2 }))).catch((e) => console.error("realtime events not handed back", e instanceof Error ? e.message : String(e)));
  }
  if (direct.length > 0 && failed.length > 0) console.error("realtime events given up (too large to hand back)", failed.length);
}

/**
 * What a user whose events failed to publish is told later: one `resync` (re-read balance and history), not
 * the events themselves, which would arrive after newer ones (an old balance shown last). Rooms' events
 * (boosts, alerts) are handed back as they are.
 */
function resyncs(failed: Outbox): Outbox {
  const users = new Map<string, OutboxEvent>();
  const rest: Outbox = [];
  for (const e of failed) {
    if (!("user" in e.to)) rest.push(e);
    else users.set(e.to.user, { to: e.to, type: "resync", at: Math.max(e.at, users.get(e.to.user)?.at ?? 0), data: {} });
  }
  return [...rest, ...users.values()];
}

/** Realtime events a background job hands to the queue: the events of at most PUBLISH_CHUNK_USERS users. */
export type RealtimeMessage = { kind: "realtime"; events: OutboxEvent[]; hops?: number };

/** Users per realtime message: with up to 10 messages per delivery, at most 250 object calls per invocation. */
const PUBLISH_CHUNK_USERS = 25;

/** Bytes of events per realtime message at most (Cloudflare Queues refuse a message over 128 KB). */
const MESSAGE_MAX_BYTES = 96 * 1024;

/**
 * For jobs (queue messages, crons), whose batches may touch thousands of users: the outbox goes to the
 * queue in messages of at most PUBLISH_CHUNK_USERS users and MESSAGE_MAX_BYTES (rooms' events first), so
 * no invocation makes an unbounded number of object calls. A user's (or room's) events are never split
 * over messages, which the queue may deliver in any order: a group too large for one message (a creator
 * with hundreds of refunds in one delivery) is `direct`, published by the job itself in one call, in
 * order. Requests publish directly (they touch a handful of users).
 */
export function outboxMessages(outbox: Outbox): { messages: RealtimeMessage[]; direct: Outbox } {
  const groups = new Map<string, OutboxEvent[]>();
  for (const e of outbox) {
    const key = "user" in e.to ? `u:${e.to.user}` : `r:${e.to.room}`;
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(e);
  }
  const messages: RealtimeMessage[] = [];
  const direct: Outbox = [];
  let current: OutboxEvent[] = [];
  let users = 0;
  let bytes = 0;
  for (const events of groups.values()) {
    const size = new TextEncoder().encode(JSON.stringify(events)).length;
    if (size > MESSAGE_MAX_BYTES) {
      direct.push(...events);
      continue;
    }
    if (current.length > 0 && (users === PUBLISH_CHUNK_USERS || bytes + size > MESSAGE_MAX_BYTES)) {
      messages.push({ kind: "realtime", events: current });
      [current, users, bytes] = [[], 0, 0];
    }
    current.push(...events);
    users++;
    bytes += size;
  }
  if (current.length > 0) messages.push({ kind: "realtime", events: current });
  return { messages, direct };
}
