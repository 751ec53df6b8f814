import midtransClient from "midtrans-client";
import ApiConfig from "midtrans-client/lib/apiConfig";
import type { Config } from "../config";

export class GatewayError extends Error {
  constructor(
    readonly gateway: string,
    readonly reason: "timeout" | "unavailable" | "rejected",
    message: string,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

/**
 * midtrans-client reads its base URLs from static fields of ApiConfig on every call, so pointing
 * it at the configured endpoints (the simulator locally) means setting those fields. Every request
 * of a deployment sets the same values, so sharing them across requests is harmless.
 */
function pointClientAt(config: Config): void {
  const snap = config.MIDTRANS_SNAP_BASE_URL.replace(/\/$/, "");
  const core = config.MIDTRANS_API_BASE_URL.replace(/\/$/, "");
  const iris = config.MIDTRANS_IRIS_BASE_URL.replace(/\/$/, "");
  if (config.MIDTRANS_IS_PRODUCTION) {
    Object.assign(ApiConfig, { SNAP_PRODUCTION_BASE_URL: snap, CORE_PRODUCTION_BASE_URL: core, IRIS_PRODUCTION_BASE_URL: iris });
  } else {
    Object.assign(ApiConfig, { SNAP_SANDBOX_BASE_URL: snap, CORE_SANDBOX_BASE_URL: core, IRIS_SANDBOX_BASE_URL: iris });
  }
}

function translate(error: unknown): GatewayError {
  const e = error as { httpStatusCode?: number; code?: string; message?: string; name?: string };
  const message = e.message ?? String(error);
  if (e.code === "ECONNABORTED" || e.name === "TimeoutError" || /timeout/i.test(message)) return new GatewayError("midtrans", "timeout", "Midtrans did not answer in time.");
  if (e.httpStatusCode !== undefined && e.httpStatusCode < 500) return new GatewayError("midtrans", "rejected", `Midtrans refused the request (HTTP ${e.httpStatusCode}).`);
  return new GatewayError("midtrans", "unavailable", "Midtrans is unavailable.");
}

export interface SnapOrder {
  orderId: string;
  grossAmount: number;
  items: { id: string; price: number; quantity: number; name: string }[];
  customerId: string;
}

export interface MidtransStatus {
  transactionStatus: string;
  fraudStatus: string | undefined;
  grossAmount: string;
}

export interface MidtransIrisPayout {
  referenceNo: string;
  status: string;
}

export function midtransGateway(config: Config, env: Pick<Env, "MIDTRANS_SERVER_KEY" | "MIDTRANS_IRIS_API_KEY">) {
  const options = { isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_SERVER_KEY };
  const withTimeout = <T extends { httpClient: { http_client: { defaults: { timeout?: number } } } }>(client: T): T => {
    client.httpClient.http_client.defaults.timeout = config.GATEWAY_TIMEOUT_MS;
    return client;
  };
  return {
    async createSnap(order: SnapOrder): Promise<{ token: string; redirectUrl: string }> {
      pointClientAt(config);
      const snap = withTimeout(new midtransClient.Snap(options));
      try {
        const res = await snap.createTransaction({
          transaction_details: { order_id: order.orderId, gross_amount: order.grossAmount },
          item_details: order.items,
          customer_details: { first_name: order.customerId },
        });
        return { token: res.token, redirectUrl: res.redirect_url };
      } catch (error) {
        throw translate(error);
      }
    },

    /** The Get Status API: the gateway's own word on an order, asked before any credit. */
    async status(orderId: string): Promise<MidtransStatus> {
      pointClientAt(config);
      const core = withTimeout(new midtransClient.CoreApi(options));
      try {
        const res = await core.transaction.status(orderId);
        return {
          transactionStatus: String(res.transaction_status ?? ""),
          fraudStatus: typeof res.fraud_status === "string" ? res.fraud_status : undefined,
          grossAmount: String(res.gross_amount ?? ""),
        };
      } catch (error) {
        throw translate(error);
      }
    },

    async createPayout(payout: { name: string; account: string; bank: string; amount: number; notes: string }): Promise<MidtransIrisPayout> {
      pointClientAt(config);
      const iris = withTimeout(new midtransClient.Iris({ isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_IRIS_API_KEY }));
      try {
        const res = await iris.createPayouts({
          payouts: [{ beneficiary_name: payout.name, beneficiary_account: payout.account, beneficiary_bank: payout.bank, amount: `${payout.amount}.00`, notes: payout.notes }],
        });
        const first = res.payouts[0];
        if (!first) throw new GatewayError("iris", "unavailable", "Iris answered without a payout.");
        return { referenceNo: first.reference_no, status: first.status };
      } catch (error) {
        throw error instanceof GatewayError ? error : translate(error);
      }
    },
  };
}

export type MidtransGateway = ReturnType<typeof midtransGateway>;
