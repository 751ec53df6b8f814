import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sniffImage, validIdNumber } from "../src/kyc/kyc-rules";
import { adminToken, call, d1Before, expectProblem, jpeg, kycForm, newUser, png, tokenFor } from "./helpers";

describe("KYC rules", () => {
  it("checks ID numbers per type and images by magic bytes", () => {
    expect(validIdNumber("ktp", "3171234567890123")).toBe(true);
    expect(validIdNumber("ktp", "317123456789012")).toBe(false);
    expect(validIdNumber("passport", "X1234567")).toBe(true);
    expect(validIdNumber("sim", "1234-5678")).toBe(false);
    expect(sniffImage(jpeg(10))).toBe("image/jpeg");
    expect(sniffImage(png(10))).toBe("image/png");
    expect(sniffImage(new TextEncoder().encode("GIF89a......"))).toBeNull();
    expect(sniffImage(new Uint8Array([0xff, 0xd8]))).toBeNull();
  });
});

describe("KYC submission and review", () => {
  it("stores photos encrypted in R2 and shows the original only to admins, auditing each view", async () => {
    const user = await newUser("kyc");
    const idPhoto = jpeg(4096);
    const submit = await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idPhoto }) });
    expect(submit.status, submit.text).toBe(201);
    expect(submit.json).toMatchObject({ status: "pending", reviewedAt: null });
    expect((await call("GET", "/api/wallet/balance", { token: user.token })).json.kycStatus).toBe("pending");

    const row = await env.DB.prepare("select * from kyc_submissions where user_id = ?").bind(user.id).first<Record<string, any>>();
    expect(row?.id_number_last4).toBe("0123");
    expect(row?.id_number_encrypted).not.toContain("3171234567890123");
    const stored = new Uint8Array(await (await env.KYC_BUCKET.get(row!.id_photo_key))!.arrayBuffer());
    // "KE1" ‖ key id (4) ‖ IV (12) ‖ ciphertext ‖ GCM tag (16)
    expect(stored.length).toBe(3 + 4 + 12 + idPhoto.length + 16);
    expect(stored.slice(19, 19 + 64)).not.toEqual(idPhoto.slice(0, 64));
    expect(Buffer.from(stored).includes(Buffer.from(idPhoto.slice(100, 164)))).toBe(false);

    const admin = await adminToken();
    const view = await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token: admin });
    expect(view.status).toBe(200);
    expect(view.headers.get("content-type")).toBe("image/jpeg");
    const viewed = await (await import("./helpers")).call("GET", `/api/admin/kyc/${user.id}/photo/selfie`, { token: admin });
    expect(viewed.headers.get("content-type")).toBe("image/png");
    const raw = await callBytes(`/api/admin/kyc/${user.id}/photo/id`, admin);
    expect(raw).toEqual(idPhoto);
    const audits = await env.DB.prepare("select count(*) as n from audit_log where action = 'kyc.photo_viewed' and subject_id = ?").bind(user.id).first<{ n: number }>();
    expect(audits?.n).toBe(3);

    expectProblem(await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token: user.token }), 403, "forbidden");
    const other = await newUser("other");
    expectProblem(await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token: other.token }), 403, "forbidden");

    const queue = await call("GET", "/api/admin/kyc?status=pending&limit=100", { token: admin });
    expect(queue.json.items.some((i: any) => i.userId === user.id)).toBe(true);
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() }), 409, "conflict");

    const reject = await call("POST", `/api/admin/kyc/${user.id}/review`, { token: admin, body: { decision: "rejected", reason: "blurry photo" } });
    expect(reject.status).toBe(200);
    expect((await call("GET", "/api/wallet/kyc/status", { token: user.token })).json).toMatchObject({ status: "rejected", reason: "blurry photo" });
    expectProblem(await call("POST", `/api/admin/kyc/${user.id}/review`, { token: admin, body: { decision: "verified" } }), 404, "not_found");
    const changes = await env.DB.prepare("select details from audit_log where action = 'kyc.status_changed' and subject_id = ? order by id").bind(user.id).all<{ details: string }>();
    expect(changes.results.map((r) => JSON.parse(r.details)).map((d) => [d.from, d.to])).toEqual([["none", "pending"], ["pending", "rejected"]]);
    // A rejected user may submit again.
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
  });

  it("refuses non-images, oversized photos, bad ID numbers and missing files", async () => {
    const user = await newUser("kyc");
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idPhoto: new TextEncoder().encode("%PDF-1.7 not an image") }) }), 415, "unsupported_media_type");
    const big = jpeg(5 * 1024 * 1024 + 1);
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ selfiePhoto: big }) }), 413, "payload_too_large");
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idNumber: "12' OR 1=1" }) }), 400, "validation_failed");
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idType: "visa" }) }), 400, "validation_failed");
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idPhoto: "just text" }) }), 400, "validation_failed");
    expect((await call("GET", "/api/wallet/kyc/status", { token: user.token })).json.status).toBe("none");
  });

  it("the retention job deletes photos of rejections older than 30 days", async () => {
    const user = await newUser("kyc");
    await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() });
    await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "rejected", reason: "mismatch" } });
    const row = await env.DB.prepare("select * from kyc_submissions where user_id = ?").bind(user.id).first<Record<string, any>>();
    const { purgeRejectedPhotos } = await import("../src/kyc/kyc.service");
    const { createDb } = await import("../src/db/client");
    const { loadConfig } = await import("../src/config");
    const db = createDb(env.DB);
    await purgeRejectedPhotos(db, env.KYC_BUCKET, loadConfig({}), row!.reviewed_at + 29 * 86_400_000);
    expect(await env.KYC_BUCKET.head(row!.id_photo_key)).not.toBeNull();
    await purgeRejectedPhotos(db, env.KYC_BUCKET, loadConfig({}), row!.reviewed_at + 31 * 86_400_000);
    expect(await env.KYC_BUCKET.head(row!.id_photo_key)).toBeNull();
    expect(await env.KYC_BUCKET.head(row!.selfie_photo_key)).toBeNull();
    expectProblem(await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token: await adminToken() }), 404, "not_found");
  });
});

async function callBytes(path: string, token: string) {
  const worker = (await import("../src/index")).default;
  const { createExecutionContext } = await import("cloudflare:test");
  const res = await worker.fetch(new Request(`http://money.test${path}`, { headers: { authorization: `Bearer ${token}` } }) as Request<unknown, IncomingRequestCfProperties>, env, createExecutionContext());
  return new Uint8Array(await res.arrayBuffer());
}

describe("KYC decisions are taken in their batch", () => {
  const kycState = async (userId: string) => ({
    submissions: (await env.DB.prepare("select status from kyc_submissions where user_id = ? order by id").bind(userId).all<{ status: string }>()).results.map((r) => r.status),
    user: (await env.DB.prepare("select kyc_status from users where id = ?").bind(userId).first<{ kyc_status: string }>())?.kyc_status,
    audit: (await env.DB.prepare("select details from audit_log where action = 'kyc.status_changed' and subject_id = ? order by id").bind(userId).all<{ details: string }>()).results.map((r) => {
      const d = JSON.parse(r.details);
      return `${d.from}->${d.to}`;
    }),
  });

  it("a review that loses to a concurrent one changes nothing: a rejected user does not become verified", async () => {
    const user = await newUser("kycrace");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    const other = `update kyc_submissions set status = 'rejected', reason = 'forged', reviewed_at = 1, reviewed_by = 'admin-b' where user_id = '${user.id}' and status = 'pending'; update users set kyc_status = 'rejected' where id = '${user.id}';`;
    const res = await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified" }, db: d1Before(other, /update "kyc_submissions"/) });
    expectProblem(res, 409, "conflict");
    expect(await kycState(user.id)).toEqual({ submissions: ["rejected"], user: "rejected", audit: ["none->pending"] });
  });

  it("a submission that lands after the user was verified (a twin, reviewed meanwhile) is refused and downgrades nothing", async () => {
    const user = await newUser("kycsub");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    expect((await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "rejected", reason: "blurry" } })).status).toBe(200);
    const twin = `insert into kyc_submissions (id, user_id, id_type, id_number_encrypted, id_number_last4, id_photo_key, id_photo_type, selfie_photo_key, selfie_photo_type, status, submitted_at, reviewed_at, reviewed_by) values ('01TWIN${Date.now()}', '${user.id}', 'ktp', 'x', '0123', 'k1', 'image/jpeg', 'k2', 'image/png', 'verified', 1, 2, 'admin'); update users set kyc_status = 'verified' where id = '${user.id}';`;
    const res = await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm(), db: d1Before(twin, /insert into "kyc_submissions"/) });
    expectProblem(res, 409, "conflict");
    expect((await kycState(user.id)).user).toBe("verified");
  });
});

describe("who reviews which submission", () => {
  it("an admin neither reviews nor views their own KYC submission", async () => {
    const adminId = `ops-self-${Date.now().toString(36)}`;
    const token = await tokenFor(adminId, "admin");
    expect((await call("POST", "/api/wallet/kyc/submit", { token, form: kycForm() })).status).toBe(201);
    expectProblem(await call("GET", `/api/admin/kyc/${adminId}/photo/id`, { token }), 403, "forbidden");
    expectProblem(await call("POST", `/api/admin/kyc/${adminId}/review`, { token, body: { decision: "verified" } }), 403, "forbidden");
    const row = await env.DB.prepare("select kyc_status from users where id = ?").bind(adminId).first<{ kyc_status: string }>();
    expect(row!.kyc_status).toBe("pending");
    // Another admin may.
    expect((await call("POST", `/api/admin/kyc/${adminId}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
  });

  it("a review naming the submission it looked at is refused when another one is pending now", async () => {
    const user = await newUser("kyc-swap");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    const first = (await call("GET", "/api/admin/kyc?limit=100", { token: await adminToken() })).json.items.find((i: any) => i.userId === user.id);
    expect((await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "rejected", reason: "blurry" } })).status).toBe(200);
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    // An admin who looked at the first submission decides: not about the second, which nobody has seen.
    const stale = await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified", submissionId: first.id } });
    expectProblem(stale, 409, "conflict");
    const row = await env.DB.prepare("select kyc_status from users where id = ?").bind(user.id).first<{ kyc_status: string }>();
    expect(row!.kyc_status).toBe("pending");
  });

  it("a failed photo upload leaves no photo behind, even the one that was still uploading", async () => {
    const user = await newUser("kyc-orphan");
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const bucket = new Proxy(env.KYC_BUCKET, {
      get(target, prop) {
        if (prop === "put")
          return async (key: string, value: ArrayBuffer | Uint8Array, opts: R2PutOptions) => {
            if (key.endsWith("/id")) {
              setTimeout(release, 50);
              throw new Error("R2 unavailable");
            }
            await slow;
            return target.put(key, value, opts);
          };
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const res = await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm(), env: { KYC_BUCKET: bucket } });
    expect(res.status).toBe(500);
    await new Promise((r) => setTimeout(r, 100));
    const left = await env.KYC_BUCKET.list({ prefix: `kyc/${user.id}/` });
    expect(left.objects.map((o) => o.key)).toEqual([]);
  });
});

describe("a KYC re-check (fraud level 3)", () => {
  it("a verified user asked for additional verification submits again; a verified review lifts the hold, a rejection keeps money out", async () => {
    const passes = await newUser("recheck");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: passes.token, form: kycForm() })).status).toBe(201);
    expect((await call("POST", `/api/admin/kyc/${passes.id}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
    // Without a hold a verified user has nothing to submit.
    expectProblem(await call("POST", "/api/wallet/kyc/submit", { token: passes.token, form: kycForm() }), 409, "conflict");
    await env.DB.prepare("update users set verification_required = 1 where id = ?").bind(passes.id).run();
    const again = await call("POST", "/api/wallet/kyc/submit", { token: passes.token, form: kycForm() });
    expect(again.status, again.text).toBe(201);
    expect(again.json).toMatchObject({ status: "pending" });
    expect((await call("POST", `/api/admin/kyc/${passes.id}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
    const lifted = await env.DB.prepare("select kyc_status, verification_required from users where id = ?").bind(passes.id).first<{ kyc_status: string; verification_required: number }>();
    expect(lifted).toEqual({ kyc_status: "verified", verification_required: 0 });
  });
});
