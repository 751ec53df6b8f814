import { DurableObject } from "cloudflare:workers";
import { closeSocket, EventLog, type Retention } from "./event-log";
import { ACCOUNT_BANNED, type DeliveredEvent } from "./outbox";

/**
 * A room (SPEC §13): `lobby:<shard>` holds lobby sockets (a user always lands on the same shard, so a
 * reconnect replays from the same log; the shard count keeps each object within its limits), `admins`
 * holds the admins' fraud-alert sockets. Same log, replay and hibernation as a user's object.
 */
export class RealtimeRoom extends DurableObject<Env> {
  private readonly log: EventLog;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.log = new EventLog(ctx, ctx.storage.sql);
  }

  override async fetch(request: Request): Promise<Response> {
    const since = new URL(request.url).searchParams.get("since");
    const perUser = Number(request.headers.get("x-realtime-max-sockets-per-user") ?? 10);
    return this.log.accept(request.headers.get("x-realtime-user") ?? "", since === null ? null : Number(since), Number(request.headers.get("x-realtime-max-sockets") ?? 1000), Date.now(), { perUser });
  }

  publish(events: { type: string; at: number; data: Record<string, unknown> }[], retention: Retention): DeliveredEvent[] {
    const delivered = this.log.append(events, retention, Date.now());
    // A user banned while listening here is told (with everyone) and then disconnected.
    const banned = new Set(events.filter((e) => e.type === ACCOUNT_BANNED).map((e) => String(e.data.userId)));
    if (banned.size > 0) this.log.disconnect(banned, 4003, "account banned");
    return delivered;
  }

  /** Closes these users' sockets here (4003), logging nothing: the room is not told why. */
  disconnect(userIds: string[], reason: string): void {
    this.log.disconnect(new Set(userIds), 4003, reason);
  }

  sockets(): number {
    return this.log.sockets();
  }

  override webSocketMessage(): void {}

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    closeSocket(ws, code, reason);
  }

  override webSocketError(ws: WebSocket): void {
    closeSocket(ws, 1011, "socket error");
  }
}
