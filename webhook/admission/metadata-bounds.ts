// Kubernetes' own limits on an object's labels and annotations, checked on the raw review before
// the handlers validate it. The API server enforces these in its validation, which runs after
// mutating admission; so the mutator can be sent an object that breaks them, and schema
// validation of such an object is the expensive part (530k labels took 8-10 s of event loop).
// Only sizes and counts are checked here, never syntax: that stays the API server's business.

/** The largest label name (the part after the optional prefix), as Kubernetes defines it. */
export const maxLabelNameLength = 63;
/** The largest label key prefix, a DNS subdomain. */
export const maxLabelPrefixLength = 253;
export const maxLabelValueLength = 63;
/** Kubernetes' TotalAnnotationSizeLimitB: keys and values together. */
export const maxAnnotationsTotalBytes = 256 * 1024;
/**
 * Kubernetes sets no count, only the object size; ours is far above any real PVC (a few dozen
 * labels at most) and keeps the map's validation cost small.
 */
export const maxMetadataEntries = 1_000;

export type MetadataBoundsResult = { ok: true } | { ok: false; message: string };

export function checkMetadataBounds(review: unknown): MetadataBoundsResult {
  const request = recordAt(review, "request");
  for (const field of ["object", "oldObject"] as const) {
    const metadata = recordAt(recordAt(request, field), "metadata");
    if (metadata === undefined) continue;
    const labels = checkLabels(recordAt(metadata, "labels"));
    if (!labels.ok) return labels;
    const annotations = checkAnnotations(recordAt(metadata, "annotations"));
    if (!annotations.ok) return annotations;
  }
  return { ok: true };
}

function checkLabels(labels: Record<string, unknown> | undefined): MetadataBoundsResult {
  if (labels === undefined) return { ok: true };
  let count = 0;
  for (const key in labels) {
    count += 1;
    if (count > maxMetadataEntries) return tooMany("labels");
    if (!isKeyWithinLimits(key)) return badKey("label", key);
    const value = labels[key];
    if (typeof value === "string" && value.length > maxLabelValueLength) {
      return { ok: false, message: `The value of label ${quoteShort(key)} is longer than Kubernetes' limit of ${maxLabelValueLength} characters.` };
    }
  }
  return { ok: true };
}

function checkAnnotations(annotations: Record<string, unknown> | undefined): MetadataBoundsResult {
  if (annotations === undefined) return { ok: true };
  let count = 0;
  let totalBytes = 0;
  for (const key in annotations) {
    count += 1;
    if (count > maxMetadataEntries) return tooMany("annotations");
    if (!isKeyWithinLimits(key)) return badKey("annotation", key);
    const value = annotations[key];
    // Kubernetes counts the characters of keys and values (Go string length, i.e. UTF-8 bytes);
    // UTF-16 length is never larger than that, so this never rejects what Kubernetes accepts.
    totalBytes += key.length + (typeof value === "string" ? value.length : 0);
    if (totalBytes > maxAnnotationsTotalBytes) {
      return { ok: false, message: `The annotations total more than Kubernetes' limit of ${maxAnnotationsTotalBytes} bytes.` };
    }
  }
  return { ok: true };
}

function isKeyWithinLimits(key: string): boolean {
  const slash = key.indexOf("/");
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefixLength = slash === -1 ? 0 : slash;
  return name.length <= maxLabelNameLength && prefixLength <= maxLabelPrefixLength;
}

function tooMany(what: string): MetadataBoundsResult {
  return { ok: false, message: `The PVC has more than ${maxMetadataEntries} ${what}; pvc-guardian does not evaluate objects that large.` };
}

function badKey(what: string, key: string): MetadataBoundsResult {
  return {
    ok: false,
    message: `The ${what} key ${quoteShort(key)} is longer than Kubernetes allows (a name of at most ${maxLabelNameLength} characters after a prefix of at most ${maxLabelPrefixLength}).`,
  };
}

/** A key for a message: JSON-quoted so control characters stay visible, and cut short. */
function quoteShort(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
}

function recordAt(value: unknown, field: string): Record<string, unknown> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const inner = (value as Record<string, unknown>)[field];
  return typeof inner === "object" && inner !== null && !Array.isArray(inner) ? (inner as Record<string, unknown>) : undefined;
}
