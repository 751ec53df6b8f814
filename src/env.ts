import type { Config } from "./config";
import type { Db } from "./db/client";
import type { UserRow } from "./db/schema";

export type Role = "user" | "admin";

export interface AuthUser {
  id: string;
  role: Role;
  record: UserRow;
}

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    db: Db;
    user: AuthUser;
    requestId: string;
  };
};
