import { createHash } from "node:crypto";

// Names of the objects generated for a PVC. RS and RD share one name on purpose: VolSync derives
// the Kopia identity from it, so the restore finds exactly the snapshots the backup wrote.

/** DNS-1123 label length: VolSync derives Job and PVC names from its CRs, so stay within it. */
export const MAX_VOLSYNC_OBJECT_NAME = 63;
/** DNS-1123 subdomain length, the limit for a Secret's name. */
export const MAX_SECRET_NAME = 253;
export const MAX_LABEL_VALUE = 63;

const HASH_SUFFIX_HEX = 10;
const LABEL_VALUE_PATTERN = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Returns `name` when it fits, otherwise a prefix of it plus a hash of the whole name, so two
 * long names that share a prefix still get different, stable results.
 */
export function shortenName(name: string, maxLength: number): string {
  if (name.length <= maxLength) return name;
  const suffix = sha256Hex(name).slice(0, HASH_SUFFIX_HEX);
  const prefix = name.slice(0, maxLength - HASH_SUFFIX_HEX - 1).replace(/[-.]+$/, "");
  return `${prefix}-${suffix}`;
}

export function backupObjectName(pvcName: string): string {
  return shortenName(`${pvcName}-backup`, MAX_VOLSYNC_OBJECT_NAME);
}

export function credentialsSecretName(pvcName: string): string {
  return shortenName(`volsync-${pvcName}`, MAX_SECRET_NAME);
}

/** A label value naming the PVC: the name itself, or `pvc-<24 hex>` when it cannot be one. */
export function pvcLabelValue(pvcName: string): string {
  if (pvcName.length <= MAX_LABEL_VALUE && LABEL_VALUE_PATTERN.test(pvcName)) return pvcName;
  return `pvc-${sha256Hex(pvcName).slice(0, 24)}`;
}

export type GeneratedNames = {
  replicationSource: string;
  replicationDestination: string;
  secret: string;
  pvcLabelValue: string;
  /** Set when the label value is a hash, so the full name is recoverable from an annotation. */
  pvcNameAnnotation?: string;
};

export function generatedNames(pvcName: string): GeneratedNames {
  const labelValue = pvcLabelValue(pvcName);
  const backup = backupObjectName(pvcName);
  return {
    replicationSource: backup,
    replicationDestination: backup,
    secret: credentialsSecretName(pvcName),
    pvcLabelValue: labelValue,
    ...(labelValue === pvcName ? {} : { pvcNameAnnotation: pvcName }),
  };
}

/** A stable number in [0, modulus) for a string: spreads per-PVC schedules across the hour. */
export function stableBucket(text: string, modulus: number): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0) % modulus;
}
