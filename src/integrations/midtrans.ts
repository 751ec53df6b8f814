import { timed } from "../lib/telemetry";
import midtransClient, { type ApiConfigStatics, type HttpClient } from "midtrans-client";
import type { Config } from "../config";

/**
 * `rejected` is a definite refusal: the gateway answered 4xx with its own error body, so nothing was
 * created there. Every other reason is ambiguous: our deadline passed, a 5xx, a network failure or an
 * answer we cannot read may each hide a request the gateway accepted.
 */
export class GatewayError extends Error {
  constructor(
    readonly gateway: string,
    readonly reason: "timeout" | "unavailable" | "unreadable" | "rejected",
    message: string,
  ) {
    super(message);
    this.name = "GatewayError";
  }

  get definite(): boolean {
    return this.reason === "rejected";
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

/** A Midtrans/Iris error body: `{ error_message(s), errors, status_code }`, as opposed to a proxy's page or nothing. */
function isGatewayErrorBody(body: unknown): boolean {
  return typeof body === "object" && body !== null && ["error_message", "error_messages", "errors", "status_message"].some((k) => k in body);
}

function translate(error: unknown, gateway = "midtrans"): GatewayError {
  if (error instanceof GatewayError) return error;
  const e = error as { httpStatusCode?: number | string; ApiResponse?: unknown; code?: string; message?: string; name?: string };
  const message = e.message ?? String(error);
  const status = Number(e.httpStatusCode);
  if (e.code === "ECONNABORTED" || e.name === "TimeoutError" || /timeout/i.test(message)) return new GatewayError(gateway, "timeout", `${gateway} did not answer in time.`);
  // 408 and 429 say the request was not handled yet, not that it was refused.
  if (status >= 400 && status < 500 && status !== 408 && status !== 429 && isGatewayErrorBody(e.ApiResponse)) {
    return new GatewayError(gateway, "rejected", `${gateway} refused the request (HTTP ${status}).`);
  }
  if (status >= 400) return new GatewayError(gateway, "unavailable", `${gateway} is unavailable (HTTP ${status}).`);
  return new GatewayError(gateway, "unavailable", `${gateway} could not be reached.`);
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
  /** Cumulative refunded (or charged back) amount, as sent ("10000.00"), when there was any. */
  refundAmount: string | undefined;
  transactionId: string | undefined;
  /** As Midtrans sends it (absent in older answers: rupiah). */
  currency: unknown;
}

export interface MidtransIrisPayout {
  referenceNo: string;
  status: string;
}

/** What this service asks Iris to pay. Sent byte-identical on every retry of one withdrawal. */
export interface IrisPayoutRequest {
  name: string;
  account: string;
  bank: string;
  amount: number;
  notes: string;
  /** Iris' X-Idempotency-Key (≤ 100 chars, kept by Iris 24 h): a retry returns the first answer, never a second payout. */
  idempotencyKey: string;
}

export interface IrisPayoutDetails {
  referenceNo: string;
  status: string;
  amount: string;
  account: string;
  notes: string;
}

export function midtransGateway(config: Config, env: Pick<Env, "MIDTRANS_SERVER_KEY" | "MIDTRANS_IRIS_API_KEY">) {
  const options = { isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_SERVER_KEY };
  const ready = <T extends { apiConfig: object; httpClient: HttpClient }>(client: T, headers: Record<string, string> = {}): T => {
    const http = client.httpClient.http_client;
    http.defaults.timeout = config.GATEWAY_TIMEOUT_MS;
    // midtrans-client sends `{}` as the body of GET requests (the status API); workerd's fetch
    // refuses a GET with a body, so it is dropped before axios builds the request. It builds its own
    // headers per request, so extra ones (Iris' idempotency key) are added here too.
    http.interceptors.request.use((request) => {
      const withHeaders = { ...request, headers: { ...request.headers, ...headers } };
      return String(request.method).toLowerCase() === "get" ? { ...withHeaders, data: undefined } : withHeaders;
    });
    return pointAt(client, config);
  };
  const iris = (headers?: Record<string, string>) => ready(new midtransClient.Iris({ isProduction: config.MIDTRANS_IS_PRODUCTION, serverKey: env.MIDTRANS_IRIS_API_KEY }), headers);
  return {
    createSnap: (order: SnapOrder): Promise<{ token: string; redirectUrl: string }> => timed("midtrans", "snap.create", async () => {
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
        if (typeof res?.token !== "string" || res.token === "" || typeof res.redirect_url !== "string") throw new GatewayError("Midtrans", "unreadable", "Snap answered without a token.");
        return { token: res.token, redirectUrl: res.redirect_url };
      } catch (error) {
        throw translate(error);
      }
    }),

    /** The Get Status API: the gateway's own word on an order, asked before any credit. */
    status: (orderId: string): Promise<MidtransStatus> => timed("midtrans", "status", async () => {
      const core = ready(new midtransClient.CoreApi(options));
      try {
        const res = await withDeadline(core.transaction.status(orderId), config.GATEWAY_TIMEOUT_MS, "Midtrans");
        // An answer without a status or an amount is not Midtrans' word on anything (never an amount mismatch).
        if (typeof res?.transaction_status !== "string" || res.gross_amount === undefined || res.gross_amount === null) {
          throw new GatewayError("Midtrans", "unreadable", "The Status API answered without a status or an amount.");
        }
        return {
          transactionStatus: String(res.transaction_status ?? ""),
          fraudStatus: typeof res.fraud_status === "string" ? res.fraud_status : undefined,
          grossAmount: String(res.gross_amount ?? ""),
          refundAmount: res.refund_amount === undefined ? undefined : String(res.refund_amount),
          transactionId: typeof res.transaction_id === "string" ? res.transaction_id : undefined,
          currency: res.currency,
        };
      } catch (error) {
        throw translate(error);
      }
    }),

    createPayout: (payout: IrisPayoutRequest): Promise<MidtransIrisPayout> => timed("iris", "payout.create", async () => {
      const client = iris({ "x-idempotency-key": payout.idempotencyKey });
      let res: { payouts?: { status?: unknown; reference_no?: unknown }[] };
      try {
        res = await withDeadline(
          client.createPayouts({
            payouts: [{ beneficiary_name: payout.name, beneficiary_account: payout.account, beneficiary_bank: payout.bank, amount: `${payout.amount}.00`, notes: payout.notes }],
          }),
          config.GATEWAY_TIMEOUT_MS,
          "Iris",
        );
      } catch (error) {
        throw translate(error, "Iris");
      }
      const first = Array.isArray(res?.payouts) ? res.payouts[0] : undefined;
      if (typeof first?.reference_no !== "string" || first.reference_no === "") throw new GatewayError("Iris", "unreadable", "Iris answered without a payout reference.");
      return { referenceNo: first.reference_no, status: String(first.status ?? "") };
    }),

    /** Iris' own record of a payout, including the notes this service wrote (which name the withdrawal). */
    payoutDetails: (referenceNo: string): Promise<IrisPayoutDetails> => timed("iris", "payout.details", async () => {
      let res: Record<string, unknown>;
      try {
        res = await withDeadline(iris().getPayoutDetails(encodeURIComponent(referenceNo)), config.GATEWAY_TIMEOUT_MS, "Iris");
      } catch (error) {
        throw translate(error, "Iris");
      }
      if (typeof res?.status !== "string") throw new GatewayError("Iris", "unreadable", "Iris answered without a payout status.");
      return { referenceNo, status: res.status, amount: String(res.amount ?? ""), account: String(res.beneficiary_account ?? ""), notes: String(res.notes ?? "") };
    }),
  };
}

export type MidtransGateway = ReturnType<typeof midtransGateway>;
