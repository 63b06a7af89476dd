// The admission transport: raw HTTP in, an AdmissionReview out, always with HTTP 200. A plain-text
// error status would hand the decision to the webhook's failurePolicy instead of to us, so every
// failure here (wrong content type, unreadable or oversized body, a handler that throws or misses
// its deadline) still becomes an AdmissionReview. What an AdmissionReview means is the protocol
// layer's business; this module only moves them.

import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import {
  allowed,
  denied,
  rejectMalformedReview,
  type AdmissionReviewOut,
  type ReviewHandler,
  type ReviewOutcome,
} from '../admission/admission-review.ts';
import type { Logger } from './logger.ts';
import type { AdmissionMetrics, AdmissionOutcome, AdmissionWebhook } from './metrics.ts';

export const mutatePath = '/mutate-v1-pvc';
export const validatePath = '/validate-v1-pvc';

/** What the route answers when its handler throws or misses the deadline. */
export type HandlerErrorPolicy = 'deny' | 'allow';

export type AdmissionRoutesDeps = {
  mutate: ReviewHandler;
  validate: ReviewHandler;
  maxBodyBytes: number;
  /** Abandon the handler after this long and answer with the route's error policy. */
  deadlineMs?: number;
  log: Logger;
  metrics: AdmissionMetrics;
};

export type AdmissionRoute = {
  webhook: AdmissionWebhook;
  handler: ReviewHandler;
  onHandlerError: HandlerErrorPolicy;
  maxBodyBytes: number;
  deadlineMs?: number;
  log: Logger;
  metrics: AdmissionMetrics;
};

export function createAdmissionRoutes(deps: AdmissionRoutesDeps): Hono {
  const shared = { maxBodyBytes: deps.maxBodyBytes, deadlineMs: deps.deadlineMs, log: deps.log, metrics: deps.metrics };
  const app = new Hono();
  // The mutator fails open: without it a PVC is only created empty, and the validator still gates.
  app.post(mutatePath, createAdmissionHandler({ ...shared, webhook: 'mutate', handler: deps.mutate, onHandlerError: 'allow' }));
  // The validator is the fail-closed gate.
  app.post(validatePath, createAdmissionHandler({ ...shared, webhook: 'validate', handler: deps.validate, onHandlerError: 'deny' }));
  return app;
}

/** Why the route itself produced the answer; logged as `reason` and counted as outcome `error`. */
type RouteFailure = 'UnsupportedContentType' | 'MalformedBody' | 'BodyTooLarge' | 'HandlerError' | 'DeadlineExceeded';

type BodyResult = { ok: true; value: unknown } | { ok: false; code: 400 | 413; reason: RouteFailure; message: string };

const neverAborted = new AbortController().signal;
const textDecoder = new TextDecoder();

export function createAdmissionHandler(route: AdmissionRoute): (c: Context) => Promise<Response> {
  const { webhook, handler, maxBodyBytes, deadlineMs, log, metrics } = route;

  function finish(c: Context, startedMs: number, outcome: ReviewOutcome, failure: RouteFailure | undefined): Response {
    const durationMs = performance.now() - startedMs;
    const response = outcome.review.response;
    const isPatched = response.allowed && response.patch !== undefined;
    const counted: AdmissionOutcome = failure !== undefined ? 'error' : isPatched ? 'patched' : response.allowed ? 'allowed' : 'denied';
    // Reporting must never cost the answer: a throwing logger or metric would otherwise turn
    // into a plain-text 500.
    try {
      metrics.observeAdmission(webhook, counted, durationMs / 1000);
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
        'admission review answered',
      );
    } catch {
      // Nothing better to do with a failing reporter than to keep answering.
    }
    if (failure === 'BodyTooLarge') {
      // The rest of the oversized body is still on the wire; do not reuse this connection for
      // another review.
      c.header('Connection', 'close');
    }
    return c.json(outcome.review, 200);
  }

  return async function answerAdmission(c: Context): Promise<Response> {
    const startedMs = performance.now();
    // On Node the parsed header object is already there; building a fetch Headers from it for two
    // lookups would be the costliest part of reading the request. app.request() has no bindings.
    const nodeHeaders = (c.env as Partial<HttpBindings> | undefined)?.incoming?.headers;
    const contentType = nodeHeaders !== undefined ? nodeHeaders['content-type'] : c.req.header('content-type');
    if (!isJsonContentType(contentType)) {
      const message = `The admission request must have content type application/json, not ${contentType === undefined ? 'none' : JSON.stringify(contentType)}.`;
      return finish(c, startedMs, { review: rejectMalformedReview(400, message), reason: 'UnsupportedContentType' }, 'UnsupportedContentType');
    }
    const declaredLength = nodeHeaders !== undefined ? nodeHeaders['content-length'] : c.req.header('content-length');
    const body = await readJsonBody(c.req.raw, declaredLength, maxBodyBytes);
    if (!body.ok) return finish(c, startedMs, { review: rejectMalformedReview(body.code, body.message), reason: body.reason }, body.reason);

    let outcome: ReviewOutcome;
    try {
      outcome = deadlineMs === undefined ? await handler(body.value, neverAborted) : await runWithDeadline(handler, body.value, deadlineMs);
      if (!isReviewOutcome(outcome)) throw new Error('handler returned something that is not an AdmissionReview');
    } catch (error) {
      const failure: RouteFailure = error instanceof DeadlineExceededError ? 'DeadlineExceeded' : 'HandlerError';
      if (failure === 'HandlerError') {
        try {
          log.error({ webhook, err: error }, 'admission handler failed');
        } catch {
          // As in finish(): the answer matters more than the log line.
        }
      }
      const review = fallbackReview(route.onHandlerError, body.value, failure, error);
      return finish(c, startedMs, { review, operation: operationOf(body.value), reason: failure }, failure);
    }
    return finish(c, startedMs, outcome, undefined);
  };
}

/**
 * Reads the whole body, never holding more than `maxBodyBytes`. A declared Content-Length over the
 * limit is refused before reading a byte; a chunked body is counted while it streams.
 */
export async function readJsonBody(request: Request, declared: string | undefined, maxBodyBytes: number): Promise<BodyResult> {
  let text: string;
  try {
    if (declared !== undefined) {
      const declaredBytes = Number(declared);
      if (declaredBytes > maxBodyBytes) return tooLarge(maxBodyBytes);
      // The HTTP parser stops at Content-Length, so reading it all stays within the limit.
      text = await request.text();
    } else {
      const streamed = await readLimited(request.body, maxBodyBytes);
      if (streamed === undefined) return tooLarge(maxBodyBytes);
      text = streamed;
    }
  } catch (error) {
    return { ok: false, code: 400, reason: 'MalformedBody', message: `The admission request body could not be read: ${errorMessage(error)}.` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, code: 400, reason: 'MalformedBody', message: `The admission request body is not valid JSON: ${errorMessage(error)}.` };
  }
}

async function readLimited(stream: ReadableStream<Uint8Array> | null, maxBodyBytes: number): Promise<string | undefined> {
  if (stream === null) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBodyBytes) {
      reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return textDecoder.decode(chunks[0]);
  return textDecoder.decode(Buffer.concat(chunks, total));
}

function tooLarge(maxBodyBytes: number): BodyResult {
  return {
    ok: false,
    code: 413,
    reason: 'BodyTooLarge',
    message: `The admission request body is larger than the limit of ${maxBodyBytes} bytes.`,
  };
}

class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
}

function runWithDeadline(handler: ReviewHandler, body: unknown, deadlineMs: number): Promise<ReviewOutcome> {
  const controller = new AbortController();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new DeadlineExceededError(`no answer within ${deadlineMs} ms`);
      controller.abort(error);
      reject(error);
    }, deadlineMs);
    let pending: Promise<ReviewOutcome>;
    try {
      pending = handler(body, controller.signal);
    } catch (error) {
      clearTimeout(timer);
      reject(error);
      return;
    }
    pending.then(
      (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function fallbackReview(policy: HandlerErrorPolicy, raw: unknown, failure: RouteFailure, error: unknown): AdmissionReviewOut {
  const uid = uidOf(raw);
  const cause = failure === 'DeadlineExceeded' ? 'it did not answer in time' : `of an internal error (${errorMessage(error)})`;
  if (policy === 'allow') {
    return allowed(uid, [`pvc-guardian could not evaluate this request because ${cause}, so it was admitted unchanged.`]);
  }
  return denied(
    uid,
    `pvc-guardian could not evaluate this request because ${cause}. It is blocked because this check fails closed; retry, and if it keeps failing read the pvc-guardian logs.`,
    [],
    500,
  );
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(';');
  const mediaType = (semicolon === -1 ? value : value.slice(0, semicolon)).trim();
  return mediaType.length === 16 && mediaType.toLowerCase() === 'application/json';
}

function isReviewOutcome(value: unknown): value is ReviewOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const review = (value as { review?: unknown }).review;
  if (typeof review !== 'object' || review === null) return false;
  const response = (review as { response?: unknown }).response;
  return typeof response === 'object' && response !== null && typeof (response as { allowed?: unknown }).allowed === 'boolean';
}

function requestOf(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const request = (raw as { request?: unknown }).request;
  return typeof request === 'object' && request !== null ? (request as Record<string, unknown>) : undefined;
}

function operationOf(raw: unknown): string | undefined {
  const operation = requestOf(raw)?.['operation'];
  return typeof operation === 'string' ? operation : undefined;
}

function uidOf(raw: unknown): string {
  const uid = requestOf(raw)?.['uid'];
  return typeof uid === 'string' ? uid : '';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
