import { test } from "node:test";
import assert from "node:assert/strict";
import { createOpsRoutes } from "../../../webhook/server/ops-routes.ts";
import { createReadiness } from "../../../webhook/server/readiness.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { silentLog } from "../../support/recording-log.ts";

function setup() {
  const readiness = createReadiness();
  const metrics = createMetrics({ collectProcessMetrics: false });
  return { readiness, metrics, app: createOpsRoutes({ readiness, metrics, log: silentLog }) };
}

test("healthz answers ok even when every readiness check fails", async () => {
  const { app, readiness } = setup();
  readiness.register("catalog", () => ({ ok: false, detail: "repository unreadable" }));
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok\n");
});

test("readyz answers ok tersely when all checks pass and lists them when verbose", async () => {
  const { app, readiness } = setup();
  readiness.register("tls", () => ({ ok: true }));
  readiness.register("webhook-port", () => ({ ok: true }));
  const terse = await app.request("/readyz");
  assert.equal(terse.status, 200);
  assert.equal(await terse.text(), "ok\n");
  const verbose = await app.request("/readyz?verbose");
  assert.equal(verbose.status, 200);
  assert.equal(await verbose.text(), "[+]tls ok\n[+]webhook-port ok\nreadyz check passed\n");
});

test("readyz answers 503 naming the failed check and its detail", async () => {
  const { app, readiness } = setup();
  readiness.register("tls", () => ({ ok: true }));
  readiness.register("shutdown", () => ({ ok: false, detail: "server is draining" }));
  readiness.register("broken", () => {
    throw new Error("check crashed");
  });
  const res = await app.request("/readyz");
  assert.equal(res.status, 503);
  assert.equal(await res.text(), "[+]tls ok\n[-]shutdown failed: server is draining\n[-]broken failed: check threw: check crashed\nreadyz check failed\n");
});

test("readyz/<name> reports one check and 404 for an unknown name", async () => {
  const { app, readiness } = setup();
  readiness.register("tls", () => ({ ok: false, detail: "no pair" }));
  const one = await app.request("/readyz/tls");
  assert.equal(one.status, 503);
  assert.equal(await one.text(), "[-]tls failed: no pair\n");
  assert.equal((await app.request("/readyz/nope")).status, 404);
});

test("a removed check no longer counts and names are unique", () => {
  const readiness = createReadiness();
  const remove = readiness.register("catalog", () => ({ ok: false }));
  assert.throws(() => readiness.register("catalog", () => ({ ok: true })), /already registered/);
  assert.equal(readiness.evaluate().ok, false);
  remove();
  assert.equal(readiness.evaluate().ok, true);
});

test("metrics renders Prometheus text with known label values at zero", async () => {
  const { app, metrics } = setup();
  metrics.setCertificateNotAfter(Date.UTC(2030, 0, 1));
  metrics.countTlsReload("success");
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const webhook of ["mutate", "validate"]) {
    for (const outcome of ["allowed", "denied", "patched", "error"]) {
      assert.ok(text.includes(`pvc_guardian_admission_requests_total{webhook="${webhook}",outcome="${outcome}"} 0`), `${webhook}/${outcome}`);
    }
  }
  assert.match(text, /# TYPE pvc_guardian_admission_request_duration_seconds histogram/);
  assert.ok(text.includes(`pvc_guardian_tls_certificate_not_after_seconds ${Date.UTC(2030, 0, 1) / 1000}`));
  assert.ok(text.includes('pvc_guardian_tls_reloads_total{result="success"} 1'));
  assert.ok(text.includes('pvc_guardian_tls_reloads_total{result="failure"} 0'));
});

test("metrics registries are private to each server", async () => {
  const first = createMetrics({ collectProcessMetrics: false });
  const second = createMetrics({ collectProcessMetrics: true });
  first.observeAdmission("validate", "denied", 0.002);
  assert.match(await first.render(), /pvc_guardian_admission_requests_total\{webhook="validate",outcome="denied"\} 1/);
  const secondText = await second.render();
  assert.match(secondText, /pvc_guardian_admission_requests_total\{webhook="validate",outcome="denied"\} 0/);
  assert.match(secondText, /process_resident_memory_bytes/);
});

test("every metric we own carries the prefix, and counters end in _total", async () => {
  const text = await createMetrics({ collectProcessMetrics: false }).render();
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)];
  assert.ok(types.length >= 4);
  for (const [, name, type] of types) {
    assert.ok(name?.startsWith("pvc_guardian_"), name);
    if (type === "counter") assert.ok(name?.endsWith("_total"), name);
    if (type === "histogram") assert.ok(name?.endsWith("_seconds"), name);
  }
});
