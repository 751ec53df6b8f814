import { and, desc, eq, isNull, lt, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { auditLog, kycSubmissions, users, type KycSubmissionRow } from "../db/schema";
import { applyStatements, translateBatchError } from "../ledger/executor";
import { checkGuards, guard, GuardError } from "../ledger/guards";
import { keyRing, open, seal, toBase64 } from "../lib/crypto";
import { notAboutThemselves } from "../lib/auth";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { sniffImage, validIdNumber, type IdType } from "./kyc-rules";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface KycUpload {
  idType: IdType;
  idNumber: string;
  idPhoto: File;
  selfiePhoto: File;
}

async function readPhoto(file: unknown, field: string, maxBytes: number) {
  if (!(file instanceof File)) throw new ApiError("validation_failed", `${field} must be a file.`, { errors: [{ path: `form.${field}`, message: "a JPEG or PNG file" }] });
  if (file.size > maxBytes) throw new ApiError("payload_too_large", `${field} exceeds ${maxBytes} bytes.`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  const type = sniffImage(bytes);
  if (!type) throw new ApiError("unsupported_media_type", `${field} is not a JPEG or PNG image.`);
  return { bytes, type };
}

export async function latestSubmission(db: Db, userId: string): Promise<KycSubmissionRow | undefined> {
  return db.query.kycSubmissions.findFirst({ where: eq(kycSubmissions.userId, userId), orderBy: desc(kycSubmissions.id) });
}

/**
 * Encrypts both photos (fresh IV each, bound to their object key, the envelope naming its key) before
 * they reach R2; D1 holds only the keys, the encrypted ID number and its last four digits. One pending
 * submission per user, kept by a unique index even against concurrent submits; photos uploaded for a
 * submission whose write failed are deleted again.
 */
export async function submitKyc(db: Db, bucket: R2Bucket, env: Env, config: Config, userId: string, upload: KycUpload) {
  if (!validIdNumber(upload.idType, upload.idNumber)) {
    throw new ApiError("validation_failed", "The ID number does not match the ID type.", { errors: [{ path: "form.idNumber", message: `not a valid ${upload.idType} number` }] });
  }
  const [current, user] = await Promise.all([latestSubmission(db, userId), db.query.users.findFirst({ where: eq(users.id, userId), columns: { verificationRequired: true } })]);
  if (current?.status === "pending") throw new ApiError("conflict", "A KYC submission is already waiting for review.");
  // A verified user submits again only for the KYC re-check fraud level 3 asks for (SPEC §12).
  const recheck = current?.status === "verified" && user?.verificationRequired === true;
  if (current?.status === "verified" && !recheck) throw new ApiError("conflict", "This account is already verified.");
  const [idPhoto, selfie] = await Promise.all([readPhoto(upload.idPhoto, "idPhoto", config.KYC_MAX_PHOTO_BYTES), readPhoto(upload.selfiePhoto, "selfiePhoto", config.KYC_MAX_PHOTO_BYTES)]);
  const ring = await keyRing(env);
  const now = Date.now();
  const id = newId(now);
  const idKey = `kyc/${userId}/${id}/id`;
  const selfieKey = `kyc/${userId}/${id}/selfie`;
  const put = async (objectKey: string, photo: { bytes: Uint8Array; type: string }) =>
    bucket.put(objectKey, await seal(ring, photo.bytes, objectKey), { customMetadata: { contentType: photo.type, encryption: "AES-256-GCM", keyId: ring.current.id } });
  const removePhotos = () => bucket.delete([idKey, selfieKey]);
  // Both uploads settle before a failure removes them: one still in flight would land after the delete.
  const uploads = await Promise.allSettled([put(idKey, idPhoto), put(selfieKey, selfie)]);
  const failed = uploads.find((u): u is PromiseRejectedResult => u.status === "rejected");
  if (failed) {
    await removePhotos();
    throw failed.reason;
  }
  const idNumberEncrypted = toBase64(await seal(ring, new TextEncoder().encode(upload.idNumber), `kyc-id-number:${id}`));
  // Decided in the batch: a user verified since the read above (a twin submission reviewed meanwhile) stays verified.
  const write = db.batch([
    checkGuards(db, [guard("kyc_already_verified", sql`exists (select 1 from ${users} where ${users.id} = ${userId} and ${users.kycStatus} = 'verified' and ${users.verificationRequired} = 0)`)]),
    db.insert(kycSubmissions).values({
      id,
      userId,
      idType: upload.idType,
      idNumberEncrypted,
      idNumberLast4: upload.idNumber.slice(-4),
      idPhotoKey: idKey,
      idPhotoType: idPhoto.type,
      selfiePhotoKey: selfieKey,
      selfiePhotoType: selfie.type,
      status: "pending",
      submittedAt: now,
      keyId: ring.current.id,
    }),
    // A re-check keeps the user verified (their limits) until it is decided; money out waits on the hold anyway.
    db.update(users).set({ kycStatus: sql`case when ${users.kycStatus} = 'verified' then 'verified' else 'pending' end`, updatedAt: now }).where(eq(users.id, userId)),
    db.insert(auditLog).values({ actorId: userId, action: "kyc.status_changed", subjectType: "user", subjectId: userId, details: { from: current?.status ?? "none", to: "pending", submissionId: id, ...(recheck ? { recheck: true } : {}) }, createdAt: now }),
  ]);
  try {
    await write;
  } catch (error) {
    await removePhotos();
    const refused = translateBatchError(error);
    if (refused instanceof GuardError) throw refused;
    const message = `${error instanceof Error ? error.message : ""} ${error instanceof Error && error.cause instanceof Error ? error.cause.message : ""}`;
    if (message.includes("UNIQUE") && message.includes("kyc_submissions.user_id")) throw new ApiError("conflict", "A KYC submission is already waiting for review.");
    throw error;
  }
  return kycStatusView(await latestSubmission(db, userId));
}

export function kycStatusView(row: KycSubmissionRow | undefined) {
  if (!row) return { status: "none" as const, submittedAt: null, reviewedAt: null };
  return { status: row.status, submittedAt: iso(row.submittedAt), reviewedAt: iso(row.reviewedAt), ...(row.reason ? { reason: row.reason } : {}) };
}

export const queueItemView = (row: KycSubmissionRow) => ({
  id: row.id,
  userId: row.userId,
  idType: row.idType,
  idNumberLast4: row.idNumberLast4,
  status: row.status,
  reason: row.reason,
  submittedAt: iso(row.submittedAt)!,
  reviewedAt: iso(row.reviewedAt),
  reviewedBy: row.reviewedBy,
  photosDeleted: row.photosDeletedAt !== null,
});

/**
 * A decision on the user's pending submission; the status change is audited with who, from and to. With
 * `submissionId` (the one the admin looked at), a different pending submission is refused (409): a user
 * who resubmitted meanwhile is not verified on photos nobody has seen.
 */
export async function reviewKyc(db: Db, adminId: string, userId: string, decision: "verified" | "rejected", reason: string | undefined, submissionId?: string) {
  notAboutThemselves(adminId, userId, "review a KYC submission");
  const current = await latestSubmission(db, userId);
  if (!current || current.status !== "pending") throw new ApiError("not_found", "This user has no KYC submission waiting for review.");
  if (submissionId !== undefined && submissionId !== current.id) throw new ApiError("conflict", "The submission waiting for review is not the one named: the user submitted again. Review the new one.");
  const now = Date.now();
  // The decision, the user's status and its audit entry commit only while the submission is still pending.
  const [, updated] = await applyStatements(db, [
    checkGuards(db, [guard("kyc_not_pending", sql`not exists (select 1 from ${kycSubmissions} where ${kycSubmissions.id} = ${current.id} and ${kycSubmissions.status} = 'pending')`)]),
    db
      .update(kycSubmissions)
      .set({ status: decision, reason: reason ?? null, reviewedAt: now, reviewedBy: adminId })
      .where(and(eq(kycSubmissions.id, current.id), eq(kycSubmissions.status, "pending")))
      .returning(),
    // A verified re-check lifts fraud level 3's hold (SPEC §12: "additional verification (KYC re-check) before money out").
    db.update(users).set({ kycStatus: decision, ...(decision === "verified" ? { verificationRequired: false } : {}), updatedAt: now }).where(eq(users.id, userId)),
    db.insert(auditLog).values({ actorId: adminId, action: "kyc.status_changed", subjectType: "user", subjectId: userId, details: { from: "pending", to: decision, submissionId: current.id, reason: reason ?? null }, createdAt: now }),
  ]) as [unknown, KycSubmissionRow[]];
  return queueItemView(updated[0]!);
}

/** The decrypted photo for an admin; every view is written to the audit log first. */
export async function viewPhoto(db: Db, bucket: R2Bucket, env: Env, adminId: string, userId: string, kind: "id" | "selfie") {
  notAboutThemselves(adminId, userId, "view KYC photos");
  const current = await latestSubmission(db, userId);
  const objectKey = kind === "id" ? current?.idPhotoKey : current?.selfiePhotoKey;
  if (!current || !objectKey || current.photosDeletedAt !== null) throw new ApiError("not_found", "No stored photo.");
  const object = await bucket.get(objectKey);
  if (!object) throw new ApiError("not_found", "No stored photo.");
  await db.insert(auditLog).values({ actorId: adminId, action: "kyc.photo_viewed", subjectType: "user", subjectId: userId, details: { kind, submissionId: current.id }, createdAt: Date.now() });
  const bytes = await open(await keyRing(env), new Uint8Array(await object.arrayBuffer()), objectKey);
  return { bytes, contentType: kind === "id" ? current.idPhotoType : current.selfiePhotoType };
}

/** Scheduled: photos of rejected submissions are deleted KYC_REJECTED_RETENTION_DAYS after the rejection. */
export async function purgeRejectedPhotos(db: Db, bucket: R2Bucket, config: Config, now: number): Promise<number> {
  const cutoff = now - config.KYC_REJECTED_RETENTION_DAYS * 86_400_000;
  const due = await db
    .select()
    .from(kycSubmissions)
    .where(and(eq(kycSubmissions.status, "rejected"), lt(kycSubmissions.reviewedAt, cutoff), isNull(kycSubmissions.photosDeletedAt)))
    .limit(200);
  for (const row of due) {
    await bucket.delete([row.idPhotoKey, row.selfiePhotoKey]);
    await db.batch([
      db.update(kycSubmissions).set({ photosDeletedAt: now }).where(eq(kycSubmissions.id, row.id)),
      db.insert(auditLog).values({ actorId: "system:kyc-retention", action: "kyc.photos_deleted", subjectType: "user", subjectId: row.userId, details: { submissionId: row.id }, createdAt: now }),
    ]);
  }
  return due.length;
}
