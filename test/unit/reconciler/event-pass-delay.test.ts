import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventPassDelayMs } from "../../../webhook/reconciler/event-pass-delay.ts";

describe("eventPassDelayMs", () => {
  const cases: [string, number | undefined, number][] = [
    ["waits the debounce before the first pass", undefined, 1_000],
    ["waits the debounce after a short pass", 100, 1_000],
    ["spaces passes by four times a long pass", 2_500, 10_000],
    ["never waits longer than the reconcile interval", 60_000, 60_000],
  ];
  for (const [name, lastPassMs, expected] of cases) {
    it(name, () => assert.equal(eventPassDelayMs(lastPassMs, 1_000, 60_000), expected));
  }

  it("keeps the debounce when the interval is shorter", () => {
    assert.equal(eventPassDelayMs(10_000, 1_000, 500), 1_000);
  });
});
