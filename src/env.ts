import type { Config } from "./config";
import type { Db } from "./db/client";
import type { UserRow } from "./db/schema";
import type { Statement } from "./ledger/executor";

export type Role = "user" | "admin";

/** Who the bearer token says is calling. Nothing is read to establish it: the token is verified, that is all. */
export interface AuthUser {
  id: string;
  role: Role;
}

/**
 * Statements the value-moving gate wants written (an alert raised for the first time in its window, a
 * device seen for the first time). They ride in the request's own batch; `applied` says they did, else
 * the gate writes them alone once the request is over.
 */
export interface Sidecar {
  statements: Statement[];
  applied: boolean;
}

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    db: Db;
    user: AuthUser;
    /** The caller's record, loaded (and created on first sight) by the member gate; routes that decide inside their batch never load it. */
    caller: UserRow;
    sidecar: Sidecar;
    requestId: string;
  };
};
