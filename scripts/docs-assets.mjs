#!/usr/bin/env node
// Copies the API reference renderer (swagger-ui-dist, a pinned devDependency) into public/docs/vendor,
// which the Worker serves as static assets. Run by `npm start`, `npm test` and before a deploy; the
// copies are not committed.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const out = join(root, "public", "docs", "vendor");
mkdirSync(out, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"]) copyFileSync(join(dist, file), join(out, file));
