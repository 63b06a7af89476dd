import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { ReviewHandler } from "../../../webhook/admission/admission-review.ts";
import { createGuardianServer } from "../../../webhook/server/guardian-server.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { createReadiness } from "../../../webhook/server/readiness.ts";
import { silentLog } from "../../support/recording-log.ts";

const answer: ReviewHandler = async () => ({
  review: { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u", allowed: true } },
  reason: "fixed",
});

function build(extraRoutes?: Hono<{ Variables: { caller: string } }>[]) {
  const readiness = createReadiness();
  const server = createGuardianServer({
    tls: { certPath: "/nonexistent/tls.crt", keyPath: "/nonexistent/tls.key", pollIntervalMs: 60_000 },
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    handlers: { mutate: answer, validate: answer },
    readiness,
    metrics: createMetrics({ collectProcessMetrics: false }),
    log: silentLog,
    maxBodyBytes: 1024,
    drainTimeoutMs: 1_000,
    extraRoutes,
  });
  return { server, readiness };
}

test("serves admission, ops and extra routes from one app", async () => {
  const extra = new Hono<{ Variables: { caller: string } }>();
  extra.get("/v1/audit", (c) => c.text("audit"));
  const { server } = build([extra]);
  assert.equal(await (await server.app.request("/healthz")).text(), "ok\n");
  assert.equal(await (await server.app.request("/v1/audit")).text(), "audit");
  const review = await server.app.request("/validate-v1-pvc", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
  assert.equal(((await review.json()) as { response: { allowed: boolean } }).response.allowed, true);
});

test("is not ready before start: no certificate loaded and the port not probed", async () => {
  const { server, readiness } = build();
  const terse = await server.app.request("/readyz?verbose");
  assert.equal(terse.status, 503);
  assert.equal(await terse.text(), "not ready\n", "the webhook port names no check");
  const res = await server.opsApp.request("/readyz");
  assert.equal(res.status, 503);
  assert.equal(
    await res.text(),
    "[-]tls failed: serving certificate not loaded\n[-]webhook-port failed: not probed yet\n[+]shutdown ok\nreadyz check failed\n",
  );
  assert.equal(readiness.evaluate().ok, false);
});

test("start fails when the certificate files are missing", async () => {
  const { server } = build();
  await assert.rejects(server.start(), /ENOENT/);
  assert.equal(server.port, undefined);
});
