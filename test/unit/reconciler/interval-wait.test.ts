import { test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { waitForIntervalOrWake } from "../../../webhook/reconciler/interval-wait.ts";

test("many waits on one leadership signal leave no abort listener behind", async () => {
  const leadership = new AbortController();
  for (let pass = 0; pass < 200; pass++) {
    const wait = waitForIntervalOrWake(leadership.signal, pass % 2 === 0 ? 1 : 60_000);
    if (pass % 2 === 1) wait.wake();
    assert.equal(await wait.done, pass % 2 === 0 ? "interval" : "woken");
  }
  assert.equal(getEventListeners(leadership.signal, "abort").length, 0);
});

test("an abort ends the wait at once and a wait on an aborted signal does not start", async () => {
  const leadership = new AbortController();
  const wait = waitForIntervalOrWake(leadership.signal, 60_000);
  leadership.abort();
  assert.equal(await wait.done, "aborted");
  assert.equal(await waitForIntervalOrWake(leadership.signal, 60_000).done, "aborted");
});
