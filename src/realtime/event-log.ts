import { ApiError, problemResponse } from "../lib/errors";
import type { DeliveredEvent } from "./outbox";

export interface Retention {
  keep: number;
  maxAgeMs: number;
}

interface Attachment {
  connectedAt: number;
  userId: string;
}

/**
 * A Durable Object's realtime side: its sockets (hibernation API: the object sleeps between events and
 * pings are answered without waking it) and its event log in SQLite, the last `keep` events of the last
 * `maxAgeMs`, for replay. Events are numbered here, so `seq` increases by one without gaps, but for the one skipped when a user
 * returns after the replay window (every older `since` then gets `resync`).
 */
export class EventLog {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly sql: SqlStorage,
  ) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS realtime_events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS realtime_seq (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
      INSERT OR IGNORE INTO realtime_seq (id, last) VALUES (1, 0);
      CREATE TABLE IF NOT EXISTS realtime_away (id INTEGER PRIMARY KEY CHECK (id = 1), since INTEGER NOT NULL);`);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private last(): number {
    return this.sql.exec<{ last: number }>("SELECT last FROM realtime_seq WHERE id = 1").one().last;
  }

  /** Numbers, stores and sends events to every socket; prunes what is past the retention. */
  append(events: { type: string; at: number; data: Record<string, unknown> }[], retention: Retention, now: number): DeliveredEvent[] {
    let seq = this.last();
    const delivered: DeliveredEvent[] = [];
    for (const e of events) {
      seq += 1;
      this.sql.exec("INSERT INTO realtime_events (seq, type, at, data) VALUES (?, ?, ?, ?)", seq, e.type, e.at, JSON.stringify(e.data));
      delivered.push({ seq, type: e.type, at: new Date(e.at).toISOString(), data: e.data });
    }
    this.sql.exec("UPDATE realtime_seq SET last = ? WHERE id = 1", seq);
    // A prefix only, so what is kept has no hole: events may arrive out of time order (a queued job's
    // commit is older than a request's published after it), so everything up to the newest one past the
    // age limit goes.
    this.sql.exec(
      "DELETE FROM realtime_events WHERE seq <= max(?, coalesce((SELECT max(seq) FROM realtime_events WHERE at < ?), 0))",
      seq - retention.keep,
      now - retention.maxAgeMs,
    );
    const frames = delivered.map((d) => JSON.stringify(d));
    for (const ws of this.ctx.getWebSockets()) {
      for (const frame of frames) {
        try {
          ws.send(frame);
        } catch {
          // A socket that is closing: dropped by webSocketClose.
        }
      }
    }
    return delivered;
  }

  /**
   * Accepts a socket and, with `since`, first sends every kept event after it in order — or
   * `{ type: "resync" }` when some of them are no longer kept. The object runs one thing at a time, so no
   * live event can slip in between the replay and the socket being live. A user's object closes its
   * oldest socket beyond `maxSockets`. A room shared by many users (`perUser`) closes only the same
   * user's oldest beyond `perUser`, and refuses a newcomer (429) when `maxSockets` others are open: no
   * user can push another out.
   */
  accept(userId: string, since: number | null, maxSockets: number, now: number, opts: { awayResyncMs?: number; perUser?: number } = {}): Response {
    // Away (no socket) for longer than the replay window: events were not published to this user
    // meanwhile (only users present are, see outbox.ts), so whatever `since` any of their devices says,
    // it must re-read. The log is forgotten and one seq skipped, so every `since` issued before is behind
    // what is kept: this device and the ones that come back after it all get `resync`. With no record of
    // when the last socket closed but events kept (an object from before that record), the same.
    const away = this.sql.exec<{ since: number }>("SELECT since FROM realtime_away WHERE id = 1").toArray()[0]?.since;
    const stale = opts.awayResyncMs !== undefined && this.ctx.getWebSockets().length === 0 && (away === undefined ? this.last() > 0 : now - away > opts.awayResyncMs);
    this.sql.exec("DELETE FROM realtime_away");
    if (stale) this.sql.exec("DELETE FROM realtime_events; UPDATE realtime_seq SET last = last + 1 WHERE id = 1");
    const open = this.ctx
      .getWebSockets()
      .map((ws) => ({ ws, at: (ws.deserializeAttachment() as Attachment | null)?.connectedAt ?? 0, user: (ws.deserializeAttachment() as Attachment | null)?.userId }))
      .sort((a, b) => a.at - b.at);
    const cap = opts.perUser ?? maxSockets;
    const mine = opts.perUser === undefined ? open : open.filter((s) => s.user === userId);
    const evicted = mine.slice(0, Math.max(0, mine.length - (cap - 1)));
    if (opts.perUser !== undefined && open.length - evicted.length >= maxSockets) {
      return problemResponse(new ApiError("rate_limited", "This room is full; try again shortly.", { headers: { "retry-after": "30" } }));
    }
    for (const { ws } of evicted) {
      try {
        ws.close(4008, "too many connections: the oldest is closed");
      } catch {
        // already closing
      }
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ connectedAt: now, userId } satisfies Attachment);
    if (since !== null) for (const frame of this.replay(since)) server.send(frame);
    return new Response(null, { status: 101, webSocket: client });
  }

  private replay(since: number): string[] {
    const last = this.last();
    if (since === last) return [];
    // Ahead of what was ever issued (or behind what is kept): the client re-reads its state.
    if (since > last) return [JSON.stringify({ type: "resync", seq: last })];
    const first = this.sql.exec<{ seq: number | null }>("SELECT min(seq) AS seq FROM realtime_events").one().seq;
    if (first === null || first > since + 1) return [JSON.stringify({ type: "resync", seq: last })];
    return this.sql
      .exec<{ seq: number; type: string; at: number; data: string }>("SELECT seq, type, at, data FROM realtime_events WHERE seq > ? ORDER BY seq", since)
      .toArray()
      .map((r) => JSON.stringify({ seq: r.seq, type: r.type, at: new Date(r.at).toISOString(), data: JSON.parse(r.data) }));
  }

  /** Sockets still open (one closing or failed is listed until its close completes, but no longer receives). */
  sockets(): number {
    return this.ctx.getWebSockets().filter((w) => w.readyState === WebSocket.OPEN).length;
  }

  /** Closes every socket of these users. */
  disconnect(userIds: ReadonlySet<string>, code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      if (!userIds.has((ws.deserializeAttachment() as Attachment | null)?.userId ?? "")) continue;
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** After a socket closed: true when it was the last one (the object notes since when nobody listens). */
  closed(ws: WebSocket, now: number): boolean {
    const others = this.ctx.getWebSockets().filter((w) => w !== ws && w.readyState === WebSocket.OPEN).length;
    if (others > 0) return false;
    this.sql.exec("INSERT OR REPLACE INTO realtime_away (id, since) VALUES (1, ?)", now);
    return true;
  }
}

/** The close handshake of a hibernated socket (the client's close is answered; nothing else to do). */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  } catch {
    // already closed
  }
}
