// Liveness, readiness and metrics. /healthz answers as long as the event loop serves requests and
// deliberately checks nothing else: restarting the pod cannot fix Kopia or the API server.

import { Hono } from 'hono';
import { formatReadiness, type Readiness } from './readiness.ts';
import type { Metrics } from './metrics.ts';

export const healthzPath = '/healthz';
export const readyzPath = '/readyz';
export const metricsPath = '/metrics';

export type OpsRoutesDeps = {
  readiness: Readiness;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
};

export function createOpsRoutes(deps: OpsRoutesDeps): Hono {
  const app = new Hono();
  app.get(healthzPath, (c) => c.text('ok\n'));
  app.get(readyzPath, (c) => {
    const report = deps.readiness.evaluate();
    const isVerbose = c.req.query('verbose') !== undefined;
    return c.text(formatReadiness(report, isVerbose), report.ok ? 200 : 503);
  });
  app.get(`${readyzPath}/:check`, (c) => {
    const name = c.req.param('check');
    const check = deps.readiness.evaluate().checks.find((entry) => entry.name === name);
    if (check === undefined) return c.text(`no readiness check named ${name}\n`, 404);
    const line = check.ok ? `[+]${check.name} ok\n` : `[-]${check.name} failed: ${check.detail ?? 'no detail'}\n`;
    return c.text(line, check.ok ? 200 : 503);
  });
  app.get(metricsPath, async (c) => {
    const body = await deps.metrics.render();
    return c.body(body, 200, { 'Content-Type': deps.metrics.contentType });
  });
  return app;
}
