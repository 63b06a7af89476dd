import { z } from "zod";
import { encodePatch, type JsonPatchOperation } from "./json-patch.ts";

// AdmissionReview admission.k8s.io/v1, in and out. Results are values: allowed, denied, patched,
// each with warnings. Every answer echoes the request's uid and apiVersion, as the API server
// requires.

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });

export const admissionRequestSchema = z.object({
  uid: z.string().min(1),
  kind: groupVersionKind,
  resource: z.object({ group: z.string(), version: z.string(), resource: z.string() }).optional(),
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
  object: z.record(z.string(), z.unknown()).nullable().optional(),
  oldObject: z.record(z.string(), z.unknown()).nullable().optional(),
  dryRun: z.boolean().optional(),
  userInfo: z.object({ username: z.string().optional() }).passthrough().optional(),
});

export const admissionReviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal("AdmissionReview"),
  request: admissionRequestSchema,
});

export type AdmissionRequest = z.output<typeof admissionRequestSchema>;

// The fields of a PersistentVolumeClaim that the decisions read, with the types the Kubernetes API
// gives them. The API server never sends anything else, so a mismatch is a malformed request
// (400), not something for the domain to trip over. Everything else passes through untouched.
const stringMap = z.record(z.string(), z.string());
const typedObjectReference = z.looseObject({
  apiGroup: z.string().optional(),
  kind: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
});
export const pvcObjectSchema = z.looseObject({
  metadata: z
    .looseObject({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: stringMap.optional(),
      annotations: stringMap.optional(),
    })
    .optional(),
  spec: z
    .looseObject({
      accessModes: z.array(z.string()).optional(),
      resources: z.looseObject({ requests: z.record(z.string(), z.union([z.string(), z.number()])).optional() }).optional(),
      dataSource: typedObjectReference.optional(),
      dataSourceRef: typedObjectReference.optional(),
    })
    .optional(),
});

export type AdmissionStatus = { code: number; message: string; reason?: string };

export type AdmissionReviewOut = {
  apiVersion: string;
  kind: "AdmissionReview";
  response: {
    uid: string;
    allowed: boolean;
    status?: AdmissionStatus;
    patchType?: "JSONPatch";
    patch?: string;
    warnings?: string[];
  };
};

/** What a handler answered, and why, for the one log line and the metrics. */
export type ReviewOutcome = {
  review: AdmissionReviewOut;
  operation?: string;
  /** A short word for logs: fresh, restore, unknown, unlabelled, malformed, … */
  reason: string;
};

export type ReviewHandler = (body: unknown, signal: AbortSignal) => Promise<ReviewOutcome>;

function reviewOut(uid: string, response: Omit<AdmissionReviewOut["response"], "uid">): AdmissionReviewOut {
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response: { uid, ...response } };
}

const withWarnings = (warnings: readonly string[]) => (warnings.length > 0 ? { warnings: [...warnings] } : {});

export function allowed(uid: string, warnings: readonly string[] = []): AdmissionReviewOut {
  return reviewOut(uid, { allowed: true, ...withWarnings(warnings) });
}

export function patched(uid: string, operations: readonly JsonPatchOperation[], warnings: readonly string[] = []): AdmissionReviewOut {
  if (operations.length === 0) return allowed(uid, warnings);
  return reviewOut(uid, { allowed: true, patchType: "JSONPatch", patch: encodePatch(operations), ...withWarnings(warnings) });
}

export function denied(uid: string, message: string, warnings: readonly string[] = [], code = 403): AdmissionReviewOut {
  return reviewOut(uid, {
    allowed: false,
    status: { code, message, reason: code === 403 ? "Forbidden" : code === 400 ? "BadRequest" : "InternalError" },
    ...withWarnings(warnings),
  });
}

/**
 * The answer to a request that cannot be read as an AdmissionReview. It still is one, with
 * code 400 (or 413 for an oversized body), echoing whatever uid the body carried.
 */
export function rejectMalformedReview(code: 400 | 413 | 415, message: string, raw?: unknown): AdmissionReviewOut {
  const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const request = typeof record["request"] === "object" && record["request"] !== null ? (record["request"] as Record<string, unknown>) : {};
  const uid = typeof request["uid"] === "string" ? request["uid"] : "";
  const apiVersion = typeof record["apiVersion"] === "string" ? record["apiVersion"] : ADMISSION_API_VERSION;
  return {
    apiVersion,
    kind: "AdmissionReview",
    response: { uid, allowed: false, status: { code, message, reason: code === 413 ? "RequestEntityTooLarge" : "BadRequest" } },
  };
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; outcome: ReviewOutcome };

/** Reads a parsed JSON body as an AdmissionReview for a PersistentVolumeClaim. */
export function parsePvcReview(body: unknown): ParsedReview {
  const parsed = admissionReviewSchema.safeParse(body);
  if (!parsed.success) {
    const details = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`)
      .join("; ");
    return {
      ok: false,
      outcome: { review: rejectMalformedReview(400, `The body is not an AdmissionReview ${ADMISSION_API_VERSION}: ${details}.`, body), reason: "malformed" },
    };
  }
  const { request } = parsed.data;
  if (request.kind.kind !== "PersistentVolumeClaim" || request.kind.group !== "") {
    const gvk = `${request.kind.group || "core"}/${request.kind.version} ${request.kind.kind}`;
    return {
      ok: false,
      outcome: {
        review: rejectMalformedReview(400, `pvc-guardian only reviews PersistentVolumeClaims, not ${gvk}; check the webhook's rules.`, body),
        operation: request.operation,
        reason: "unknown-kind",
      },
    };
  }
  return { ok: true, request };
}
