// Liveness, readiness and metrics, split over two ports. /healthz answers as long as the event
// loop serves requests and deliberately checks nothing else: restarting the pod cannot fix Kopia
// or the API server.
//
// The webhook port, which every pod in the cluster can reach, keeps only what the kubelet probes:
// /healthz and a terse /readyz (a status code and one word). The detail (which checks failed and
// why, which names the repository path and its error text) and /metrics (which names PVCs per
// namespace) are on the operations port, which the NetworkPolicy opens to the monitoring
// namespace only.

import { Hono } from "hono";
import { installErrorAnswers } from "./app-errors.ts";
import type { Logger } from "../domain/logger.ts";
import { formatReadiness, type Readiness } from "./readiness.ts";
import type { Metrics } from "./metrics.ts";
import { healthzPath, readyzPath, metricsPath } from "./route-paths.ts";
export { healthzPath, readyzPath, metricsPath };

export type ProbeRoutesDeps = {
  readiness: Readiness;
  log: Logger;
};

/** For the webhook port: /healthz and /readyz, saying nothing beyond ready or not. */
export function createProbeRoutes(deps: ProbeRoutesDeps): Hono {
  const app = new Hono();
  app.get(healthzPath, (c) => c.text("ok\n"));
  app.get(readyzPath, (c) => {
    const report = deps.readiness.evaluate();
    return report.ok ? c.text("ok\n") : c.text("not ready\n", 503);
  });
  installErrorAnswers(app, deps.log);
  return app;
}

export type OpsRoutesDeps = {
  readiness: Readiness;
  metrics: Pick<Metrics, "render" | "contentType">;
  log: Logger;
};

/** For the operations port: the same probes, readiness in detail, and metrics. */
export function createOpsRoutes(deps: OpsRoutesDeps): Hono {
  const app = new Hono();
  app.get(healthzPath, (c) => c.text("ok\n"));
  app.get(readyzPath, (c) => {
    const report = deps.readiness.evaluate();
    const isVerbose = c.req.query("verbose") !== undefined;
    return c.text(formatReadiness(report, isVerbose), report.ok ? 200 : 503);
  });
  app.get(`${readyzPath}/:check`, (c) => {
    const name = c.req.param("check");
    const check = deps.readiness.evaluate().checks.find((entry) => entry.name === name);
    if (check === undefined) return c.text(`no readiness check named ${JSON.stringify(name)}\n`, 404);
    const line = check.ok ? `[+]${check.name} ok\n` : `[-]${check.name} failed: ${check.detail ?? "no detail"}\n`;
    return c.text(line, check.ok ? 200 : 503);
  });
  app.get(metricsPath, async (c) => {
    const body = await deps.metrics.render();
    return c.body(body, 200, { "Content-Type": deps.metrics.contentType });
  });
  installErrorAnswers(app, deps.log);
  return app;
}
