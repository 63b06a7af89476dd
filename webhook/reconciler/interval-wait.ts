// One wait of a loop that runs on an interval, sooner when woken, and stops when its signal
// aborts. Everything it arms (the timer, the abort listener) is removed however the wait ends:
// a long-lived leadership signal outlives thousands of waits, and a listener left per wait grows
// without bound.

export type IntervalWait = {
  /** Resolves "interval", "woken" or "aborted". */
  done: Promise<"interval" | "woken" | "aborted">;
  wake(): void;
};

export function waitForIntervalOrWake(signal: AbortSignal, intervalMs: number): IntervalWait {
  let wake: () => void = () => {};
  const done = new Promise<"interval" | "woken" | "aborted">((resolve) => {
    if (signal.aborted) return resolve("aborted");
    const finish = (how: "interval" | "woken" | "aborted") => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(how);
    };
    const onAbort = () => finish("aborted");
    const timer = setTimeout(() => finish("interval"), intervalMs);
    signal.addEventListener("abort", onAbort, { once: true });
    wake = () => finish("woken");
  });
  return { done, wake: () => wake() };
}
