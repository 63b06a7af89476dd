// How a list-and-watch loop waits after a failed list or watch: the first delay, doubling per
// failure in a row up to a cap, and back to the first once a list succeeds. The namespace-label
// and VolSync CRD watchers both keep their last good state while they wait.

export type ListWatchRetry = {
  /** First delay after a failed list or watch; doubles up to maxRetryDelayMs. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
};

/** The wait before the next attempt after `failuresInARow` failures (1 for the first). */
export function listWatchRetryDelayMs(retry: ListWatchRetry, failuresInARow: number): number {
  return Math.min(retry.maxRetryDelayMs, retry.retryDelayMs * 2 ** Math.max(0, failuresInARow - 1));
}
