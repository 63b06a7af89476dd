import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeApiError } from "../../../webhook/kube/kube-objects.ts";
import { isRetryable, withRetry } from "../../../webhook/kube/request-retry.ts";

describe("isRetryable", () => {
  const cases: Array<[string, unknown, boolean, boolean]> = [
    ["no answer", new KubeApiError(0, "Unreachable", "x"), false, true],
    ["429", new KubeApiError(429, "TooManyRequests", "x"), false, true],
    ["503", new KubeApiError(503, "ServiceUnavailable", "x"), false, true],
    ["404", new KubeApiError(404, "NotFound", "x"), true, false],
    ["409 conflict without the option", new KubeApiError(409, "Conflict", "x"), false, false],
    ["409 conflict with the option", new KubeApiError(409, "Conflict", "x"), true, true],
    ["409 already exists, even with the option", new KubeApiError(409, "AlreadyExists", "x"), true, false],
    ["a plain error", new Error("x"), true, false],
  ];
  for (const [name, error, retryConflict, expected] of cases) {
    it(`answers ${expected} for ${name}`, () => assert.equal(isRetryable(error, retryConflict), expected));
  }
});

describe("withRetry", () => {
  it("retries a 503 until the call succeeds", async () => {
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new KubeApiError(503, "ServiceUnavailable", "down");
        return "ok";
      },
      undefined,
      { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 2_000, retryConflict: false },
    );
    assert.equal(result, "ok");
    assert.equal(calls, 3);
  });

  it("gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new KubeApiError(500, "InternalError", `attempt ${calls}`);
        },
        undefined,
        { maxAttempts: 4, initialDelayMs: 1, maxDelayMs: 2_000, retryConflict: false },
      ),
      /attempt 4/,
    );
    assert.equal(calls, 4);
  });

  it("does not retry a 404", async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new KubeApiError(404, "NotFound", "gone");
        },
        undefined,
        { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 2_000, retryConflict: false },
      ),
    );
    assert.equal(calls, 1);
  });

  it("stops waiting when the caller's signal aborts", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("deadline")), 30);
    await assert.rejects(
      withRetry(
        async () => {
          throw new KubeApiError(503, "ServiceUnavailable", "down");
        },
        controller.signal,
        { maxAttempts: 10, initialDelayMs: 5_000, maxDelayMs: 5_000, retryConflict: false },
      ),
      /deadline/,
    );
    assert.ok(Date.now() - started < 2_000);
  });
});
