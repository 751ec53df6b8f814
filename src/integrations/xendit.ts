import type { Config } from "../config";
import { timed } from "../lib/telemetry";
import { GatewayError } from "./midtrans";

/** Xendit invoices over fetch (POST /v2/invoices), HTTP Basic auth with the secret key. */
export function xenditGateway(config: Config, env: Pick<Env, "XENDIT_SECRET_KEY">) {
  return {
    createInvoice: (invoice: { externalId: string; amount: number; description: string }): Promise<{ id: string; invoiceUrl: string }> => timed("xendit", "invoice.create", async () => {
      let res: Response;
      try {
        res = await fetch(`${config.XENDIT_API_BASE_URL.replace(/\/$/, "")}/v2/invoices`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Basic ${btoa(`${env.XENDIT_SECRET_KEY}:`)}` },
          body: JSON.stringify({ external_id: invoice.externalId, amount: invoice.amount, description: invoice.description, currency: "IDR" }),
          signal: AbortSignal.timeout(config.GATEWAY_TIMEOUT_MS),
        });
      } catch (error) {
        const timeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
        throw new GatewayError("xendit", timeout ? "timeout" : "unavailable", timeout ? "Xendit did not answer in time." : "Xendit is unreachable.");
      }
      if (res.status >= 500) throw new GatewayError("xendit", "unavailable", `Xendit is unavailable (HTTP ${res.status}).`);
      if (!res.ok) throw new GatewayError("xendit", "rejected", `Xendit refused the invoice (HTTP ${res.status}).`);
      const body = ((await res.json().catch(() => null)) ?? {}) as { id?: unknown; invoice_url?: unknown };
      if (typeof body.id !== "string" || typeof body.invoice_url !== "string") throw new GatewayError("xendit", "unavailable", "Xendit answered without an invoice.");
      return { id: body.id, invoiceUrl: body.invoice_url };
    }),
  };
}
