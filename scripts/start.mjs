#!/usr/bin/env node
// `npm start`: local secrets, local D1 migrations, the gateway simulator, then `wrangler dev`
// on 127.0.0.1 with the gateway clients pointed at the simulator. Everything runs offline.
import { spawn, spawnSync } from "node:child_process";
import { ensureDevVars } from "./dev-vars.mjs";

const port = process.env.PORT ?? "8787";
const simPort = Number(process.env.SIM_PORT ?? 8790);
const persist = process.env.PERSIST_DIR ?? ".wrangler/state";
const extraVars = (process.env.EXTRA_VARS ?? "").split(/\s+/).filter(Boolean);
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
const wrangler = "node_modules/.bin/wrangler";

const keys = ensureDevVars();
// The API reference's renderer, served as static assets from public/docs/vendor.
await import("./docs-assets.mjs");
const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], { stdio: "inherit", env });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const { startSimulator } = await import("../tools/gateway-sim.mjs");
const sim = await startSimulator({ port: simPort, serviceUrl: `http://127.0.0.1:${port}`, keys, log: process.env.SIM_LOG !== "false" });

const simVars = {
  MIDTRANS_SNAP_BASE_URL: `${sim.url}/snap/v1`,
  MIDTRANS_API_BASE_URL: sim.url,
  MIDTRANS_IRIS_BASE_URL: `${sim.url}/iris/api/v1`,
  XENDIT_API_BASE_URL: sim.url,
};
// Crons are fired with GET /__scheduled?cron=...&time=... (answered by the Worker in development: with
// static assets configured, wrangler dev's /cdn-cgi/handler/scheduled reaches the assets router and answers 500).
const vars = [...Object.entries(simVars), ...extraVars.map((v) => [v.slice(0, v.indexOf(":")), v.slice(v.indexOf(":") + 1)])];
if (process.env.DEVTOOLS === "off") {
  // The benchmarks: the same dev server through wrangler's programmatic API, with its DevTools inspector
  // off. With it on, wrangler reports every subrequest (each D1 and object call) to DevTools as Network
  // events whether or not DevTools is open, which costs the local stack more CPU than a D1 read itself.
  Object.assign(process.env, env);
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings: Object.fromEntries(vars.map(([name, value]) => [name, { type: "plain_text", value }])),
    // (The CLI derives this from wrangler.toml's `nodejs_compat` flag; the programmatic API needs it said.)
    build: { nodejsCompatMode: "v2" },
    dev: { remote: false, inspector: false, server: { hostname: "127.0.0.1", port: Number(port) }, persist, watch: false },
  });
  await worker.ready;
  const stop = async () => {
    await worker.dispose();
    await sim.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} else {
  const args = ["dev", "--ip", "127.0.0.1", "--port", port, "--persist-to", persist, "--show-interactive-dev-session=false"];
  for (const [name, value] of vars) args.push("--var", `${name}:${value}`);
  // DevTools (and `npm run bench:profile`) attach here; wrangler picks a free port when unset.
  if (process.env.INSPECTOR_PORT) args.push("--inspector-port", process.env.INSPECTOR_PORT);
  const dev = spawn(wrangler, args, { stdio: "inherit", env });
  const stop = async () => {
    dev.kill("SIGTERM");
    await sim.close();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  dev.on("exit", async (code) => {
    await sim.close();
    process.exit(code ?? 0);
  });
}

console.log(`
  API           http://127.0.0.1:${port}   (docs: http://127.0.0.1:${port}/docs)
  simulator     ${sim.url}   (Midtrans Snap/status/Iris and Xendit, control API under /_sim)
  dev token     npm run dev:token -- <userId> [user|admin]
`);
