import { copyFileSync, existsSync, readFileSync } from "node:fs";

/** Local secrets: `.dev.vars`, created from the committed example on first use. */
export function ensureDevVars(dir = process.cwd()) {
  const path = `${dir}/.dev.vars`;
  if (!existsSync(path)) {
    copyFileSync(`${dir}/.dev.vars.example`, path);
    console.log("created .dev.vars from .dev.vars.example (local secrets; never commit it)");
  }
  return parseDevVars(readFileSync(path, "utf8"));
}

export function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith("#")) vars[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}
