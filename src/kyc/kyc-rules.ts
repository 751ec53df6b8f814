/** KYC input rules (SPEC §5), pure. */

export type IdType = "ktp" | "passport" | "sim";

/** KTP numbers (NIK) are 16 digits, SIM 12–16 digits, passports 6–12 letters and digits. */
export function validIdNumber(idType: IdType, value: string): boolean {
  if (idType === "ktp") return /^\d{16}$/.test(value);
  if (idType === "sim") return /^\d{12,16}$/.test(value);
  return /^[A-Za-z0-9]{6,12}$/.test(value);
}

/** The image type from its first bytes, never from the declared content type or file name. */
export function sniffImage(bytes: Uint8Array): "image/jpeg" | "image/png" | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return "image/png";
  return null;
}
