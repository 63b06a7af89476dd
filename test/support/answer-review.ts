// A review answered the way the admission route answers it, without the transport: decode the
// body, let the handler decide, complete the AdmissionReview. For tests that call handlers
// directly with review bodies (fixtures, recorded reviews, generated ones).

import { completeReview, decodeReview, type AdmissionReviewOut, type ReviewHandler } from "../../webhook/admission/admission-review.ts";

export type AnsweredReview = { review: AdmissionReviewOut; operation?: string | undefined; reason: string };

/**
 * `deadlineMs` plays the route's deadline: the handler's signal aborts then, or when `signal`
 * does. Without either the handler is never interrupted.
 */
export async function answerReview(
  handler: ReviewHandler,
  body: unknown,
  options: { signal?: AbortSignal; deadlineMs?: number } = {},
): Promise<AnsweredReview> {
  const decoded = decodeReview(body);
  if (!decoded.ok) return { review: completeReview(decoded.reply, decoded.result), operation: decoded.reply.operation, reason: decoded.result.reason };
  const signals = [options.signal, options.deadlineMs === undefined ? undefined : AbortSignal.timeout(options.deadlineMs)].filter(
    (signal) => signal !== undefined,
  );
  const signal = signals.length > 0 ? AbortSignal.any(signals) : new AbortController().signal;
  const result = await handler(decoded.request, signal);
  return { review: completeReview(decoded.reply, result), operation: decoded.reply.operation, reason: result.reason };
}
