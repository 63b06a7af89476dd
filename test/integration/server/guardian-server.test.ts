// The webhook server over its real HTTPS listener on 127.0.0.1:0, with certificates from a test CA
// that the client trusts, and the real admission handlers behind it.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { Agent } from "node:https";
import path from "node:path";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { allowed, type AdmissionReviewOut, type ReviewHandler } from "../../../webhook/admission/admission-review.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { snapshotRecord, type SnapshotCatalog } from "../../../webhook/domain/snapshot-catalog.ts";
import { createGuardianServer, type GuardianServerOptions } from "../../../webhook/server/guardian-server.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { createReadiness } from "../../../webhook/server/readiness.ts";
import { eventually, type EventuallyOptions } from "../../support/eventually.ts";
import { callHttp, callHttps, postJson } from "../../support/https-call.ts";
import { parseReview } from "../../support/parse-review.ts";
import { pvcCreateReview } from "../../support/pvc-review.ts";
import { guardianServerSettings } from "../../support/default-settings.ts";
import type { RecordingLogger } from "../../support/recording-logger.ts";
import { createTestPki, normaliseSerial, type TestPki } from "../../support/test-pki.ts";

// The server reloads certificates every 25 ms and probes itself every 50 ms: what the tests wait
// for comes within moments.
const promptly: EventuallyOptions = { timeoutMs: 5_000, intervalMs: 25 };

// A repository that holds one complete snapshot for every identity: the restore path.
const catalogWithBackups: SnapshotCatalog = {
  lookup: (_identity, nowMs) => ({
    readable: true,
    refreshedAtMs: nowMs,
    snapshots: [snapshotRecord({ id: "k1f00d", startTime: "2026-01-01T02:00:00.000000000Z", endTime: "2026-01-01T02:01:00.000000000Z", incomplete: false })!],
  }),
};

function pvcReview(uid: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return pvcCreateReview({ uid, spec });
}

type Started = {
  pki: TestPki;
  port: number;
  opsPort: number;
  ca: string;
  certPath: string;
  keyPath: string;
  servingSerial: string;
  log: RecordingLogger;
  server: ReturnType<typeof createGuardianServer>;
  metrics: ReturnType<typeof createMetrics>;
};

async function startServer(t: TestContext, overrides: Partial<GuardianServerOptions> = {}, existingPki?: TestPki): Promise<Started> {
  const pki = existingPki ?? (await createTestPki());
  const { certPath, keyPath, certPem } = await pki.issueServingPair("first");
  const log = createRecordingLogger();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const handlers = createReviewHandlers({ policy: DEFAULT_POLICY, catalog: catalogWithBackups });
  const server = createGuardianServer({
    ...guardianServerSettings,
    tls: { certPath, keyPath, pollIntervalMs: 25 },
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    handlers,
    readiness: createReadiness(),
    metrics,
    log,
    maxBodyBytes: 7 * 1024 * 1024,
    deadlineMs: 3_000,
    drainDelayMs: 0,
    drainTimeoutMs: 5_000,
    selfProbeIntervalMs: 50,
    ...overrides,
  });
  const { port, opsPort } = await server.start();
  t.after(async () => {
    await server.stop();
    await pki.cleanup();
  });
  return { pki, port, opsPort, ca: pki.ca.certPem, certPath, keyPath, servingSerial: new X509Certificate(certPem).serialNumber, log, server, metrics };
}

test("answers mutate and validate reviews over one keep-alive TLS connection", async (t) => {
  const s = await startServer(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: s.ca });
  t.after(() => agent.destroy());

  const mutated = await postJson(s.ca, s.port, "/mutate-v1-pvc", pvcReview("uid-mutate"), { agent });
  assert.equal(mutated.status, 200);
  assert.equal(normaliseSerial(mutated.serialNumber), normaliseSerial(s.servingSerial));
  const mutation = parseReview(mutated.text).response;
  assert.equal(mutation.uid, "uid-mutate");
  assert.equal(mutation.allowed, true);
  assert.equal(mutation.patchType, "JSONPatch");
  const patch = JSON.parse(Buffer.from(mutation.patch ?? "", "base64").toString("utf8")) as { op: string; path: string; value: Record<string, string> }[];
  assert.equal(patch.length, 1);
  assert.equal(patch[0]?.op, "add");
  assert.equal(patch[0]?.path, "/spec/dataSourceRef");
  assert.equal(patch[0]?.value["kind"], "ReplicationDestination");

  // Without the patch the validator blocks; with it, it allows.
  const unpatched = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcReview("uid-unpatched"), { agent })).text).response;
  assert.equal(unpatched.allowed, false);
  assert.equal(unpatched.uid, "uid-unpatched");
  const patchedReview = pvcReview("uid-patched", { dataSourceRef: patch[0]?.value });
  for (let i = 0; i < 10; i += 1) {
    const answer = await postJson(s.ca, s.port, "/validate-v1-pvc", patchedReview, { agent });
    assert.equal(answer.status, 200);
    assert.equal(answer.reusedSocket, true, "the connection is kept alive between reviews");
    assert.equal(parseReview(answer.text).response.allowed, true);
  }

  const lines = s.log.entries.filter((e) => e.message === "admission review answered");
  assert.equal(lines.length, 12);
  assert.deepEqual(
    {
      webhook: lines[0]?.fields["webhook"],
      operation: lines[0]?.fields["operation"],
      patched: lines[0]?.fields["patched"],
      reason: lines[0]?.fields["reason"],
    },
    { webhook: "mutate", operation: "CREATE", patched: true, reason: "restore" },
  );
  const metricsText = (await callHttp(s.opsPort, "/metrics")).text;
  assert.match(metricsText, /pvc_guardian_admission_requests_total\{webhook="mutate",outcome="patched"\} 1/);
  assert.match(metricsText, /pvc_guardian_admission_requests_total\{webhook="validate",outcome="denied"\} 1/);
  assert.match(metricsText, /pvc_guardian_admission_requests_total\{webhook="validate",outcome="allowed"\} 10/);
});

test("answers malformed, oversized and wrongly typed bodies with AdmissionReviews and HTTP 200", async (t) => {
  const maxBodyBytes = 256 * 1024;
  const s = await startServer(t, { maxBodyBytes });
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: s.ca });
  t.after(() => agent.destroy());

  const malformed = await postJson(s.ca, s.port, "/validate-v1-pvc", '{"apiVersion": "admission.k8s.io/v1", "request": {', { agent });
  assert.equal(malformed.status, 200);
  assert.deepEqual(parseReview(malformed.text).response.status?.code, 400);
  assert.equal(parseReview(malformed.text).response.allowed, false);

  const wrongType = await callHttps(s.ca, s.port, {
    method: "POST",
    path: "/validate-v1-pvc",
    body: JSON.stringify(pvcReview("uid-text")),
    headers: { "content-type": "text/plain" },
    agent,
  });
  assert.equal(wrongType.status, 200);
  assert.equal(parseReview(wrongType.text).response.status?.code, 400);
  assert.equal(wrongType.reusedSocket, true);

  const notAReview = await postJson(s.ca, s.port, "/validate-v1-pvc", { hello: "world" }, { agent });
  assert.equal(notAReview.status, 200);
  assert.equal(parseReview(notAReview.text).response.status?.code, 400);

  const padding = "x".repeat(maxBodyBytes + 1024);
  const oversizedDeclared = await postJson(s.ca, s.port, "/validate-v1-pvc", { ...pvcReview("uid-big"), padding });
  assert.equal(oversizedDeclared.status, 200);
  assert.equal(parseReview(oversizedDeclared.text).response.status?.code, 413);

  const oversizedChunked = await postJson(s.ca, s.port, "/mutate-v1-pvc", { ...pvcReview("uid-chunked"), padding }, { isChunked: true });
  assert.equal(oversizedChunked.status, 200);
  assert.equal(parseReview(oversizedChunked.text).response.status?.code, 413);

  // A chunked body within the limit is read whole.
  const chunkedOk = await postJson(s.ca, s.port, "/mutate-v1-pvc", { ...pvcReview("uid-chunked-ok"), padding: "y".repeat(100 * 1024) }, { isChunked: true });
  assert.equal(parseReview(chunkedOk.text).response.uid, "uid-chunked-ok");
  assert.equal(parseReview(chunkedOk.text).response.allowed, true);

  // The server is still healthy after all of that.
  assert.equal((await callHttps(s.ca, s.port, { path: "/healthz" })).text, "ok\n");
});

test("reports readiness tersely on the webhook port and with named checks on the operations port", async (t) => {
  const s = await startServer(t);
  const ready = await eventually(
    "readyz 200",
    async () => {
      const answer = await callHttp(s.opsPort, "/readyz?verbose");
      return answer.status === 200 ? answer : undefined;
    },
    promptly,
  );
  assert.equal(ready.text, "[+]tls ok\n[+]webhook-port ok\n[+]shutdown ok\nreadyz check passed\n");
  const terse = await callHttps(s.ca, s.port, { path: "/readyz?verbose" });
  assert.equal(terse.status, 200);
  assert.equal(terse.text, "ok\n");
  const metricsText = (await callHttp(s.opsPort, "/metrics")).text;
  const notAfterSeconds = Date.parse(new X509Certificate(await readFile(s.certPath)).validTo) / 1000;
  assert.ok(metricsText.includes(`pvc_guardian_tls_certificate_not_after_seconds ${notAfterSeconds}`));
});

test("serves a rotated certificate to new connections and keeps the last good pair on a garbage key", async (t) => {
  const s = await startServer(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: s.ca });
  t.after(() => agent.destroy());
  const before = await callHttps(s.ca, s.port, { path: "/healthz", agent });
  assert.equal(normaliseSerial(before.serialNumber), normaliseSerial(s.servingSerial));

  const second = await s.pki.issue("second");
  const secondSerial = new X509Certificate(second.certPem).serialNumber;
  assert.notEqual(secondSerial, s.servingSerial);
  // Key first, then certificate: in between the pair does not match and must not be used.
  await writeFile(s.keyPath, await readFile(second.keyPath));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const mismatched = await callHttps(s.ca, s.port, { path: "/healthz" });
  assert.equal(normaliseSerial(mismatched.serialNumber), normaliseSerial(s.servingSerial), "a half-written pair is not served");
  await writeFile(s.certPath, second.certPem);

  const rotated = await eventually(
    "the second certificate",
    async () => {
      const answer = await callHttps(s.ca, s.port, { path: "/healthz" });
      return normaliseSerial(answer.serialNumber) === normaliseSerial(secondSerial) ? answer : undefined;
    },
    promptly,
  );
  assert.equal(rotated.status, 200);
  // The established connection keeps the certificate it was opened with.
  const reused = await callHttps(s.ca, s.port, { path: "/healthz", agent });
  assert.equal(reused.reusedSocket, true);
  assert.equal(normaliseSerial(reused.serialNumber), normaliseSerial(s.servingSerial));

  await writeFile(s.keyPath, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
  await eventually(
    "the rejection to be logged",
    async () => (s.log.entries.some((e) => e.message?.startsWith("changed serving certificate rejected")) ? true : undefined),
    promptly,
  );
  const afterGarbage = await callHttps(s.ca, s.port, { path: "/healthz" });
  assert.equal(afterGarbage.status, 200);
  assert.equal(normaliseSerial(afterGarbage.serialNumber), normaliseSerial(secondSerial));
  const metricsText = (await callHttp(s.opsPort, "/metrics")).text;
  assert.match(metricsText, /pvc_guardian_tls_reloads_total\{result="success"\} 1/);
  assert.match(metricsText, /pvc_guardian_tls_reloads_total\{result="failure"\} [12]/);
  const reloaded = s.log.entries.find((e) => e.message === "serving certificate reloaded");
  assert.equal(reloaded?.fields["notAfter"], new Date(new X509Certificate(second.certPem).validTo).toISOString());
});

test("follows a Kubernetes Secret volume update (the ..data symlink swap)", async (t) => {
  const pki = await createTestPki();
  const first = await pki.issue("volume-first");
  const second = await pki.issue("volume-second");
  // The layout kubelet's atomic writer makes: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>.
  const volume = path.join(pki.dir, "volume");
  async function writeVersion(name: string, issued: typeof first) {
    const dir = path.join(volume, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "tls.crt"), issued.certPem);
    await writeFile(path.join(dir, "tls.key"), await readFile(issued.keyPath));
  }
  await writeVersion("..2026_01_01_00_00_00.1", first);
  await symlink("..2026_01_01_00_00_00.1", path.join(volume, "..data"));
  await symlink("..data/tls.crt", path.join(volume, "tls.crt"));
  await symlink("..data/tls.key", path.join(volume, "tls.key"));

  const s = await startServer(t, { tls: { certPath: path.join(volume, "tls.crt"), keyPath: path.join(volume, "tls.key"), pollIntervalMs: 25 } }, pki);
  const before = await callHttps(s.ca, s.port, { path: "/healthz" });
  assert.equal(normaliseSerial(before.serialNumber), normaliseSerial(new X509Certificate(first.certPem).serialNumber));

  await writeVersion("..2026_01_02_00_00_00.2", second);
  await symlink("..2026_01_02_00_00_00.2", path.join(volume, "..data_tmp"));
  await rename(path.join(volume, "..data_tmp"), path.join(volume, "..data"));

  const secondSerial = normaliseSerial(new X509Certificate(second.certPem).serialNumber);
  await eventually(
    "the swapped certificate",
    async () => {
      const answer = await callHttps(s.ca, s.port, { path: "/healthz" });
      return normaliseSerial(answer.serialNumber) === secondSerial ? true : undefined;
    },
    promptly,
  );
});

test("finishes an in-flight review on shutdown, refuses new connections and reports not ready while draining", async (t) => {
  let release: () => void = () => {};
  let arrived: () => void = () => {};
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  const held = new Promise<void>((resolve) => (release = resolve));
  const slowValidate: ReviewHandler = async () => {
    arrived();
    await held;
    return allowed("held");
  };
  const handlers = createReviewHandlers({ policy: DEFAULT_POLICY, catalog: catalogWithBackups });
  const s = await startServer(t, { handlers: { mutate: handlers.mutate, validate: slowValidate }, drainDelayMs: 400 });
  await eventually("ready", async () => ((await callHttps(s.ca, s.port, { path: "/readyz" })).status === 200 ? true : undefined), promptly);

  const inFlight = postJson(s.ca, s.port, "/validate-v1-pvc", pvcReview("uid-in-flight"));
  await requestArrived;
  const stopped = s.server.stop();

  // During the drain delay the port still accepts, and says it is not ready.
  const draining = await callHttps(s.ca, s.port, { path: "/readyz" });
  assert.equal(draining.status, 503);
  assert.equal(draining.text, "not ready\n");
  assert.equal(draining.headers["connection"], "close");
  assert.match((await callHttp(s.opsPort, "/readyz")).text, /\[-\]shutdown failed: server is shutting down/);

  // Then the listener closes: new connections are refused while the review is still held.
  await eventually(
    "connection refused",
    async () => {
      try {
        await callHttps(s.ca, s.port, { path: "/healthz" });
        return undefined;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === "ECONNREFUSED" ? true : undefined;
      }
    },
    promptly,
  );
  let isStopped = false;
  void stopped.then(() => (isStopped = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(isStopped, false, "stop waits for the in-flight review");

  release();
  const answer = await inFlight;
  assert.equal(answer.status, 200);
  assert.equal(parseReview(answer.text).response.uid, "uid-in-flight");
  assert.equal(parseReview(answer.text).response.allowed, true);
  await stopped;
});
