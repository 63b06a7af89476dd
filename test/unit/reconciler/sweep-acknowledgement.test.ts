import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readSweepAcknowledgement, releasesBreaker } from "../../../webhook/reconciler/sweep-acknowledgement.ts";

const now = Date.parse("2026-11-25T12:00:00Z");

describe("readSweepAcknowledgement", () => {
  const cases: Array<[string, Record<string, string> | undefined, string]> = [
    ["no ConfigMap", undefined, "absent"],
    ["a valid one", { maxDeletions: "40", expiresAt: "2026-11-25T13:00:00Z" }, "valid"],
    ["an expired one", { maxDeletions: "40", expiresAt: "2026-11-25T11:00:00Z" }, "expired"],
    ["no count", { expiresAt: "2026-11-25T13:00:00Z" }, "invalid"],
    ["a negative count", { maxDeletions: "-1", expiresAt: "2026-11-25T13:00:00Z" }, "invalid"],
    ["no expiry", { maxDeletions: "40" }, "invalid"],
    ["a bad expiry", { maxDeletions: "40", expiresAt: "tomorrow" }, "invalid"],
  ];
  for (const [name, data, state] of cases) {
    it(`reads ${name} as ${state}`, () => assert.equal(readSweepAcknowledgement(data, now).state, state));
  }
});

describe("releasesBreaker", () => {
  const valid = readSweepAcknowledgement({ maxDeletions: "40", expiresAt: "2026-11-25T13:00:00Z" }, now);
  it("releases a sweep within the acknowledged count", () => assert.equal(releasesBreaker(valid, 40), true));
  it("holds a sweep above the acknowledged count", () => assert.equal(releasesBreaker(valid, 41), false));
  it("holds a sweep when the acknowledgement expired", () =>
    assert.equal(releasesBreaker(readSweepAcknowledgement({ maxDeletions: "40", expiresAt: "2026-11-25T11:00:00Z" }, now), 1), false));
});
