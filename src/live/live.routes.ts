import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, problemFor } from "../lib/errors";
import { pageLimit } from "../lib/query";
import { moveOnce } from "../lib/idempotency";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { TransactionSchema, UserIdSchema } from "../wallet/wallet.schemas";
import { badgesOf } from "./badges";
import { boostQuote, boostStream, featuredStreams, giftCatalogue, leaderboard, saveGift, sendGift, type BoostBody, type GiftBody } from "./live.service";

const Slug = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 of A–Z, a–z, 0–9, _ and -");
const StreamParam = z.object({ streamId: Slug });
const Level = z.enum(["basic", "premium"]);

const GiftSchema = z
  .object({ id: z.string(), name: z.string(), coins: z.number().int(), animation: z.string(), active: z.boolean(), sortOrder: z.number().int() })
  .openapi("Gift");
const GiftFields = z
  .object({
    name: z.string().trim().min(1).max(40),
    coins: z.number().int().min(1).max(1_000_000),
    animation: z.string().regex(/^[a-z0-9-]{1,40}$/, "an animation key: 1–40 of a–z, 0–9 and -"),
    active: z.boolean().optional(),
    sortOrder: z.number().int().min(0).max(10_000).optional(),
  })
  .strict();

const QuoteSchema = z
  .object({ level: Level, activeBoosts: z.number().int(), baseCoins: z.number().int(), multiplierBps: z.number().int(), price: z.number().int() })
  .openapi("BoostQuote");

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodTypeAny>(schema: T) => ({ required: true, content: { "application/json": { schema } } });

/** Mounted at /api/live. */
export const liveRouter = createRouter()
  .openapi(
    createRoute({ method: "get", path: "/gifts", tags: ["live"], summary: "The gift catalogue (coins per gift, animation)", security: bearerSecurity, responses: { 200: json(z.object({ items: z.array(GiftSchema) }), "Gifts on sale"), ...errorResponses } }),
    async (c) => c.json({ items: await giftCatalogue(c.var.db, { includeRetired: false }) }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/featured",
      tags: ["live"],
      summary: "Streams featured now by a boost (homepage ones first); expired boosts drop out by themselves",
      security: bearerSecurity,
      request: { query: z.object({ limit: pageLimit(50) }) },
      responses: {
        200: json(z.object({ items: z.array(z.object({ streamId: z.string(), streamerId: z.string().nullable(), homepage: z.boolean(), featuredUntil: z.string() })) }).openapi("Featured"), "Featured streams"),
        ...errorResponses,
      },
    }),
    async (c) => c.json({ items: await featuredStreams(c.var.db, Date.now(), c.req.valid("query").limit) }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/boost-price",
      tags: ["live"],
      summary: "The price of a boost now: base × (1 + BOOST_DEMAND_STEP_BPS/10000 × active boosts of the level), capped",
      security: bearerSecurity,
      request: { query: z.object({ level: Level }) },
      responses: { 200: json(QuoteSchema, "Quote"), ...errorResponses },
    }),
    async (c) => c.json(await boostQuote(c.var.db, c.var.config, c.req.valid("query").level, Date.now()), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{streamId}/gift",
      tags: ["live"],
      summary: "Send gifts on a stream: coins × quantity, split 7000/2500/500 bps streamer / platform / processing",
      description:
        "Counts against the spending limits and the rate limit; not to yourself (422 `self_gift`); the streamer must exist and not be banned. The first gift naming a stream binds it " +
        "to its streamer; a gift naming another streamer for it is 409 `stream_mismatch`. A gift of at least LARGE_GIFT_COINS to an account younger than NEW_ACCOUNT_DAYS raises " +
        "`large_gift_to_new_account`. Received gifts and coins count towards the streamer's badges, in the same batch.",
      security: bearerSecurity,
      request: {
        params: StreamParam,
        headers: idempotencyHeader,
        body: body(z.object({ giftId: Slug, streamerId: UserIdSchema, quantity: z.number().int().min(1).max(99).default(1) }).strict().openapi({ example: { giftId: "rose", streamerId: "carol", quantity: 1 } })),
      },
      responses: {
        201: json(z.object({ streamId: z.string(), gift: GiftSchema, quantity: z.number().int(), streamerId: z.string(), transaction: TransactionSchema }).openapi("GiftSent"), "Sent"),
        ...errorResponses,
        404: problemFor("Unknown gift, or no such streamer (`recipient_not_found`)."),
        409: problemFor("`stream_mismatch`, `conflict` (the gift was repriced or retired while sending: nothing was charged), or the Idempotency-Key was used with another body."),
        422: problemFor("`self_gift`, `insufficient_funds`, `debt_outstanding`, `recipient_unavailable`."),
      },
    }),
    async (c) => {
      const { streamId } = c.req.valid("param");
      const input = c.req.valid("json");
      const outcome = await moveOnce<GiftBody>(c, { streamId, ...input }, (ctx) => sendGift(c.var.db, c.var.config, c.var.user.id, streamId, input, ctx));
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{streamId}/boost",
      tags: ["live"],
      summary: "Boost a stream: basic (featured 1 h) or premium (featured 24 h and on the homepage); 100 % platform boost revenue",
      description:
        "Charged at the quote of GET /boost-price at request time; the batch is guarded by the demand it was quoted on and where it starts (quoted again if either moved). Above `maxPrice` → 409 `price_changed`, nothing moves. " +
        "A boost of a stream already boosted at that level extends it (starts when the last one ends).",
      security: bearerSecurity,
      request: { params: StreamParam, headers: idempotencyHeader, body: body(z.object({ level: Level, maxPrice: z.number().int().min(1).max(1_000_000_000).optional() }).strict().openapi({ example: { level: "basic", maxPrice: 150 } })) },
      responses: {
        201: json(
          z.object({ streamId: z.string(), level: Level, price: z.number().int(), multiplierBps: z.number().int(), featuredFrom: z.string(), featuredUntil: z.string(), homepage: z.boolean(), transaction: TransactionSchema }).openapi("Boost"),
          "Boosted",
        ),
        ...errorResponses,
        409: problemFor("`price_changed` (above maxPrice); `conflict` when other boosts of the level bought at the same moment kept changing the price (send again: the Idempotency-Key does not remember it); or the Idempotency-Key was used with another body."),
        422: problemFor("`insufficient_funds`, `debt_outstanding`; `recipient_unavailable` when the stream's streamer is banned (their stream is not featured)."),
      },
    }),
    async (c) => {
      const { streamId } = c.req.valid("param");
      const input = c.req.valid("json");
      const outcome = await moveOnce<BoostBody>(c, { streamId, ...input }, (ctx) => boostStream(c.var.db, c.var.config, c.var.user.id, streamId, input, ctx));
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{streamId}/leaderboard",
      tags: ["live"],
      summary: "A stream's top gift senders and totals, from the gifts' ledger transactions",
      security: bearerSecurity,
      request: { params: StreamParam, query: z.object({ limit: pageLimit(10) }) },
      responses: {
        200: json(
          z
            .object({
              streamId: z.string(),
              totals: z.object({ coins: z.number().int(), gifts: z.number().int(), senders: z.number().int() }),
              top: z.array(z.object({ rank: z.number().int(), userId: z.string(), coins: z.number().int(), gifts: z.number().int() })),
            })
            .openapi("Leaderboard"),
          "Leaderboard",
        ),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await leaderboard(c.var.db, c.req.valid("param").streamId, c.req.valid("query").limit), 200),
  );

/** Mounted at /api/admin/gifts. */
export const adminGiftsRouter = createRouter()
  .openapi(
    createRoute({ method: "get", path: "/", tags: ["admin", "live"], summary: "The whole catalogue, retired gifts included", security: bearerSecurity, responses: { 200: json(z.object({ items: z.array(GiftSchema) }), "Gifts"), ...errorResponses } }),
    async (c) => c.json({ items: await giftCatalogue(c.var.db, { includeRetired: true }) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["admin", "live"],
      summary: "Add a gift (audited)",
      security: bearerSecurity,
      request: { body: body(GiftFields.extend({ id: Slug }).strict().openapi({ example: { id: "star", name: "Star", coins: 100, animation: "star-burst" } })) },
      responses: { 201: json(GiftSchema, "Added"), ...errorResponses, 409: problemFor("A gift with that id exists.") },
    }),
    async (c) => {
      const { id, ...fields } = c.req.valid("json");
      return c.json(await saveGift(c.var.db, c.var.user.id, id, fields, "create", Date.now()), 201);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/{id}",
      tags: ["admin", "live"],
      summary: "Replace a gift: name, coins, animation, order, or retire it with active=false (audited; a PUT: `active` and `sortOrder` left out are true and 0); gifts already sent keep their price",
      security: bearerSecurity,
      request: { params: z.object({ id: Slug }), body: body(GiftFields.openapi({ example: { name: "Rose", coins: 60, animation: "rose-bloom", active: true, sortOrder: 2 } })) },
      responses: { 200: json(GiftSchema, "Changed"), ...errorResponses, 404: problemFor("No such gift.") },
    }),
    async (c) => c.json(await saveGift(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json"), "update", Date.now()), 200),
  );

/** Mounted at /api/users. */
export const usersRouter = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/{id}/badges",
    tags: ["live"],
    summary: "A user's badges: Rising Star (100 gifts received), Top Earner (10,000 coins earned from gifts, content and marketplace sales), Super Booster (10 boosts)",
    security: bearerSecurity,
    request: { params: z.object({ id: UserIdSchema }) },
    responses: { 200: json(z.object({ userId: z.string(), items: z.array(z.object({ badge: z.enum(["rising_star", "top_earner", "super_booster"]), awardedAt: z.string() })) }).openapi("Badges"), "Badges"), ...errorResponses },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    return c.json({ userId: id, items: await badgesOf(c.var.db, id) }, 200);
  },
);

