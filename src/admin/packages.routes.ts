import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, problemFor } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { PackageCreateSchema, PackageSchema, PackageUpdateSchema } from "../payments/packages.schemas";
import { createPackage, deletePackage, listPackages, updatePackage } from "../payments/packages.service";

const IdParam = z.object({ id: z.string().min(1).max(64) });
const one = { content: { "application/json": { schema: PackageSchema } } };

export const adminPackagesRouter = createRouter()
  .openapi(
    createRoute({ method: "get", path: "/", tags: ["admin"], summary: "All coin packages, inactive included", security: bearerSecurity, responses: { 200: { description: "Packages", content: { "application/json": { schema: z.object({ items: z.array(PackageSchema) }) } } }, ...errorResponses } }),
    async (c) => c.json({ items: await listPackages(c.var.db, false) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["admin"],
      summary: "Create a coin package",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: PackageCreateSchema } } } },
      responses: { 201: { description: "Created", ...one }, ...errorResponses, 409: problemFor("displayOrder already used (`conflict`).") },
    }),
    async (c) => c.json(await createPackage(c.var.db, c.var.user.id, c.req.valid("json")), 201),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/{id}",
      tags: ["admin"],
      summary: "Change a coin package (price, coins, bonus, activity, order, badge)",
      security: bearerSecurity,
      request: { params: IdParam, body: { required: true, content: { "application/json": { schema: PackageUpdateSchema } } } },
      responses: { 200: { description: "Updated", ...one }, ...errorResponses, 404: problemFor("No such package."), 409: problemFor("displayOrder already used.") },
    }),
    async (c) => c.json(await updatePackage(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json")), 200),
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      tags: ["admin"],
      summary: "Delete a coin package (past orders keep their copied price and coins)",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses, 404: problemFor("No such package.") },
    }),
    async (c) => {
      await deletePackage(c.var.db, c.var.user.id, c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
