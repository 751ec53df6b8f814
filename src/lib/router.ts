import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

/** Every router is built here, so request validation fails the same way everywhere. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = result.error.issues.map((issue) => ({
          path: [result.target, ...issue.path.map(String)].join("."),
          message: issue.message,
        }));
        throw new ApiError("validation_failed", "The request does not match the schema.", { errors });
      }
    },
  });
}

export const bearerSecurity = [{ bearerAuth: [] }];

/** The header every value-moving POST accepts (SPEC §3); the route runs through `moveOnce` or `decideOnce`. */
export const idempotencyHeader = z.object({
  "idempotency-key": z.string().optional().openapi({ description: "1–255 characters; a repeat with the same body replays the first answer." }),
});
