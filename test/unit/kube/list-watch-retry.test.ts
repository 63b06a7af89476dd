import { test } from "node:test";
import assert from "node:assert/strict";
import { listWatchRetryDelayMs } from "../../../webhook/kube/list-watch-retry.ts";

test("waits the first delay after one failure, doubling per failure in a row up to the cap", () => {
  const retry = { retryDelayMs: 1_000, maxRetryDelayMs: 30_000 };
  const rows: [failuresInARow: number, delayMs: number][] = [
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [5, 16_000],
    [6, 30_000],
    [60, 30_000],
  ];
  for (const [failures, expected] of rows) assert.equal(listWatchRetryDelayMs(retry, failures), expected, `${failures} failures`);
});
