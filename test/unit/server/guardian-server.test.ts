import { readFileSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { allowed, type ReviewHandler } from "../../../webhook/admission/admission-review.ts";
import { createGuardianServer } from "../../../webhook/server/guardian-server.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { createReadiness } from "../../../webhook/server/readiness.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { guardianServerSettings } from "../../support/default-settings.ts";

const answer: ReviewHandler = async () => allowed("fixed");
const pvcReview = readFileSync(new URL("../../fixtures/admission/protected-create.json", import.meta.url), "utf8");

function build(extraRoutes?: Hono<{ Variables: { caller: string } }>[], handlers = { mutate: answer, validate: answer }) {
  const readiness = createReadiness();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const server = createGuardianServer({
    ...guardianServerSettings,
    tls: { certPath: "/nonexistent/tls.crt", keyPath: "/nonexistent/tls.key", pollIntervalMs: 60_000 },
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    handlers,
    readiness,
    metrics,
    log: createSilentLogger(),
    maxBodyBytes: 64 * 1024,
    drainDelayMs: 0,
    drainTimeoutMs: 1_000,
    extraRoutes,
  });
  return { server, readiness, metrics };
}

test("serves admission, ops and extra routes from one app", async () => {
  const extra = new Hono<{ Variables: { caller: string } }>();
  extra.get("/v1/audit", (c) => c.text("audit"));
  const { server } = build([extra]);
  assert.equal(await (await server.app.request("/healthz")).text(), "ok\n");
  assert.equal(await (await server.app.request("/v1/audit")).text(), "audit");
  const review = await server.app.request("/validate-v1-pvc", { method: "POST", body: pvcReview, headers: { "content-type": "application/json" } });
  assert.equal(((await review.json()) as { response: { allowed: boolean } }).response.allowed, true);
});

test("counts each admission request in flight from its arrival to its answer", async () => {
  const release = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  const held: ReviewHandler = async (body, signal) => {
    arrived.resolve();
    await release.promise;
    return answer(body, signal);
  };
  const { server, metrics } = build(undefined, { mutate: answer, validate: held });
  const inFlight = async () => {
    const line = (await metrics.render()).split("\n").find((l) => l.startsWith('pvc_guardian_admission_requests_in_flight{webhook="validate"} '));
    return Number(line?.split(" ").at(-1));
  };
  assert.equal(await inFlight(), 0);
  const review = server.app.request("/validate-v1-pvc", { method: "POST", body: pvcReview, headers: { "content-type": "application/json" } });
  await arrived.promise;
  assert.equal(await inFlight(), 1);
  release.resolve();
  assert.equal((await review).status, 200);
  assert.equal(await inFlight(), 0);
  const text = await metrics.render();
  assert.match(text, /^pvc_guardian_admission_requests_in_flight\{webhook="mutate"\} 0$/m);
  assert.match(text, /^pvc_guardian_admission_responses_total\{webhook="validate",code="200"\} 1$/m);
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
