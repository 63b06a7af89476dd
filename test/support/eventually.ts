// Polling for tests that wait on something outside their control: a server picking up a change,
// a reconciler writing an object, a process starting to listen.

export type EventuallyOptions = {
  /** How long to keep trying; one more attempt is made after it has passed. */
  timeoutMs?: number;
  /** The pause between attempts. */
  intervalMs?: number;
  /** Errors from `attempt` that mean "not yet" rather than failure; by default every error fails at once. */
  isRetryable?: (error: unknown) => boolean;
};

/**
 * Calls `attempt` until it returns something other than undefined and returns that. Past the
 * timeout it throws, naming `what` (read then, so it can describe the latest state) and the last
 * retried error.
 */
export async function eventually<T>(
  what: string | (() => string),
  attempt: () => Promise<T | undefined> | T | undefined,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 100, isRetryable = () => false } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let lastError: unknown;
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      if (!isRetryable(error)) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const described = typeof what === "string" ? what : what();
      const cause = lastError === undefined ? "" : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}${cause}`, lastError === undefined ? {} : { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
