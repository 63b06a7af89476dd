// CPU per review of the admission route in-process (app.request, no sockets or TLS), with its
// parts switched on one at a time, against a bare Hono route that reads the body and answers a
// fixed AdmissionReview. Shows where the transport's cost per review goes.
//
//   ./node_modules/.bin/node bench/admission/route-cost.ts

import { Hono } from "hono";
import { pino } from "pino";
import { allowed, type ReviewHandler } from "../../webhook/admission/admission-review.ts";
import { createAdmissionRoutes } from "../../webhook/server/admission-routes.ts";
import type { Logger } from "../../webhook/domain/logger.ts";
import { createMetrics } from "../../webhook/server/metrics.ts";
import { createSilentLogger } from "../../test/support/recording-logger.ts";
import { pvcCreateReview } from "./reviews.ts";
import { admissionRouteSettings } from "../../test/support/default-settings.ts";

const answer: ReviewHandler = async () => allowed("fixed");
const route = (log: Logger, deadlineMs?: number) =>
  createAdmissionRoutes({
    ...admissionRouteSettings,
    mutate: answer,
    validate: answer,
    maxBodyBytes: 7 * 1024 * 1024,
    deadlineMs,
    log,
    metrics: createMetrics({ collectProcessMetrics: false }),
  });

const variants: [string, Hono][] = [
  [
    "bare: read body, fixed answer",
    new Hono().post("/validate-v1-pvc", async (c) => {
      await c.req.text();
      return c.json({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "", allowed: true } });
    }),
  ],
  ["route: parse, metrics, no log", route(createSilentLogger())],
  ["route: + deadline", route(createSilentLogger(), 9_000)],
  ["route: + pino line (default dest)", route(pino({ level: "info" }, pino.destination("/dev/null")), 9_000)],
  ["route: + pino line (buffered dest)", route(pino({ level: "info" }, pino.destination({ dest: "/dev/null", minLength: 4096 })), 9_000)],
];

const body = JSON.stringify(pvcCreateReview("5c0f3a5e-0000-4000-8000-000000000001"));
const init = { method: "POST", body, headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) } };
const iterations = 20_000;
for (const round of ["warm-up", "measured"]) {
  for (const [name, app] of variants) {
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i += 1) await (await app.request("/validate-v1-pvc", init)).text();
    const used = process.cpuUsage(before);
    if (round === "measured") console.log(`${name.padEnd(38)} ${((used.user + used.system) / iterations).toFixed(1)} µs CPU per review`);
  }
}
