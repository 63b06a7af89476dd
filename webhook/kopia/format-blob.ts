// The format blob `kopia.repository`: a JSON envelope whose `encryptedBlockFormat` holds the
// repository configuration (master key, algorithms, index layout) sealed with a key derived from
// the password. Everything this reader accepts is on an explicit allow-list; the rest is an error.

import { createDecipheriv, createHash, hkdfSync, pbkdf2, scrypt } from "node:crypto";
import { promisify } from "node:util";
import { type EncryptionAlgorithm, isSupportedEncryption } from "./content-cipher.ts";
import { eccAlgorithm } from "./ecc-reed-solomon.ts";
import { RepositoryError } from "./repository-error.ts";

export const formatBlobId = "kopia.repository";

export type FormatEnvelope = {
  uniqueId: Buffer;
  keyAlgorithm: KeyDerivationAlgorithm;
  encryptedConfig: Buffer;
  buildVersion: string;
};

export const supportedKeyDerivationAlgorithms = ["scrypt-65536-8-1", "pbkdf2-sha256-600000"] as const;
export type KeyDerivationAlgorithm = (typeof supportedKeyDerivationAlgorithms)[number];

export type EpochParameters = { enabled: boolean };

export type RepositoryConfig = {
  formatVersion: 1 | 2 | 3;
  encryption: EncryptionAlgorithm;
  masterKey: Buffer;
  indexVersion: number;
  epochParameters: EpochParameters;
  /** Set when kopia's REED-SOLOMON-CRC32 error correction wraps every encrypted blob and content. */
  eccOverheadPercent?: number;
};

const supportedRequiredFeatures = new Set(["index-v1", "index-v2"]);

function decodeBase64Field(record: Record<string, unknown>, field: string, where: string): Buffer {
  const value = record[field];
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new RepositoryError("corrupt", `${where}: field ${field} is not base64`);
  }
  return Buffer.from(value, "base64");
}

export function parseFormatEnvelope(bytes: Buffer): FormatEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new RepositoryError("corrupt", "the format blob kopia.repository is not JSON", { cause: error });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new RepositoryError("corrupt", "the format blob kopia.repository is not a JSON object");
  }
  const record = raw as Record<string, unknown>;
  if (record.encryption !== "AES256_GCM") {
    throw new RepositoryError("unsupported", `the format blob uses encryption ${JSON.stringify(record.encryption)}; only AES256_GCM is supported`);
  }
  const keyAlgorithm = record.keyAlgo;
  if (!supportedKeyDerivationAlgorithms.includes(keyAlgorithm as KeyDerivationAlgorithm)) {
    throw new RepositoryError(
      "unsupported",
      `the format blob uses key derivation ${JSON.stringify(keyAlgorithm)}; supported: ${supportedKeyDerivationAlgorithms.join(", ")}`,
    );
  }
  const uniqueId = decodeBase64Field(record, "uniqueID", "format blob");
  if (uniqueId.length < 16) throw new RepositoryError("corrupt", "the format blob uniqueID is shorter than 16 bytes");
  if (record.encryptedBlockFormat === undefined) {
    throw new RepositoryError("unsupported", "the format blob has no encryptedBlockFormat (unencrypted repositories are not supported)");
  }
  return {
    uniqueId,
    keyAlgorithm: keyAlgorithm as KeyDerivationAlgorithm,
    encryptedConfig: decodeBase64Field(record, "encryptedBlockFormat", "format blob"),
    buildVersion: typeof record.buildVersion === "string" ? record.buildVersion : "",
  };
}

const scryptAsync = promisify(scrypt) as (password: Buffer, salt: Buffer, keyLength: number, options: object) => Promise<Buffer>;
const pbkdf2Async = promisify(pbkdf2);

/** The password-derived format key: slow on purpose (≈0.5 s), so callers cache it. */
export async function deriveFormatKey(password: string, envelope: FormatEnvelope): Promise<Buffer> {
  const passwordBytes = Buffer.from(password, "utf8");
  switch (envelope.keyAlgorithm) {
    case "scrypt-65536-8-1":
      return scryptAsync(passwordBytes, envelope.uniqueId, 32, { N: 65536, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
    case "pbkdf2-sha256-600000":
      return pbkdf2Async(passwordBytes, envelope.uniqueId, 600000, 32, "sha256");
  }
}

/** A cache key for a derived format key that does not keep the password itself in memory. */
export function formatKeyCacheKey(password: string, envelope: FormatEnvelope): string {
  return createHash("sha256").update(envelope.keyAlgorithm).update("\0").update(envelope.uniqueId).update("\0").update(password, "utf8").digest("hex");
}

/** Opens `encryptedBlockFormat`; a failed tag means the password is wrong. Returns the JSON text. */
export function decryptConfigJson(envelope: FormatEnvelope, formatKey: Buffer): string {
  const key = Buffer.from(hkdfSync("sha256", formatKey, envelope.uniqueId, "AES", 32));
  const authData = Buffer.from(hkdfSync("sha256", formatKey, envelope.uniqueId, "CHECKSUM", 32));
  const sealed = envelope.encryptedConfig;
  if (sealed.length < 12 + 16) throw new RepositoryError("corrupt", "the format blob's encrypted configuration is truncated");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
    decipher.setAAD(authData);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString("utf8");
  } catch (error) {
    throw new RepositoryError("wrong-password", "the repository password is wrong (the format blob does not authenticate with it)", { cause: error });
  }
}

/** Validates the decrypted configuration against the allow-lists. */
export function parseRepositoryConfig(json: string): RepositoryConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new RepositoryError("corrupt", "the decrypted repository configuration is not JSON", { cause: error });
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (typeof format !== "object" || format === null) throw new RepositoryError("corrupt", "the repository configuration has no format object");
  const f = format as Record<string, unknown>;

  if (f.upgradeLock !== undefined && f.upgradeLock !== null) {
    throw new RepositoryError("busy", "the repository is locked for a format upgrade; it cannot be read until the upgrade finishes");
  }
  const required = f.requiredFeatures ?? [];
  if (!Array.isArray(required)) throw new RepositoryError("corrupt", "requiredFeatures is not a list");
  for (const item of required as { feature?: unknown; ifNotUnderstood?: { warn?: unknown } }[]) {
    const name = item?.feature;
    if (typeof name !== "string") throw new RepositoryError("corrupt", "a required feature has no name");
    // kopia refuses to open a repository with a feature it does not know unless that feature
    // says a warning is enough; a read-only catalog takes the strict reading of both cases.
    if (!supportedRequiredFeatures.has(name))
      throw new RepositoryError("unsupported", `the repository requires feature ${JSON.stringify(name)}, which this reader does not support`);
  }

  const version = f.version ?? 1;
  if (version !== 1 && version !== 2 && version !== 3) {
    throw new RepositoryError("unsupported", `repository format version ${JSON.stringify(version)} is not supported (supported: 1, 2, 3)`);
  }
  if (!isSupportedEncryption(f.encryption)) {
    throw new RepositoryError("unsupported", `content encryption ${JSON.stringify(f.encryption)} is not supported`);
  }
  // kopia turns error correction on only when both the algorithm and a positive overhead are set.
  const eccOn = typeof f.ecc === "string" && f.ecc !== "" && typeof f.eccOverheadPercent === "number" && f.eccOverheadPercent > 0;
  if (eccOn && f.ecc !== eccAlgorithm) {
    throw new RepositoryError("unsupported", `error correction ${JSON.stringify(f.ecc)} is not supported (supported: ${eccAlgorithm})`);
  }
  if (eccOn && (!Number.isInteger(f.eccOverheadPercent) || (f.eccOverheadPercent as number) > 100)) {
    throw new RepositoryError("unsupported", `error correction overhead ${JSON.stringify(f.eccOverheadPercent)}% is not supported (1 to 100)`);
  }
  const indexVersion = f.indexVersion ?? 0;
  if (indexVersion !== 0 && indexVersion !== 1 && indexVersion !== 2) {
    throw new RepositoryError("unsupported", `index version ${JSON.stringify(indexVersion)} is not supported (supported: 1, 2)`);
  }
  const masterKey = decodeBase64Field(f, "masterKey", "repository configuration");
  if (masterKey.length < 16) throw new RepositoryError("corrupt", "the repository master key is missing or too short");
  const epoch = f.epochParameters as { Enabled?: unknown } | undefined;
  if (epoch !== undefined && (typeof epoch !== "object" || epoch === null)) {
    throw new RepositoryError("corrupt", "epochParameters is not an object");
  }
  return {
    formatVersion: version,
    encryption: f.encryption,
    masterKey,
    indexVersion: indexVersion as number,
    epochParameters: { enabled: epoch?.Enabled === true },
    ...(eccOn ? { eccOverheadPercent: f.eccOverheadPercent as number } : {}),
  };
}
