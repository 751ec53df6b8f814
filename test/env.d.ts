import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      SIM_URL: string;
      DEV_VARS_EXAMPLE: string;
    }
  }
}
