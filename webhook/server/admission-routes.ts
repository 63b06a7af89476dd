// The admission transport: raw HTTP in, an AdmissionReview out, always with HTTP 200. A plain-text
// error status would hand the decision to the webhook's failurePolicy instead of to us, so every
// failure here (wrong content type, unreadable or oversized body, a handler that throws or misses
// its deadline) still becomes an AdmissionReview. The route reads the body, has admission/ decode
// it, gives the handler the review's one deadline, and has admission/ complete the answer; what
// an AdmissionReview means is the protocol layer's business.

import type { HttpBindings } from "@hono/node-server";
import { Hono, type Context } from "hono";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import {
  allowed,
  anonymousReply,
  completeReview,
  decodeReview,
  denied,
  type AdmissionReviewOut,
  type PvcReviewRequest,
  type ReviewHandler,
  type ReviewResult,
} from "../admission/admission-review.ts";
import { errorMessage } from "../domain/error-message.ts";
import { createAdmissionGate, type AdmissionGate, type AdmissionTicket } from "./admission-gate.ts";
import { installErrorAnswers } from "./app-errors.ts";
import { checkJsonShape, type JsonShapeLimits } from "./json-shape.ts";
import type { Logger } from "../domain/logger.ts";
import type { AdmissionMetrics, AdmissionOutcome, AdmissionWebhook } from "./metrics.ts";
import { mutatePath, validatePath } from "./route-paths.ts";
export { mutatePath, validatePath };

/** What the route answers when its handler throws, misses the deadline, or the server sheds load. */
export type HandlerErrorPolicy = "deny" | "allow";

export type AdmissionRoutesDeps = {
  mutate: ReviewHandler;
  validate: ReviewHandler;
  /** The limits bound the work of one review and of all reviews together; config.ts explains each. */
  maxBodyBytes: number;
  /** Body bytes all reviews in progress may hold together, from first byte read to answer. */
  maxInFlightBodyBytes: number;
  /** Reviews in progress at once; one more is answered at once with 429 (see HandlerErrorPolicy). */
  maxConcurrentReviews: number;
  jsonShape: JsonShapeLimits;
  /**
   * Each review's one deadline: the handler's signal aborts then, and a handler that has not
   * answered by the next turn gets the route's error policy. Without it, no deadline.
   */
  deadlineMs?: number;
  /**
   * Only callers whose TLS client certificate the listener verified may post reviews (the API
   * server, when it is configured to present one). Others get a 403 review without their body
   * being read.
   */
  requireClientCertificate: boolean;
  log: Logger;
  metrics: AdmissionMetrics;
};

export type AdmissionRoute = {
  webhook: AdmissionWebhook;
  handler: ReviewHandler;
  onHandlerError: HandlerErrorPolicy;
  maxBodyBytes: number;
  gate: AdmissionGate;
  jsonShape: JsonShapeLimits;
  deadlineMs?: number;
  requireClientCertificate: boolean;
  log: Logger;
  metrics: AdmissionMetrics;
  rememberUid?: (request: Request, uid: string) => void;
};

/** What the route answered, and why, for the one log line and the metrics. */
type RouteOutcome = { review: AdmissionReviewOut; operation?: string | undefined; reason: string };

export function createAdmissionRoutes(deps: AdmissionRoutesDeps): Hono {
  const gate = createAdmissionGate({
    maxConcurrentReviews: deps.maxConcurrentReviews,
    // Never below one whole body, or the largest allowed review could never be read.
    maxInFlightBodyBytes: Math.max(deps.maxInFlightBodyBytes, deps.maxBodyBytes),
  });
  const shared = {
    maxBodyBytes: deps.maxBodyBytes,
    gate,
    jsonShape: deps.jsonShape,
    deadlineMs: deps.deadlineMs,
    requireClientCertificate: deps.requireClientCertificate,
    log: deps.log,
    metrics: deps.metrics,
    // The uid of each review being answered, for the error answer below.
    rememberUid: (request: Request, uid: string) => reviewUids.set(request, uid),
  };
  const reviewUids = new WeakMap<Request, string>();
  const app = new Hono();
  // The mutator fails open: without it a PVC is only created empty, and the validator still gates.
  app.post(mutatePath, createAdmissionHandler({ ...shared, webhook: "mutate", handler: deps.mutate, onHandlerError: "allow" }));
  // The validator is the fail-closed gate.
  app.post(validatePath, createAdmissionHandler({ ...shared, webhook: "validate", handler: deps.validate, onHandlerError: "deny" }));
  // Only reached when the handler's own catch failed (answering itself threw). With a uid the
  // review gets the route's error policy; without one, there is nothing to decide on.
  installErrorAnswers(app, deps.log, (error, c) => {
    const uid = reviewUids.get(c.req.raw) ?? "";
    c.header("Connection", "close");
    if (uid === "") return c.json(completeReview(anonymousReply, denied("malformed", "The admission request could not be read.", [], 400)), 200);
    const policy: HandlerErrorPolicy = c.req.path === mutatePath ? "allow" : "deny";
    return c.json(completeReview({ ...anonymousReply, uid }, fallbackResult(policy, "HandlerError", error)), 200);
  });
  return app;
}

/** Why the route itself produced the answer; logged as `reason` and counted as outcome `error`. */
type RouteFailure =
  | "UnsupportedContentType"
  | "MalformedBody"
  | "BodyTooLarge"
  | "BodyTooComplex"
  | "MetadataTooLarge"
  | "TooManyReviews"
  | "ClientCertificateRequired"
  | "HandlerError"
  | "DeadlineExceeded";

type BodyFailure = { ok: false; code: 400 | 413 | 429; reason: RouteFailure; message: string };
type BodyResult = { ok: true; value: unknown } | BodyFailure;
type BytesResult = { ok: true; bytes: Buffer } | BodyFailure;

const neverAborted = new AbortController().signal;
const textDecoder = new TextDecoder();

export function createAdmissionHandler(route: AdmissionRoute): (c: Context) => Promise<Response> {
  const { webhook, handler, maxBodyBytes, deadlineMs, log, metrics } = route;

  function finish(c: Context, startedMs: number, outcome: RouteOutcome, failure: RouteFailure | undefined, isBodyUnread = false): Response {
    const durationMs = performance.now() - startedMs;
    const response = outcome.review.response;
    const isPatched = response.allowed && response.patch !== undefined;
    const counted: AdmissionOutcome = failure !== undefined ? "error" : isPatched ? "patched" : response.allowed ? "allowed" : "denied";
    // Reporting must never cost the answer: a throwing logger or metric would otherwise turn
    // into a plain-text 500.
    try {
      metrics.observeAdmission(webhook, counted, durationMs / 1000, response.status?.code ?? 200);
      log.info(
        {
          webhook,
          operation: outcome.operation,
          uid: response.uid,
          allowed: response.allowed,
          patched: isPatched,
          code: response.status?.code,
          reason: outcome.reason,
          durationMs: Math.round(durationMs * 1000) / 1000,
        },
        "admission review answered",
      );
    } catch {
      // Nothing better to do with a failing reporter than to keep answering.
    }
    if (isBodyUnread) {
      // The rest of the body is still on the wire; do not reuse this connection for another
      // review.
      c.header("Connection", "close");
    }
    return c.json(outcome.review, 200);
  }

  function refuse(c: Context, startedMs: number, failure: BodyFailure): Response {
    const result = failure.code === 429 ? shedResult(route.onHandlerError, failure.message) : denied(failure.reason, failure.message, [], failure.code);
    const review = completeReview(anonymousReply, result);
    // Anything but a body that was read whole and found wanting leaves bytes on the wire.
    const isBodyUnread = failure.reason === "BodyTooLarge" || failure.reason === "TooManyReviews" || failure.reason === "ClientCertificateRequired";
    return finish(c, startedMs, { review, reason: failure.reason }, failure.reason, isBodyUnread);
  }

  return async function answerAdmission(c: Context): Promise<Response> {
    const startedMs = performance.now();
    // On Node the parsed header object is already there; building a fetch Headers from it for two
    // lookups would be the costliest part of reading the request. app.request() has no bindings.
    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    const nodeHeaders = incoming?.headers;
    if (route.requireClientCertificate && (incoming?.socket as TLSSocket | undefined)?.authorized !== true) {
      const message =
        "Only the Kubernetes API server may send admission reviews here: the request came without a client certificate signed by the configured CA.";
      const review = completeReview(anonymousReply, denied("ClientCertificateRequired", message, [], 403));
      return finish(c, startedMs, { review, reason: "ClientCertificateRequired" }, "ClientCertificateRequired", true);
    }
    const contentType = nodeHeaders !== undefined ? nodeHeaders["content-type"] : c.req.header("content-type");
    if (!isJsonContentType(contentType)) {
      const message = `The admission request must have content type application/json, not ${contentType === undefined ? "none" : JSON.stringify(contentType)}.`;
      const review = completeReview(anonymousReply, denied("UnsupportedContentType", message, [], 400));
      return finish(c, startedMs, { review, reason: "UnsupportedContentType" }, "UnsupportedContentType");
    }
    const ticket = route.gate.tryEnter();
    if (ticket === undefined) {
      return refuse(c, startedMs, {
        ok: false,
        code: 429,
        reason: "TooManyReviews",
        message: "pvc-guardian is answering as many admission reviews as it takes at once; retry shortly.",
      });
    }
    try {
      const declaredLength = nodeHeaders !== undefined ? nodeHeaders["content-length"] : c.req.header("content-length");
      const body = await readReviewBody(incoming ?? c.req.raw, declaredLength, maxBodyBytes, ticket, route.jsonShape);
      if (!body.ok) return refuse(c, startedMs, body);
      const decoded = decodeReview(body.value);
      const { reply } = decoded;
      if (!decoded.ok) {
        const outcome = { review: completeReview(reply, decoded.result), operation: reply.operation, reason: decoded.result.reason };
        return finish(c, startedMs, outcome, decoded.isMetadataTooLarge ? "MetadataTooLarge" : undefined);
      }
      route.rememberUid?.(c.req.raw, reply.uid);

      let outcome: RouteOutcome;
      try {
        const result = await decideWithinDeadline(handler, decoded.request, deadlineMs);
        outcome = { review: completeReview(reply, result), operation: reply.operation, reason: result.reason };
      } catch (error) {
        const failure: RouteFailure = error instanceof DeadlineExceededError ? "DeadlineExceeded" : "HandlerError";
        if (failure === "HandlerError") {
          try {
            log.error({ webhook, err: error }, "admission handler failed");
          } catch {
            // As in finish(): the answer matters more than the log line.
          }
        }
        const review = completeReview(reply, fallbackResult(route.onHandlerError, failure, error));
        return finish(c, startedMs, { review, operation: reply.operation, reason: failure }, failure);
      }
      return finish(c, startedMs, outcome, undefined);
    } finally {
      ticket.release();
    }
  };
}

/**
 * Reads and parses the body within every bound, cheapest check first: the declared
 * Content-Length, the bytes as they stream (chunked bodies declare none), the shared budget, the
 * shape of the JSON, and only then JSON.parse.
 */
export async function readReviewBody(
  source: IncomingMessage | Request,
  declared: string | undefined,
  maxBodyBytes: number,
  ticket: AdmissionTicket,
  jsonShape: JsonShapeLimits,
): Promise<BodyResult> {
  if (declared !== undefined) {
    const declaredBytes = Number(declared);
    if (declaredBytes > maxBodyBytes) return tooLarge(maxBodyBytes);
    // The whole declared body is taken from the budget up front, so a stalled body holds at most
    // what it declared, and a body the budget cannot hold is not read at all.
    if (Number.isFinite(declaredBytes) && !ticket.reserve(declaredBytes)) return overBudget();
  }
  let read: BytesResult;
  try {
    read = await readLimitedBytes(source, maxBodyBytes, declared === undefined ? ticket : undefined);
  } catch (error) {
    return { ok: false, code: 400, reason: "MalformedBody", message: `The admission request body could not be read: ${errorMessage(error)}.` };
  }
  if (!read.ok) return read;
  const shape = checkJsonShape(read.bytes, jsonShape);
  if (shape !== undefined) {
    const message =
      shape.problem === "too-deep"
        ? `The admission request body nests arrays and objects deeper than ${shape.limit} levels; no Kubernetes object does.`
        : `The admission request body holds more than ${shape.limit} JSON values; no PVC needs that many.`;
    return { ok: false, code: 400, reason: "BodyTooComplex", message };
  }
  try {
    return { ok: true, value: JSON.parse(textDecoder.decode(read.bytes)) };
  } catch (error) {
    return { ok: false, code: 400, reason: "MalformedBody", message: `The admission request body is not valid JSON: ${errorMessage(error)}.` };
  }
}

/**
 * The body's bytes, never more than `maxBodyBytes`; with `ticket`, each chunk is taken from the
 * shared budget as it arrives. A connection that closes before the end rejects.
 */
function readLimitedBytes(source: IncomingMessage | Request, maxBodyBytes: number, ticket: AdmissionTicket | undefined): Promise<BytesResult> {
  if (source instanceof Request) return readWebStream(source.body, maxBodyBytes, ticket);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", onError);
      source.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      const failure = total > maxBodyBytes ? tooLarge(maxBodyBytes) : ticket !== undefined && !ticket.reserve(chunk.length) ? overBudget() : undefined;
      if (failure !== undefined) {
        stop();
        // Stop taking bytes in; the rest is discarded once the answer is written, and the
        // connection closes.
        source.pause();
        resolve(failure);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) });
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(new Error("the connection closed before the body ended"));
    };
    source.on("data", onData);
    source.on("end", onEnd);
    source.on("error", onError);
    source.on("close", onClose);
    if (source.readableEnded) onEnd();
    else if (source.destroyed) onClose();
  });
}

async function readWebStream(stream: ReadableStream<Uint8Array> | null, maxBodyBytes: number, ticket: AdmissionTicket | undefined): Promise<BytesResult> {
  if (stream === null) return { ok: true, bytes: Buffer.alloc(0) };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    const failure = total > maxBodyBytes ? tooLarge(maxBodyBytes) : ticket !== undefined && !ticket.reserve(value.byteLength) ? overBudget() : undefined;
    if (failure !== undefined) {
      reader.cancel().catch(() => {});
      return failure;
    }
    chunks.push(value);
  }
  return { ok: true, bytes: Buffer.concat(chunks, total) };
}

function tooLarge(maxBodyBytes: number): BodyFailure {
  return {
    ok: false,
    code: 413,
    reason: "BodyTooLarge",
    message: `The admission request body is larger than the limit of ${maxBodyBytes} bytes.`,
  };
}

function overBudget(): BodyFailure {
  return {
    ok: false,
    code: 429,
    reason: "TooManyReviews",
    message: "pvc-guardian is holding as many admission request bytes as it takes at once; retry shortly.",
  };
}

class DeadlineExceededError extends Error {
  override name = "DeadlineExceededError";
}

/**
 * The route's deadline, the only one a review has. At `deadlineMs` the handler's signal aborts;
 * handlers then answer with what they know (a late repository read is `unknown`, a late write is
 * a denial or a warning), which they do within the same turn of the event loop. Only a handler
 * that has not answered by the next turn gets the route's error policy.
 */
function decideWithinDeadline(handler: ReviewHandler, request: PvcReviewRequest, deadlineMs: number | undefined): Promise<ReviewResult> {
  // Called inside a promise so that a handler throwing synchronously is a failure, not a crash.
  if (deadlineMs === undefined) return Promise.resolve().then(() => handler(request, neverAborted));
  const controller = new AbortController();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined = setTimeout(() => {
      timer = undefined;
      const error = new DeadlineExceededError(`no answer within ${deadlineMs} ms`);
      controller.abort(error);
      setImmediate(() => reject(error));
    }, deadlineMs);
    Promise.resolve()
      .then(() => handler(request, controller.signal))
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

function fallbackResult(policy: HandlerErrorPolicy, failure: RouteFailure, error: unknown): ReviewResult {
  const cause = failure === "DeadlineExceeded" ? "it did not answer in time" : `of an internal error (${errorMessage(error)})`;
  if (policy === "allow") {
    return allowed(failure, [`pvc-guardian could not evaluate this request because ${cause}, so it was admitted unchanged.`]);
  }
  return denied(
    failure,
    `pvc-guardian could not evaluate this request because ${cause}. It is blocked because this check fails closed; retry, and if it keeps failing read the pvc-guardian logs.`,
    [],
    500,
  );
}

/**
 * The answer when the server sheds a review before reading it. The mutator keeps failing open (an
 * allowed answer without a patch; the validator still gates the PVC), the validator denies with
 * 429 so the client retries. The uid is not known yet: the API server then applies the
 * webhook's failurePolicy, which is the same decision (Ignore for the mutator, Fail for the
 * validator).
 */
function shedResult(policy: HandlerErrorPolicy, message: string): ReviewResult {
  if (policy === "allow") return allowed("TooManyReviews", [`${message} The PVC was admitted unchanged.`]);
  return denied("TooManyReviews", message, [], 429);
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(";");
  const mediaType = (semicolon === -1 ? value : value.slice(0, semicolon)).trim();
  return mediaType.length === 16 && mediaType.toLowerCase() === "application/json";
}
