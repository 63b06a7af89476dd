// Content and whole-blob decryption. Kopia derives one key per item from the repository master
// key and the item's IV (the tail of its hash), then opens an AEAD frame:
// nonce(12) ‖ ciphertext ‖ tag(16), with the IV as associated data.

import { createDecipheriv, createHmac, hkdfSync } from "node:crypto";
import { RepositoryError } from "./repository-error.ts";

export const supportedEncryptionAlgorithms = ["AES256-GCM-HMAC-SHA256", "CHACHA20-POLY1305-HMAC-SHA256"] as const;
export type EncryptionAlgorithm = (typeof supportedEncryptionAlgorithms)[number];

export function isSupportedEncryption(name: unknown): name is EncryptionAlgorithm {
  return supportedEncryptionAlgorithms.includes(name as EncryptionAlgorithm);
}

const nonceBytes = 12;
const tagBytes = 16;

export type ContentCipher = {
  /** Opens one AEAD frame; a failed tag is a `corrupt` RepositoryError naming `what`. */
  decrypt(iv: Buffer, frame: Buffer, what: string): Buffer;
};

export function createContentCipher(algorithm: EncryptionAlgorithm, masterKey: Buffer): ContentCipher {
  // The purpose string is HKDF's salt and the info is empty: that is what kopia does.
  const keyDerivationSecret = Buffer.from(hkdfSync("sha256", masterKey, Buffer.from("encryption"), Buffer.alloc(0), 32));
  const cipherName = algorithm === "AES256-GCM-HMAC-SHA256" ? "aes-256-gcm" : "chacha20-poly1305";
  return {
    decrypt(iv, frame, what) {
      if (frame.length < nonceBytes + tagBytes) {
        throw new RepositoryError("corrupt", `${what} is too short to be encrypted (${frame.length} bytes)`);
      }
      const key = createHmac("sha256", keyDerivationSecret).update(iv).digest();
      const nonce = frame.subarray(0, nonceBytes);
      const tag = frame.subarray(frame.length - tagBytes);
      const ciphertext = frame.subarray(nonceBytes, frame.length - tagBytes);
      try {
        const decipher =
          cipherName === "aes-256-gcm"
            ? createDecipheriv(cipherName, key, nonce, { authTagLength: tagBytes })
            : createDecipheriv(cipherName, key, nonce, { authTagLength: tagBytes });
        decipher.setAAD(iv, { plaintextLength: ciphertext.length });
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch (error) {
        throw new RepositoryError("corrupt", `${what} fails authentication (corrupted or altered)`, { cause: error });
      }
    },
  };
}

const hexPattern = /^[0-9a-f]+$/;

/**
 * The IV of a whole blob (index blobs, compaction logs): the 32 hex characters right before the
 * first `-` of its ID, or its last 32 characters when there is no `-`.
 */
export function blobIv(blobId: string): Buffer {
  const dash = blobId.indexOf("-");
  const head = dash >= 0 ? blobId.slice(0, dash) : blobId;
  const hex = head.slice(-32);
  if (hex.length !== 32 || !hexPattern.test(hex)) throw new RepositoryError("corrupt", `blob ID ${blobId} does not end in a hash`);
  return Buffer.from(hex, "hex");
}

/** The IV of a content inside a pack: its hash, that is its ID without the prefix letter. */
export function contentIv(contentId: string): Buffer {
  const hex = contentId.length % 2 === 1 ? contentId.slice(1) : contentId;
  if (!hexPattern.test(hex)) throw new RepositoryError("corrupt", `content ID ${contentId} is not a hash`);
  return Buffer.from(hex, "hex").subarray(-16);
}
