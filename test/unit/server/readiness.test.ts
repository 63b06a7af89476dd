import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadiness, formatReadiness } from "../../../webhook/server/readiness.ts";

test("an informational check is reported but never takes the replica out of the Service", () => {
  const readiness = createReadiness();
  readiness.register("webhook-port", () => ({ ok: true }));
  readiness.register("catalog", () => ({ ok: false, detail: "snapshot catalog not fresh (never loaded)" }), { informational: true });
  const report = readiness.evaluate();
  assert.equal(report.ok, true);
  assert.equal(formatReadiness(report, false), "ok\n");
  assert.equal(
    formatReadiness(report, true),
    "[+]webhook-port ok\n[!]catalog (not gating readiness): snapshot catalog not fresh (never loaded)\nreadyz check passed\n",
  );
});

test("a gating check that fails still fails readiness beside an informational one", () => {
  const readiness = createReadiness();
  readiness.register("catalog", () => ({ ok: false, detail: "stale" }), { informational: true });
  const remove = readiness.register("shutdown", () => ({ ok: false, detail: "server is shutting down" }));
  assert.equal(readiness.evaluate().ok, false);
  assert.match(formatReadiness(readiness.evaluate(), true), /\[-\]shutdown failed: server is shutting down/);
  remove();
  assert.equal(readiness.evaluate().ok, true);
});
