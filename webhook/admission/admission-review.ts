import { z } from "zod";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";
import { encodePatch, type JsonPatchOperation } from "./json-patch.ts";
import { checkMetadataBounds } from "./metadata-bounds.ts";

// AdmissionReview admission.k8s.io/v1, in and out, in three steps as controller-runtime's
// admission package has them: decodeReview turns a parsed body into a typed PVC request (or the
// 400 answer it deserves), a handler decides on that request and returns allowed / denied /
// patched without knowing the uid, and completeReview fills in the uid and apiVersion once.

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });

const admissionRequestSchema = z.object({
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

const admissionReviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal("AdmissionReview"),
  request: admissionRequestSchema,
});

type AdmissionRequest = z.output<typeof admissionRequestSchema>;

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
const pvcObjectSchema = z.looseObject({
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

/** A review of a PersistentVolumeClaim, read and checked: what a handler decides on. */
export type PvcReviewRequest = {
  uid: string;
  operation: AdmissionRequest["operation"];
  name?: string;
  namespace?: string;
  dryRun: boolean;
  /** The object under review; `{}` for a DELETE that carries none. */
  pvc: PersistentVolumeClaim;
};

/**
 * A handler's answer, before the uid is filled in. `reason` is a short word for the one log line
 * per review: fresh, restore, unknown, unlabelled, malformed, …
 */
export type ReviewResult =
  | { kind: "allowed"; warnings: readonly string[]; reason: string }
  | { kind: "patched"; patch: readonly JsonPatchOperation[]; warnings: readonly string[]; reason: string }
  | { kind: "denied"; status: AdmissionStatus; warnings: readonly string[]; reason: string };

export type ReviewHandler = (request: PvcReviewRequest, signal: AbortSignal) => Promise<ReviewResult>;

/** Whom an answer goes to: the uid and apiVersion it must echo, as the API server requires. */
export type ReviewReply = { uid: string; apiVersion: string; operation?: string };

/** The reply to a body that names no review: the API server then applies the failurePolicy. */
export const anonymousReply: ReviewReply = { uid: "", apiVersion: ADMISSION_API_VERSION };

export function allowed(reason: string, warnings: readonly string[] = []): ReviewResult {
  return { kind: "allowed", warnings, reason };
}

export function patched(reason: string, patch: readonly JsonPatchOperation[], warnings: readonly string[] = []): ReviewResult {
  return patch.length === 0 ? allowed(reason, warnings) : { kind: "patched", patch, warnings, reason };
}

const statusReasons: Record<number, string> = {
  400: "BadRequest",
  403: "Forbidden",
  413: "RequestEntityTooLarge",
  429: "TooManyRequests",
};

export function denied(reason: string, message: string, warnings: readonly string[] = [], code = 403): ReviewResult {
  return { kind: "denied", status: { code, message, reason: statusReasons[code] ?? "InternalError" }, warnings, reason };
}

/** The AdmissionReview that carries `result` back to whoever sent the review `reply` names. */
export function completeReview(reply: ReviewReply, result: ReviewResult): AdmissionReviewOut {
  const warnings = result.warnings.length > 0 ? { warnings: [...result.warnings] } : {};
  const response: AdmissionReviewOut["response"] =
    result.kind === "denied"
      ? { uid: reply.uid, allowed: false, status: result.status, ...warnings }
      : result.kind === "patched"
        ? { uid: reply.uid, allowed: true, patchType: "JSONPatch", patch: encodePatch(result.patch), ...warnings }
        : { uid: reply.uid, allowed: true, ...warnings };
  return { apiVersion: reply.apiVersion, kind: "AdmissionReview", response };
}

/** Why a body cannot be decided on, as a 400 answer; `isMetadataTooLarge` marks labels or annotations over Kubernetes' limits. */
export type DecodeFailure = { ok: false; reply: ReviewReply; result: ReviewResult; isMetadataTooLarge: boolean };
export type DecodedReview = { ok: true; request: PvcReviewRequest; reply: ReviewReply } | DecodeFailure;

/**
 * Whatever uid, apiVersion and operation a body carries, even one that is not a valid review, so
 * that the 400 answer still reaches the request it refuses.
 */
export function replyTo(body: unknown): ReviewReply {
  const record = isRecord(body) ? body : {};
  const request = isRecord(record["request"]) ? record["request"] : {};
  return {
    uid: typeof request["uid"] === "string" ? request["uid"] : "",
    apiVersion: typeof record["apiVersion"] === "string" ? record["apiVersion"] : ADMISSION_API_VERSION,
    ...(typeof request["operation"] === "string" ? { operation: request["operation"] } : {}),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function issuesText(issues: readonly { path: readonly PropertyKey[]; message: string }[], prefix: string): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${[prefix, ...issue.path.map(String)].filter((part) => part !== "").join(".") || "(body)"}: ${issue.message}`)
    .join("; ");
}

function malformed(body: unknown, message: string, reason = "malformed", isMetadataTooLarge = false): DecodeFailure {
  return { ok: false, reply: replyTo(body), result: denied(reason, message, [], 400), isMetadataTooLarge };
}

/**
 * Reads a parsed JSON body as an AdmissionReview for a PersistentVolumeClaim, cheapest check
 * first: Kubernetes' size limits on labels and annotations (validating a huge map is the costly
 * part), the review's shape, the kind, and the fields of the PVC the decisions read.
 */
export function decodeReview(body: unknown): DecodedReview {
  const bounds = checkMetadataBounds(body);
  if (!bounds.ok) return malformed(body, bounds.message, "MetadataTooLarge", true);
  const parsed = admissionReviewSchema.safeParse(body);
  if (!parsed.success) return malformed(body, `The body is not an AdmissionReview ${ADMISSION_API_VERSION}: ${issuesText(parsed.error.issues, "")}.`);
  const { request } = parsed.data;
  if (request.kind.kind !== "PersistentVolumeClaim" || request.kind.group !== "") {
    const gvk = `${request.kind.group || "core"}/${request.kind.version} ${request.kind.kind}`;
    return malformed(body, `pvc-guardian only reviews PersistentVolumeClaims, not ${gvk}; check the webhook's rules.`, "unknown-kind");
  }
  if (request.operation === "CREATE" && !request.object) return malformed(body, "The CREATE request carries no object to review.");
  if (request.object) {
    const object = pvcObjectSchema.safeParse(request.object);
    if (!object.success) return malformed(body, `The object is not a PersistentVolumeClaim: ${issuesText(object.error.issues, "object")}.`);
  }
  const reply: ReviewReply = { uid: request.uid, apiVersion: parsed.data.apiVersion, operation: request.operation };
  return {
    ok: true,
    reply,
    request: {
      uid: request.uid,
      operation: request.operation,
      ...(request.name ? { name: request.name } : {}),
      ...(request.namespace ? { namespace: request.namespace } : {}),
      dryRun: request.dryRun === true,
      // Checked above for every field the decisions read; the rest passes through unread.
      pvc: (request.object ?? {}) as PersistentVolumeClaim,
    },
  };
}
