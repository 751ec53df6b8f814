// The service as `npm start` runs it (wrangler dev + gateway simulator) on a fresh local state in a
// temporary directory, for the scripts that drive it over HTTP (e2e, the console test).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts it; `ready()` resolves once it answers, `stop()` kills it and removes its state. */
export function startLocalService({ name, port, simPort, extraVars = [] }) {
  const persist = mkdtempSync(join(tmpdir(), `money-${name}-`));
  const server = spawn("node", ["scripts/start.mjs"], {
    env: { ...process.env, PORT: String(port), SIM_PORT: String(simPort), PERSIST_DIR: persist, SIM_LOG: "false", ...(extraVars.length > 0 ? { EXTRA_VARS: extraVars.join(" ") } : {}) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let log = "";
  server.stdout.on("data", (d) => (log += d));
  server.stderr.on("data", (d) => (log += d));
  const api = `http://127.0.0.1:${port}`;
  return {
    api,
    simUrl: `http://127.0.0.1:${simPort}`,
    persist,
    log: () => log,
    async ready(timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        try {
          if ((await fetch(`${api}/healthz`)).ok) return;
        } catch {}
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`service did not start:\n${log.slice(-3000)}`);
    },
    stop() {
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch {}
      rmSync(persist, { recursive: true, force: true });
    },
  };
}

/** One JSON (or form) request; the answer's status, parsed JSON if any, and text. */
export async function request(method, url, { token, body, form, headers = {} } = {}) {
  const res = await fetch(url, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: form ?? (body ? JSON.stringify(body) : undefined),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}
