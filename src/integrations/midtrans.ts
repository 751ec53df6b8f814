import midtransClient, { type ApiConfigStatics, type HttpClient } from "midtrans-client";
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
 * midtrans-client reads its base URLs from static fields of its ApiConfig class on every call, so
 * pointing a client at the configured endpoints (the simulator locally) means setting those fields.
 * They are reached through the client's own config object, because a bundler or test runner may
 * load `midtrans-client/lib/apiConfig` as a second module instance the library never reads.
 * Every request of a deployment writes the same values, so sharing them across requests is harmless.
 */
function pointAt<T extends { apiConfig: object }>(client: T, config: Config): T {
  const statics = Object.getPrototypeOf(client.apiConfig).constructor as ApiConfigStatics;
  const snap = config.MIDTRANS_SNAP_BASE_URL.replace(/\/$/, "");
  const core = config.MIDTRANS_API_BASE_URL.replace(/\/$/, "");
  const iris = config.MIDTRANS_IRIS_BASE_URL.replace(/\/$/, "");
  if (config.MIDTRANS_IS_PRODUCTION) {
    Object.assign(statics, { SNAP_PRODUCTION_BASE_URL: snap, CORE_PRODUCTION_BASE_URL: core, IRIS_PRODUCTION_BASE_URL: iris });
  } else {
    Object.assign(statics, { SNAP_SANDBOX_BASE_URL: snap, CORE_SANDBOX_BASE_URL: core, IRIS_SANDBOX_BASE_URL: iris });
  }
  return client;
}

/**
 * axios's own `timeout` does not fire on workerd's fetch path, so every gateway call also races a
 * deadline of its own; the abandoned request is dropped with the invocation.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, gateway: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GatewayError(gateway, "timeout", `${gateway} did not answer within ${ms} ms.`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function translate(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
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
  const ready = <T extends { apiConfig: object; httpClient: HttpClient }>(client: T): T => {
    const http = client.httpClient.http_client;
    http.defaults.timeout = config.GATEWAY_TIMEOUT_MS;
    // midtrans-client sends `{}` as the body of GET requests (the status API); workerd's fetch
    // refuses a GET with a body, so it is dropped before axios builds the request.
    http.interceptors.request.use((request) => (String(request.method).toLowerCase() === "get" ? { ...request, data: undefined } : request));
    return pointAt(client, config);
  };
  return {
    async createSnap(order: SnapOrder): Promise<{ token: string; redirectUrl: string }> {
      const snap = ready(new midtransClient.Snap(options));
      try {
        const res = await withDeadline(
          snap.createTransaction({
            transaction_details: { order_id: order.orderId, gross_amount: order.grossAmount },
            item_details: order.items,
            customer_details: { first_name: order.customerId },
          }),
          config.GATEWAY_TIMEOUT_MS,
          "Midtrans",
        );
        return { token: res.token, redirectUrl: res.redirect_url };
      } catch (error) {
        throw translate(error);
      }
    },

    /** The Get Status API: the gateway's own word on an order, asked before any credit. */
    async status(orderId: string): Promise<MidtransStatus> {
      const core = ready(new midtransClient.CoreApi(options));
      try {
        const res = await withDeadline(core.transaction.status(orderId), config.GATEWAY_TIMEOUT_MS, "Midtrans");
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
      const iris = ready(new midtransClient.Iris({ isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_IRIS_API_KEY }));
      try {
        const res = await withDeadline(
          iris.createPayouts({
            payouts: [{ beneficiary_name: payout.name, beneficiary_account: payout.account, beneficiary_bank: payout.bank, amount: `${payout.amount}.00`, notes: payout.notes }],
          }),
          config.GATEWAY_TIMEOUT_MS,
          "Iris",
        );
        const first = res.payouts[0];
        if (!first) throw new GatewayError("iris", "unavailable", "Iris answered without a payout.");
        return { referenceNo: first.reference_no, status: first.status };
      } catch (error) {
        throw translate(error);
      }
    },

    async payoutStatus(referenceNo: string): Promise<{ status: string }> {
      const iris = ready(new midtransClient.Iris({ isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_IRIS_API_KEY }));
      try {
        const res = await withDeadline(iris.getPayoutDetails(referenceNo), config.GATEWAY_TIMEOUT_MS, "Iris");
        return { status: String(res.status ?? "") };
      } catch (error) {
        throw translate(error);
      }
    },
  };
}

export type MidtransGateway = ReturnType<typeof midtransGateway>;
