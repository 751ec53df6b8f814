import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";
import { bodyKeyProblem } from "./json-keys";

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
      // Bodies are strict: a key given twice, or a `__proto__` key, is refused like an unknown field. The
      // validator read the body as text (a request without a JSON body has none).
      const text = result.target === "json" ? await c.req.bodyCache.text : undefined;
      const problem = text ? bodyKeyProblem(text) : undefined;
      if (problem) throw new ApiError("validation_failed", "The request does not match the schema.", { errors: [problem] });
    },
  });
}

export const bearerSecurity = [{ bearerAuth: [] }];

/** The header every value-moving POST accepts (SPEC §3); the route runs through `moveOnce` or `decideOnce`. */
export const idempotencyHeader = z.object({
  "idempotency-key": z.string().optional().openapi({ description: "1–255 characters; a repeat with the same body replays the first answer." }),
});
