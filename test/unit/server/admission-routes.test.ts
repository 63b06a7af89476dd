import { test } from "node:test";
import assert from "node:assert/strict";
import { createAdmissionRoutes, mutatePath, validatePath } from "../../../webhook/server/admission-routes.ts";
import type { AdmissionReviewOut, ReviewHandler, ReviewOutcome } from "../../../webhook/admission/admission-review.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { recordingLog } from "../../support/recording-log.ts";

function review(uid: string, operation = "CREATE"): Record<string, unknown> {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { uid, operation, kind: { group: "", version: "v1", kind: "Thing" }, object: { metadata: { name: "x" } } },
  };
}

// A handler in miniature: echoes the uid and answers from the request, as the protocol layer does.
function answering(response: Partial<AdmissionReviewOut["response"]>): ReviewHandler & { seen: unknown[] } {
  const seen: unknown[] = [];
  const handler = async (body: unknown): Promise<ReviewOutcome> => {
    seen.push(body);
    const request = (body as { request: { uid: string; operation: string } }).request;
    return {
      review: { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: request.uid, allowed: true, ...response } },
      operation: request.operation,
      reason: "fresh",
    };
  };
  return Object.assign(handler, { seen });
}

function setup(overrides: { mutate?: ReviewHandler; validate?: ReviewHandler; maxBodyBytes?: number; deadlineMs?: number } = {}) {
  const log = recordingLog();
  const metrics = createMetrics({ collectProcessMetrics: false });
  const app = createAdmissionRoutes({
    mutate: overrides.mutate ?? answering({ patchType: "JSONPatch", patch: Buffer.from("[]").toString("base64") }),
    validate: overrides.validate ?? answering({}),
    maxBodyBytes: overrides.maxBodyBytes ?? 1024,
    deadlineMs: overrides.deadlineMs,
    log,
    metrics,
  });
  return { app, log, metrics };
}

function post(path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) {
  return { path, init: { method: "POST", body, headers } };
}

async function send(app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }, req: ReturnType<typeof post>) {
  const res = await app.request(req.path, req.init);
  assert.equal(res.status, 200, "every admission answer is HTTP 200");
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return { res, body: (await res.json()) as AdmissionReviewOut };
}

function counterValue(text: string, webhook: string, outcome: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`pvc_guardian_admission_requests_total{webhook="${webhook}",outcome="${outcome}"}`));
  assert.ok(line, `counter line for ${webhook}/${outcome}`);
  return Number(line.split(" ").at(-1));
}

test("passes the parsed review to the handler and answers with its AdmissionReview", async () => {
  const validate = answering({ warnings: ["note"] });
  const { app, log } = setup({ validate });
  const { body } = await send(app, post(validatePath, JSON.stringify(review("u-1"))));
  assert.deepEqual(validate.seen, [review("u-1")]);
  assert.deepEqual(body, { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u-1", allowed: true, warnings: ["note"] } });
  const line = log.entries.find((e) => e.message === "admission review answered");
  assert.ok(line);
  assert.equal(line.level, "info");
  assert.equal(line.fields["webhook"], "validate");
  assert.equal(line.fields["operation"], "CREATE");
  assert.equal(line.fields["allowed"], true);
  assert.equal(line.fields["patched"], false);
  assert.equal(line.fields["reason"], "fresh");
  assert.equal(typeof line.fields["durationMs"], "number");
});

test("routes mutate and validate to their own handlers and counts patched and denied outcomes", async () => {
  const validate: ReviewHandler = async (body) => ({
    review: {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: (body as { request: { uid: string } }).request.uid, allowed: false, status: { code: 403, message: "no", reason: "Forbidden" } },
    },
    operation: "CREATE",
    reason: "unknown",
  });
  const { app, metrics, log } = setup({ validate });
  const mutated = await send(app, post(mutatePath, JSON.stringify(review("m-1"))));
  assert.equal(mutated.body.response.patchType, "JSONPatch");
  const validated = await send(app, post(validatePath, JSON.stringify(review("v-1"))));
  assert.equal(validated.body.response.allowed, false);
  const text = await metrics.render();
  assert.equal(counterValue(text, "mutate", "patched"), 1);
  assert.equal(counterValue(text, "validate", "denied"), 1);
  assert.equal(counterValue(text, "validate", "allowed"), 0);
  assert.equal(log.entries.filter((e) => e.message === "admission review answered").at(-1)?.fields["reason"], "unknown");
});

test("accepts application/json with parameters and in any case", async () => {
  const { app } = setup();
  for (const contentType of ["application/json; charset=utf-8", "Application/JSON"]) {
    const { body } = await send(app, post(validatePath, JSON.stringify(review("c-1")), { "content-type": contentType }));
    assert.equal(body.response.allowed, true, contentType);
  }
});

test("answers a wrong or missing content type with a 400 AdmissionReview without calling the handler", async () => {
  const validate = answering({});
  const { app, metrics } = setup({ validate });
  for (const headers of [{ "content-type": "text/plain" }, { "content-type": "application/jsonx" }, {} as Record<string, string>]) {
    const { body } = await send(app, post(validatePath, JSON.stringify(review("ct")), headers));
    assert.equal(body.kind, "AdmissionReview");
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status?.code, 400);
    assert.match(body.response.status?.message ?? "", /application\/json/);
  }
  assert.equal(validate.seen.length, 0);
  assert.equal(counterValue(await metrics.render(), "validate", "error"), 3);
});

test("answers malformed JSON and an empty body with a 400 AdmissionReview", async () => {
  const { app } = setup();
  for (const raw of ['{"apiVersion":', "", "not json"]) {
    const { body } = await send(app, post(validatePath, raw));
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status?.code, 400);
    assert.equal(body.response.uid, "");
    assert.match(body.response.status?.message ?? "", /not valid JSON/);
  }
});

test("answers a body over the limit with a 413 AdmissionReview, counted while streaming", async () => {
  const validate = answering({});
  const { app } = setup({ validate, maxBodyBytes: 64 });
  let pulls = 0;
  // A body that never ends: only a reader that stops at the limit can answer.
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      controller.enqueue(new Uint8Array(16).fill(0x20));
    },
  });
  const res = await app.request(validatePath, {
    method: "POST",
    body: endless,
    headers: { "content-type": "application/json" },
    duplex: "half",
  } as RequestInit);
  assert.equal(res.status, 200);
  const body = (await res.json()) as AdmissionReviewOut;
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 413);
  assert.equal(res.headers.get("connection"), "close");
  assert.ok(pulls <= 8, `stopped reading soon after the limit (${pulls} chunks)`);
  assert.equal(validate.seen.length, 0);
});

test("refuses a declared Content-Length over the limit before reading the body", async () => {
  const { app } = setup({ maxBodyBytes: 64 });
  const payload = JSON.stringify({ ...review("big"), padding: "x".repeat(200) });
  const { body } = await send(app, post(validatePath, payload, { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }));
  assert.equal(body.response.status?.code, 413);
});

test("accepts a body exactly at the limit", async () => {
  const payload = JSON.stringify(review("edge"));
  const { app } = setup({ maxBodyBytes: Buffer.byteLength(payload) });
  const { body } = await send(app, post(validatePath, payload));
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.uid, "edge");
});

test("denies with code 500 when the validating handler throws, echoing the uid", async () => {
  const { app, log, metrics } = setup({
    validate: async () => {
      throw new Error("catalog exploded");
    },
  });
  const { body } = await send(app, post(validatePath, JSON.stringify({ ...review("boom"), apiVersion: "admission.k8s.io/v1" })));
  assert.equal(body.response.uid, "boom");
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 500);
  assert.match(body.response.status?.message ?? "", /catalog exploded/);
  assert.ok(log.entries.some((e) => e.level === "error" && e.message === "admission handler failed"));
  assert.equal(counterValue(await metrics.render(), "validate", "error"), 1);
});

test("allows with a warning and no patch when the mutating handler throws", async () => {
  const { app } = setup({
    mutate: () => {
      throw new Error("synchronous failure");
    },
  });
  const { body } = await send(app, post(mutatePath, JSON.stringify(review("open"))));
  assert.equal(body.response.uid, "open");
  assert.equal(body.response.allowed, true);
  assert.equal(body.response.patch, undefined);
  assert.equal(body.response.warnings?.length, 1);
  assert.match(body.response.warnings?.[0] ?? "", /synchronous failure/);
});

test("treats a handler answer that is not an AdmissionReview as a handler error", async () => {
  const { app } = setup({ validate: async () => ({ review: undefined }) as unknown as ReviewOutcome });
  const { body } = await send(app, post(validatePath, JSON.stringify(review("odd"))));
  assert.equal(body.response.allowed, false);
  assert.equal(body.response.status?.code, 500);
});

test("answers with the error policy at the deadline and aborts the handler signal", async () => {
  let seenSignal: AbortSignal | undefined;
  const slow: ReviewHandler = (_body, signal) => {
    seenSignal = signal;
    return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
  };
  const { app, log } = setup({ validate: slow, mutate: slow, deadlineMs: 30 });
  const denied = await send(app, post(validatePath, JSON.stringify(review("late"))));
  assert.equal(denied.body.response.allowed, false);
  assert.equal(denied.body.response.status?.code, 500);
  assert.match(denied.body.response.status?.message ?? "", /did not answer in time/);
  assert.equal(seenSignal?.aborted, true);
  const allowed = await send(app, post(mutatePath, JSON.stringify(review("late-m"))));
  assert.equal(allowed.body.response.allowed, true);
  assert.equal(log.entries.filter((e) => e.message === "admission review answered").at(-1)?.fields["reason"], "DeadlineExceeded");
});

test("never logs the review body at info", async () => {
  const { app, log } = setup();
  await send(
    app,
    post(validatePath, JSON.stringify({ ...review("secret"), request: { ...(review("secret")["request"] as object), object: { data: "top-secret-value" } } })),
  );
  for (const entry of log.entries.filter((e) => e.level !== "debug")) {
    assert.doesNotMatch(JSON.stringify(entry), /top-secret-value/);
  }
});

test("still answers with an AdmissionReview when logging throws", async () => {
  const throwing = () => {
    throw new Error("log destination closed");
  };
  const app = createAdmissionRoutes({
    mutate: answering({}),
    validate: async () => {
      throw new Error("handler failed too");
    },
    maxBodyBytes: 1024,
    log: { debug: throwing, info: throwing, warn: throwing, error: throwing },
    metrics: createMetrics({ collectProcessMetrics: false }),
  });
  const allowedAnswer = await send(app, post(mutatePath, JSON.stringify(review("logless"))));
  assert.equal(allowedAnswer.body.response.uid, "logless");
  assert.equal(allowedAnswer.body.response.allowed, true);
  const deniedAnswer = await send(app, post(validatePath, JSON.stringify(review("logless-2"))));
  assert.equal(deniedAnswer.body.response.allowed, false);
  assert.equal(deniedAnswer.body.response.status?.code, 500);
});
