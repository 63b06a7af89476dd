import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatMicroTime, parseRfc3339Ns } from "../../../webhook/domain/rfc3339-time.ts";

describe("formatMicroTime", () => {
  it("writes UTC with six fraction digits", () => {
    assert.equal(formatMicroTime(Date.UTC(2026, 0, 2, 3, 4, 5, 67)), "2026-01-02T03:04:05.067000Z");
  });

  it("reads back as the same instant", () => {
    const ms = Date.UTC(2026, 10, 21, 23, 59, 59, 999);
    assert.equal(parseRfc3339Ns(formatMicroTime(ms)), BigInt(ms) * 1_000_000n);
  });
});
