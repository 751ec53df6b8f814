import type { TestProject } from "vitest/node";
// @ts-expect-error -- the simulator is plain JavaScript (tools/ has no type declarations); its API is tiny.
import { startSimulator } from "../tools/gateway-sim.mjs";
import { TEST_KEYS } from "./keys";

declare module "vitest" {
  export interface ProvidedContext {
    simUrl: string;
  }
}

/**
 * The gateway simulator runs in Node beside the Workers runtime. Tests deliver notifications to the
 * Worker themselves (`deliver: false`), so the simulator never needs to reach the service.
 */
export default async function setup(project: TestProject) {
  const sim = await startSimulator({ port: 0, serviceUrl: "http://127.0.0.1:9", keys: TEST_KEYS, log: false });
  project.provide("simUrl", sim.url);
  return async () => sim.close();
}
