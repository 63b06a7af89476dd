// How long a watch event waits before the pass it asks for. A pass lists every protected PVC and
// every generated object, so its cost grows with the cluster: about 0.1 s at a hundred PVCs,
// seconds at ten thousand, most of it on the one thread that also answers admission. Passes run
// back to back while PVCs keep changing, so without spacing a burst of creates on a large cluster
// kept the event loop busy and pushed admission p99 into seconds (bench/e2e). Spacing event passes
// by a multiple of the last pass's duration bounds the share of the thread they take; the
// interval pass is not delayed, and on a small cluster the debounce alone applies, as before.

/** Event passes take at most 1 / (1 + EVENT_PASS_SPACING) of the thread: 20%. */
export const EVENT_PASS_SPACING = 4;

export function eventPassDelayMs(lastPassMs: number | undefined, debounceMs: number, reconcileIntervalMs: number): number {
  const spaced = lastPassMs === undefined ? 0 : lastPassMs * EVENT_PASS_SPACING;
  return Math.min(Math.max(debounceMs, spaced), Math.max(debounceMs, reconcileIntervalMs));
}
