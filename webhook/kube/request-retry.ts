import { setTimeout as sleep } from "node:timers/promises";
import { KubeApiError } from "./kube-objects.ts";

// Retries for calls that are safe to repeat: the API server answers 429 when it sheds load and
// 5xx (or nothing at all) while it restarts; both pass. Backoff is exponential with jitter and
// always ends when the caller's signal does, so an admission request never outlives its deadline.

/** How often and how far apart a failed call is tried again (config.ts API_REQUEST_RETRY). */
export type RetryCurve = {
  /** Attempts in total, including the first. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
};

export type RetryOptions = RetryCurve & {
  /** Also retry 409 Conflict: only for calls that re-send the whole intent (apply, GET). */
  retryConflict: boolean;
};

/** The API server's Retry-After for 429 is a second; its own priority-and-fairness default. */
const TOO_MANY_REQUESTS_WAIT_MS = 1_000;

export function isRetryable(error: unknown, retryConflict: boolean): boolean {
  if (!(error instanceof KubeApiError)) return false;
  if (error.status === 0) return true; // no answer: connection refused or reset
  if (error.status === 429 || error.status >= 500) return true;
  return retryConflict && error.status === 409 && error.reason !== "AlreadyExists";
}

export async function withRetry<T>(call: () => Promise<T>, signal: AbortSignal | undefined, options: RetryOptions): Promise<T> {
  const { maxAttempts, initialDelayMs, maxDelayMs, retryConflict } = options;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call();
    } catch (error) {
      if (attempt >= maxAttempts || !isRetryable(error, retryConflict) || signal?.aborted) throw error;
      const retryAfterMs = error instanceof KubeApiError && error.status === 429 ? TOO_MANY_REQUESTS_WAIT_MS : 0;
      const backoffMs = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.max(retryAfterMs, backoffMs / 2 + Math.random() * (backoffMs / 2));
      // Surface the caller's reason (its deadline), not timers' generic AbortError.
      await sleep(delayMs, undefined, signal ? { signal } : undefined).catch(() => signal?.throwIfAborted());
    }
  }
}
