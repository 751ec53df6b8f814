import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

/**
 * Where a parsed JSON body has a `__proto__` key, if anywhere. JSON.parse makes it an own key, which zod's
 * strict objects do not report as unknown (it is found on every object's prototype).
 */
function protoKeyPath(value: unknown, path: string[] = []): string[] | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (Object.hasOwn(value, "__proto__")) return [...path, "__proto__"];
  for (const [key, inner] of Object.entries(value)) {
    const found = protoKeyPath(inner, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/** Every router is built here, so request validation fails the same way everywhere. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: async (result, c) => {
      if (!result.success) {
        const errors = result.error.issues.map((issue) => ({
          path: [result.target, ...issue.path.map(String)].join("."),
          message: issue.message,
        }));
        throw new ApiError("validation_failed", "The request does not match the schema.", { errors });
      }
      // Bodies are strict: a `__proto__` key is an unknown field like any other. The validator read the body as
      // text (a request without a JSON body has none); it is parsed again only when it may hold such a key.
      const text = result.target === "json" ? await c.req.bodyCache.text : undefined;
      const proto = text && (text.includes("__proto__") || text.includes("\\u")) ? protoKeyPath(JSON.parse(text)) : undefined;
      if (proto) throw new ApiError("validation_failed", "The request does not match the schema.", { errors: [{ path: ["json", ...proto].join("."), message: "Unrecognized key" }] });
    },
  });
}

export const bearerSecurity = [{ bearerAuth: [] }];

/** The header every value-moving POST accepts (SPEC §3); the route runs through `moveOnce` or `decideOnce`. */
export const idempotencyHeader = z.object({
  "idempotency-key": z.string().optional().openapi({ description: "1–255 characters; a repeat with the same body replays the first answer." }),
});
