// What a caller inside the cluster can make the webhook server do, on its real HTTPS listener with
// a test CA: bodies that would exhaust the heap or the event loop, clients that stall, too many
// reviews or connections, weak TLS, and the operations surface. Each limit must end in an
// AdmissionReview answer or a closed connection, never a crash. Timeouts are configured small
// and checked only loosely ("closed within a few times the timeout").

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import path from "node:path";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { exportJWK, generateKeyPair } from "jose";
import { allowed, type AdmissionReviewOut, type ReviewHandler } from "../../../webhook/admission/admission-review.ts";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { createUnconfiguredCatalog } from "../../../webhook/domain/snapshot-catalog.ts";
import { createServiceAccountTokenVerifier } from "../../../webhook/server/bearer-auth.ts";
import { createGuardianServer, type GuardianServerOptions } from "../../../webhook/server/guardian-server.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { createReadApiRoutes } from "../../../webhook/server/read-api-routes.ts";
import { createReadiness } from "../../../webhook/server/readiness.ts";
import { issueClientCertificate } from "../../../certs/pki.ts";
import { callHttp, callHttps, postJson } from "../../support/https-call.ts";
import { parseReview } from "../../support/parse-review.ts";
import { pvcCreateReview } from "../../support/pvc-review.ts";
import { signingKeyReadSettings, defaultSettings, guardianServerSettings } from "../../support/default-settings.ts";
import { createRecordingLogger, type RecordingLogger } from "../../support/recording-logger.ts";
import { createTestPki, type TestPki } from "../../support/test-pki.ts";

type Started = { pki: TestPki; port: number; opsPort: number; ca: string; log: RecordingLogger };

async function startServer(t: TestContext, overrides: Partial<GuardianServerOptions> = {}, pkiIn?: TestPki): Promise<Started> {
  const pki = pkiIn ?? (await createTestPki());
  const { certPath, keyPath } = await pki.issueServingPair(`serving-${Math.random().toString(36).slice(2)}`);
  const log = createRecordingLogger();
  const server = createGuardianServer({
    ...guardianServerSettings,
    tls: { certPath, keyPath, pollIntervalMs: 1_000 },
    host: "127.0.0.1",
    port: 0,
    opsPort: 0,
    // No repository: every protected PVC is "unknown", so the validator denies and the mutator allows unpatched.
    handlers: createReviewHandlers({ policy: DEFAULT_POLICY, catalog: createUnconfiguredCatalog() }),
    readiness: createReadiness(),
    metrics: createMetrics({ collectProcessMetrics: false }),
    log,
    deadlineMs: 3_000,
    drainDelayMs: 0,
    drainTimeoutMs: 1_000,
    selfProbeIntervalMs: 60_000,
    ...overrides,
  });
  const { port, opsPort } = await server.start();
  t.after(async () => {
    await server.stop();
    if (pkiIn === undefined) await pki.cleanup();
  });
  return { pki, port, opsPort, ca: pki.ca.certPem, log };
}

function reviewWithLabels(uid: string, labels: Record<string, string>): string {
  const review = pvcCreateReview({ uid }) as { request: { object: { metadata: { labels: Record<string, string> } } } };
  review.request.object.metadata.labels = { ...review.request.object.metadata.labels, ...labels };
  return JSON.stringify(review);
}

function manyLabels(count: number): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < count; i += 1) labels[`l${i}`] = "v";
  return labels;
}

/** A TLS connection to the server, trusting the test CA; resolves once the handshake is done. */
function openTls(s: Started, options: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: s.port, ca: s.ca, servername: "localhost", ...options }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Milliseconds until the server closes `socket` (or `capMs`, then the test fails). */
function msUntilClosed(socket: { once(event: "close", listener: () => void): unknown; destroy(): void; resume(): unknown }, capMs: number): Promise<number> {
  const startedMs = performance.now();
  // Read (and drop) whatever the server answers, or the end of the stream is never seen.
  socket.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${capMs} ms`));
    }, capMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - startedMs);
    });
  });
}

test("answers a deeply nested body and oversized bodies with AdmissionReviews, and stays up", async (t) => {
  const s = await startServer(t);
  // 1.4 million nested arrays in 2.8 MB: under the size limit, fatal to JSON.parse on a small heap.
  const nested = "[".repeat(1_400_000) + "]".repeat(1_400_000);
  const deep = await postJson(s.ca, s.port, "/validate-v1-pvc", nested);
  assert.equal(deep.status, 200);
  assert.equal(parseReview(deep.text).response.allowed, false);
  assert.equal(parseReview(deep.text).response.status?.code, 400);
  assert.match(parseReview(deep.text).response.status?.message ?? "", /deeper than 64 levels/);

  // The reported attack: 4.77 MiB of nested arrays, declared and chunked.
  const huge = "[".repeat(2_500_000) + "]".repeat(2_500_000);
  for (const isChunked of [false, true]) {
    const answer = await postJson(s.ca, s.port, "/mutate-v1-pvc", huge, { isChunked }).catch((error: NodeJS.ErrnoException) => {
      // The 413 goes out once the headers are read and the connection closes after it; a client
      // still sending may see the close first. Either way the body was refused unread.
      assert.match(error.code ?? "", /^(EPIPE|ECONNRESET)$/);
      return undefined;
    });
    if (answer === undefined) continue;
    assert.equal(answer.status, 200);
    assert.equal(parseReview(answer.text).response.status?.code, 413, `chunked: ${isChunked}`);
    assert.equal(answer.headers["connection"], "close");
  }

  // A million tiny values within the size limit: refused before they are built.
  const wide = `[${"0,".repeat(1_000_000)}0]`;
  const values = await postJson(s.ca, s.port, "/validate-v1-pvc", wide);
  assert.equal(parseReview(values.text).response.status?.code, 400);
  assert.match(parseReview(values.text).response.status?.message ?? "", /more than 100000 JSON values/);

  assert.equal((await callHttps(s.ca, s.port, { path: "/healthz" })).text, "ok\n");
  const normal = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "after" }))).text);
  assert.equal(normal.response.uid, "after");
});

test("refuses labels and annotations beyond Kubernetes limits before the handler validates them", async (t) => {
  const seen: string[] = [];
  const spy: ReviewHandler = async (request) => {
    seen.push(request.uid);
    return allowed("spy");
  };
  const s = await startServer(t, { handlers: { mutate: spy, validate: spy } });

  // The reported 530k-label PVC (6.4 MiB) is over the body limit.
  const huge = await postJson(s.ca, s.port, "/mutate-v1-pvc", reviewWithLabels("huge", manyLabels(530_000))).catch((error: NodeJS.ErrnoException) => {
    assert.match(error.code ?? "", /^(EPIPE|ECONNRESET)$/, "refused unread, the connection closed");
    return undefined;
  });
  if (huge !== undefined) assert.equal(parseReview(huge.text).response.status?.code, 413);

  const tooMany = parseReview((await postJson(s.ca, s.port, "/mutate-v1-pvc", reviewWithLabels("many", manyLabels(2_000)))).text);
  assert.deepEqual(
    { uid: tooMany.response.uid, allowed: tooMany.response.allowed, code: tooMany.response.status?.code },
    { uid: "many", allowed: false, code: 400 },
  );
  assert.match(tooMany.response.status?.message ?? "", /more than 1000 labels/);

  const longValue = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", reviewWithLabels("long", { app: "x".repeat(64) }))).text);
  assert.equal(longValue.response.status?.code, 400);
  const longName = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", reviewWithLabels("name", { [`example.com/${"n".repeat(64)}`]: "v" }))).text);
  assert.equal(longName.response.status?.code, 400);

  const annotated = pvcCreateReview({ uid: "annotations" }) as { request: { object: { metadata: { annotations?: Record<string, string> } } } };
  annotated.request.object.metadata.annotations = { a: "x".repeat(200 * 1024), b: "y".repeat(100 * 1024) };
  assert.equal(parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", annotated)).text).response.status?.code, 400);

  assert.deepEqual(seen, [], "the handler never saw any of them");
  const fine = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", reviewWithLabels("fine", manyLabels(50)))).text);
  assert.equal(fine.response.allowed, true);
  assert.deepEqual(seen, ["fine"]);
});

test("answers at once over the bound on reviews in progress: the validator 429, the mutator admits unpatched", async (t) => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrived: () => void = () => {};
  const hasArrived = new Promise<void>((resolve) => (arrived = resolve));
  const slow: ReviewHandler = async () => {
    arrived();
    await held;
    return allowed("held");
  };
  const s = await startServer(t, { handlers: { mutate: slow, validate: slow }, maxConcurrentReviews: 1 });
  const first = postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "first" }));
  await hasArrived;

  const shed = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "second" }))).text);
  assert.equal(shed.response.allowed, false);
  assert.equal(shed.response.status?.code, 429);
  const open = parseReview((await postJson(s.ca, s.port, "/mutate-v1-pvc", pvcCreateReview({ uid: "third" }))).text);
  assert.equal(open.response.allowed, true);
  assert.equal(open.response.patch, undefined);
  assert.match(open.response.warnings?.[0] ?? "", /admitted unchanged/);

  release();
  assert.equal(parseReview((await first).text).response.uid, "first");
  assert.equal(parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "fourth" }))).text).response.uid, "fourth");
});

test("cuts bare connections, slow headers and stalled bodies after the configured timeouts", async (t) => {
  const transport = { ...defaultSettings.transport, handshakeTimeoutMs: 300, headersTimeoutMs: 300, requestTimeoutMs: 600 };
  const s = await startServer(t, { transport });

  // A TCP connection that never starts TLS.
  const bare = netConnect({ host: "127.0.0.1", port: s.port });
  await new Promise((resolve) => bare.once("connect", resolve));
  const bareMs = await msUntilClosed(bare, 10 * transport.handshakeTimeoutMs);

  // Headers one byte at a time.
  const slowHeaders = await openTls(s);
  slowHeaders.on("error", () => {});
  slowHeaders.write("POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\n");
  const trickle = setInterval(() => {
    if (!slowHeaders.destroyed) slowHeaders.write("x");
  }, 50);
  const headersMs = await msUntilClosed(slowHeaders, 10 * transport.headersTimeoutMs).finally(() => clearInterval(trickle));

  // A body that declares 100 kB, sends 1 kB and stalls.
  const stalled = await openTls(s);
  stalled.on("error", () => {});
  stalled.write("POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n");
  stalled.write("{".padEnd(1000, " "));
  const bodyMs = await msUntilClosed(stalled, 10 * transport.requestTimeoutMs);

  t.diagnostic(`closed after: bare ${Math.round(bareMs)} ms, slow headers ${Math.round(headersMs)} ms, stalled body ${Math.round(bodyMs)} ms`);
  // The server is fine, and the stalled body's bytes were given back.
  const after = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "after-stall" }))).text);
  assert.equal(after.response.uid, "after-stall");
});

test("bounds the body bytes held by reviews in progress: a body the budget cannot hold is refused with 429", async (t) => {
  const s = await startServer(t, {
    maxBodyBytes: 100_000,
    maxInFlightBodyBytes: 200_000,
    transport: { ...defaultSettings.transport, headersTimeoutMs: 2_000, requestTimeoutMs: 4_000 },
  });
  const stalled: TLSSocket[] = [];
  t.after(() => stalled.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 2; i += 1) {
    const socket = await openTls(s);
    socket.on("error", () => {});
    socket.write("POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 90000\r\n\r\n{");
    stalled.push(socket);
  }
  // Let the server take both in.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const refused = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", { ...pvcCreateReview({ uid: "third" }), pad: "p".repeat(30_000) })).text);
  assert.equal(refused.response.status?.code, 429);
  // Small reviews still fit in what is left.
  assert.equal(parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", pvcCreateReview({ uid: "small" }))).text).response.uid, "small");
  for (const socket of stalled) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const later = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", { ...pvcCreateReview({ uid: "later" }), pad: "p".repeat(30_000) })).text);
  assert.equal(later.response.uid, "later", "the bytes of closed connections are given back");
});

test("closes connections beyond the cap as they arrive", async (t) => {
  const s = await startServer(t, { transport: { ...defaultSettings.transport, maxConnections: 3 } });
  const held: TLSSocket[] = [];
  t.after(() => held.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 3; i += 1) held.push(await openTls(s));
  await assert.rejects(
    openTls(s),
    (error: NodeJS.ErrnoException) => ["ECONNRESET", "EPIPE"].includes(error.code ?? "") || /socket disconnected|closed/i.test(error.message),
  );
  held.pop()!.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const again = await openTls(s);
  held.push(again);
});

test("speaks TLS 1.2 only with AEAD suites, and refuses client-initiated renegotiation", async (t) => {
  const s = await startServer(t);
  const cbcOnly = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA256:AES128-SHA";
  await assert.rejects(openTls(s, { ciphers: cbcOnly, maxVersion: "TLSv1.2" }), /handshake failure|no cipher|alert/i);
  await assert.rejects(openTls(s, { maxVersion: "TLSv1.1", minVersion: "TLSv1" }), /protocol|version|alert/i);

  const aead = await openTls(s, { ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256", maxVersion: "TLSv1.2" });
  assert.equal(aead.getProtocol(), "TLSv1.2");
  assert.equal(aead.getCipher().standardName, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  const chacha = await openTls(s, { ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305", maxVersion: "TLSv1.2" });
  assert.equal(chacha.getProtocol(), "TLSv1.2");
  chacha.destroy();
  const modern = await openTls(s);
  assert.equal(modern.getProtocol(), "TLSv1.3");
  modern.destroy();

  aead.on("error", () => {});
  const closed = msUntilClosed(aead, 5_000);
  const outcome = await Promise.race([
    new Promise<string>((resolve) => {
      aead.renegotiate({}, (error) => resolve(error ? `failed: ${error.message}` : "renegotiated"));
    }),
    closed.then(() => "closed by the server"),
  ]);
  t.diagnostic(`renegotiation: ${outcome}`);
  assert.equal(outcome, "closed by the server");
  assert.equal((await callHttps(s.ca, s.port, { path: "/healthz" })).status, 200);
});

test("serves metrics and readiness detail on the operations port only", async (t) => {
  const s = await startServer(t);
  const onWebhookPort = await callHttps(s.ca, s.port, { path: "/metrics" });
  assert.equal(onWebhookPort.status, 404);
  assert.deepEqual(JSON.parse(onWebhookPort.text), { error: "not-found", message: "pvc-guardian serves nothing at this path." });
  assert.doesNotMatch(onWebhookPort.text, /pvc_guardian_/);
  assert.equal((await callHttps(s.ca, s.port, { path: "/readyz/tls" })).status, 404);
  const verbose = await callHttps(s.ca, s.port, { path: "/readyz?verbose" });
  assert.match(verbose.text, /^(ok|not ready)\n$/);

  const metrics = await callHttp(s.opsPort, "/metrics");
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /pvc_guardian_admission_requests_total/);
  assert.match((await callHttp(s.opsPort, "/readyz?verbose")).text, /\[[+-]\]tls/);
});

test("answers a token whose crit header holds CR/LF or non-Latin-1 text with a JSON 401, and logs none of it raw", async (t) => {
  const { publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  let fetches = 0;
  const log = createRecordingLogger();
  const verifier = createServiceAccountTokenVerifier({
    ...signingKeyReadSettings,
    keys: {
      fetchIssuer: async () => "https://kubernetes.default.svc",
      fetchJwks: async () => {
        fetches += 1;
        return { keys: [jwk] };
      },
    },
    audience: "pvc-guardian",
    log,
  });
  const readApi = createReadApiRoutes({
    verifier,
    allowedServiceAccounts: ["system:serviceaccount:ops:reader"],
    catalog: { lookup: (_identity, nowMs) => ({ readable: true, refreshedAtMs: nowMs, snapshots: [] }) },
    policy: DEFAULT_POLICY,
    requestTimeoutMs: defaultSettings.readApi.requestTimeoutMs,
    log,
  });
  const s = await startServer(t, { extraRoutes: [readApi], log });
  const consoleErrors: unknown[] = [];
  const originalConsoleError = console.error;
  console.error = (...args: unknown[]) => void consoleErrors.push(args);
  t.after(() => {
    console.error = originalConsoleError;
  });

  const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  for (const crit of [["x\r\nX-Injected: yes"], ["kritisch-é€-✓"], ["b64"]]) {
    const token = `${segment({ alg: "RS256", kid: "k1", crit })}.${segment({ sub: "system:serviceaccount:ops:reader", aud: "pvc-guardian" })}.${Buffer.from("sig").toString("base64url")}`;
    const answer = await callHttps(s.ca, s.port, { path: "/v1/audit", headers: { authorization: `Bearer ${token}` } });
    assert.equal(answer.status, 401, answer.text);
    assert.match(String(answer.headers["content-type"]), /^application\/json/);
    const body = JSON.parse(answer.text) as { error: string; message: string };
    assert.equal(body.error, "unauthorized");
    assert.equal(body.message, "the token is not a valid ServiceAccount token");
    assert.doesNotMatch(String(answer.headers["www-authenticate"]), /Injected|é|✓/);
  }
  assert.deepEqual(consoleErrors, []);
  const logged = JSON.stringify(log.entries);
  assert.doesNotMatch(logged, /Injected|kritisch/);
  assert.ok(fetches >= 1);
});

test("answers admission only to callers with a client certificate from the configured CA, and still serves the probes", async (t) => {
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const s = await startServer(t, { clientCaPath: pki.ca.certPath }, pki);
  const review = JSON.stringify(pvcCreateReview({ uid: "anonymous" }));
  const anonymous = parseReview((await postJson(s.ca, s.port, "/validate-v1-pvc", review)).text);
  assert.equal(anonymous.response.allowed, false);
  assert.equal(anonymous.response.status?.code, 403);
  assert.equal((await callHttps(s.ca, s.port, { path: "/healthz" })).status, 200, "the kubelet presents no certificate");

  const client = await issueClientCertificate(pki.ca, path.join(pki.dir, "client"), { commonName: "kube-apiserver" });
  const authenticated = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect(
      { host: "127.0.0.1", port: s.port, ca: s.ca, servername: "localhost", cert: client.certPem, key: readFileSync(client.keyPath, "utf8") },
      () => {
        const body = JSON.stringify(pvcCreateReview({ uid: "apiserver" }));
        socket.write(
          `POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      },
    );
    let text = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
  const answer = parseReview(authenticated.slice(authenticated.indexOf("\r\n\r\n") + 4));
  assert.equal(answer.response.uid, "apiserver");
  assert.doesNotMatch(answer.response.status?.message ?? "", /Only the Kubernetes API server/, authenticated);
});
