// The subset of midtrans-client 1.4.3 this service uses. The package ships no types and the
// community @types package lacks Iris and the status API, so the shapes are declared here.
declare module "midtrans-client" {
  interface ClientOptions {
    isProduction: boolean;
    serverKey: string;
    clientKey?: string;
  }
  /** Static base-URL fields of the library's ApiConfig class, read on every call. */
  export interface ApiConfigStatics {
    SNAP_SANDBOX_BASE_URL: string;
    SNAP_PRODUCTION_BASE_URL: string;
    CORE_SANDBOX_BASE_URL: string;
    CORE_PRODUCTION_BASE_URL: string;
    IRIS_SANDBOX_BASE_URL: string;
    IRIS_PRODUCTION_BASE_URL: string;
  }
  interface AxiosRequest {
    method?: string;
    data?: unknown;
    headers?: Record<string, unknown>;
  }
  export interface HttpClient {
    http_client: {
      defaults: { timeout?: number };
      interceptors: { request: { use(onRequest: (request: AxiosRequest) => AxiosRequest): number } };
    };
  }
  export class Snap {
    constructor(options: ClientOptions);
    httpClient: HttpClient;
    apiConfig: object;
    createTransaction(parameter: Record<string, unknown>): Promise<{ token: string; redirect_url: string }>;
  }
  export class CoreApi {
    constructor(options: ClientOptions);
    httpClient: HttpClient;
    apiConfig: object;
    transaction: { status(orderId: string): Promise<Record<string, unknown>> };
  }
  export class Iris {
    constructor(options: { isProduction: boolean; serverKey: string });
    httpClient: HttpClient;
    apiConfig: object;
    createPayouts(parameter: Record<string, unknown>): Promise<{ payouts?: { status?: unknown; reference_no?: unknown }[] }>;
    getPayoutDetails(referenceNo: string): Promise<Record<string, unknown>>;
  }
  export class MidtransError extends Error {
    httpStatusCode?: number;
    ApiResponse?: unknown;
  }
  const midtransClient: { Snap: typeof Snap; CoreApi: typeof CoreApi; Iris: typeof Iris; MidtransError: typeof MidtransError };
  export default midtransClient;
}

