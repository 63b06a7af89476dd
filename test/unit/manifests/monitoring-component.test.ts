// The optional monitoring component, checked structurally: the Prometheus Operator's CRDs are not
// in the test apiserver, so this is what stands between a typo and an alert that never fires.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { loadConfig } from "../../../webhook/config.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { metricsPath } from "../../../webhook/server/ops-routes.ts";
import { findObject, manifestsDir, readKustomization, readObjects, type ManifestObject } from "../../support/manifest-files.ts";

type Rule = { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> };
type PrometheusRule = ManifestObject & { spec: { groups: { name: string; rules: Rule[] }[] } };
type PodMonitor = ManifestObject & {
  spec: {
    jobLabel?: string;
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: { matchNames: string[] };
    podMetricsEndpoints: { port: string; scheme: string; path: string }[];
  };
};
type Deployment = ManifestObject & {
  spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } };
};

/**
 * Metrics the alerts need that the server does not register yet, with what they must mean. When
 * one is added to webhook/server/metrics.ts this test fails until it is removed from this list.
 */
const pendingMetrics: Record<string, string> = {};

const componentDir = path.join(manifestsDir, "components", "monitoring");
const objects = readObjects(componentDir);
const base = readObjects(manifestsDir);

async function registeredMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics({ collectProcessMetrics: false });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    // Histograms expose these series under the family name.
    if (String(metric.type) === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(`${metric.name}${suffix}`);
  }
  return names;
}

describe("the monitoring component", () => {
  it("is a kustomize Component listing a PodMonitor and a PrometheusRule", () => {
    const kustomization = readKustomization(componentDir) as { kind?: string; apiVersion?: string };
    assert.equal(kustomization.kind, "Component");
    assert.equal(kustomization.apiVersion, "kustomize.config.k8s.io/v1alpha1");
    assert.deepEqual(objects.map((o) => `${o.apiVersion} ${o.kind}`).sort(), [
      "monitoring.coreos.com/v1 PodMonitor",
      "monitoring.coreos.com/v1 PrometheusRule",
    ]);
  });

  it("scrapes /metrics from the pods' metrics port, which the server serves and no Service exposes", () => {
    const monitor = findObject<PodMonitor>(objects, "PodMonitor", "pvc-guardian", "pvc-guardian");
    const deployment = findObject<Deployment>(base, "Deployment", "pvc-guardian", "pvc-guardian");
    const podLabels = deployment.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(podLabels[key], value);
    assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [deployment.metadata.namespace]);
    // The alerts select job="pvc-guardian".
    assert.equal(podLabels[monitor.spec.jobLabel ?? ""], "pvc-guardian");
    const endpoint = monitor.spec.podMetricsEndpoints[0]!;
    const port = deployment.spec.template.spec.containers[0]!.ports.find((p) => p.name === endpoint.port);
    assert.ok(port, `the container has a port named ${endpoint.port}`);
    const config = loadConfig({});
    assert.ok(config.ok);
    assert.equal(port.containerPort, config.config.listen.opsPort, "the operations port, where /metrics is served");
    assert.equal(endpoint.scheme, "http");
    assert.equal(endpoint.path, metricsPath);
    const service = findObject<ManifestObject & { spec: { ports: { targetPort: string | number }[] } }>(base, "Service", "pvc-guardian", "pvc-guardian");
    assert.ok(
      !service.spec.ports.some((p) => p.targetPort === endpoint.port || p.targetPort === port.containerPort),
      "the webhook Service does not expose metrics",
    );
  });

  it("alerts on each failure the operations guide describes, with a severity and a runbook", () => {
    const rule = findObject<PrometheusRule>(objects, "PrometheusRule", "pvc-guardian", "pvc-guardian");
    const alerts = rule.spec.groups.flatMap((g) => g.rules);
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      "PvcGuardianAdmissionErrors",
      "PvcGuardianBackupOverdue",
      "PvcGuardianCatalogStale",
      "PvcGuardianCertificateExpiresSoon",
      "PvcGuardianNoLeader",
      "PvcGuardianRepositoryUnreadable",
      "PvcGuardianRestoreNotVerified",
      "PvcGuardianRestoreUnverified",
      "PvcGuardianSweepHeld",
      "PvcGuardianWebhookUnreachable",
    ]);
    for (const alert of alerts) {
      assert.ok(["critical", "warning"].includes(alert.labels["severity"] ?? ""), `${alert.alert} has a severity`);
      assert.equal(alert.annotations["runbook"], `README.md#${alert.alert.toLowerCase()}`);
      assert.ok(alert.annotations["summary"]);
      assert.ok(alert.for === undefined || /^\d+[smh]$/.test(alert.for), `${alert.alert} for: ${alert.for}`);
    }
  });

  it("uses only metric names the server registers, or ones listed as still missing", async () => {
    const registered = await registeredMetricNames();
    const rule = findObject<PrometheusRule>(objects, "PrometheusRule", "pvc-guardian", "pvc-guardian");
    const used = new Set(rule.spec.groups.flatMap((g) => g.rules).flatMap((a) => a.expr.match(/\bpvc_guardian_[a-z_]+/g) ?? []));
    assert.ok(used.has("pvc_guardian_tls_certificate_not_after_seconds"));
    assert.ok(used.has("pvc_guardian_admission_requests_total"));
    for (const name of used) {
      assert.ok(
        registered.has(name) || Object.hasOwn(pendingMetrics, name),
        `${name} is neither registered by webhook/server/metrics.ts nor listed as pending`,
      );
    }
    for (const name of Object.keys(pendingMetrics)) {
      assert.ok(!registered.has(name), `${name} is registered now: remove it from pendingMetrics`);
      assert.ok(used.has(name), `${name} is listed as pending but no alert uses it`);
    }
  });

  it("alerts on the restore verdicts the reconciler exports, by label values the counter starts at 0", async () => {
    const metrics = createMetrics({ collectProcessMetrics: false });
    const exposition = await metrics.render();
    const series = new Set([...exposition.matchAll(/^pvc_guardian_restore_verifications_total\{verdict="([a-z]+)"\} 0$/gm)].map((m) => m[1]));
    assert.deepEqual([...series].sort(), ["empty", "failed", "mismatch", "unverified", "verified"]);
    const rule = findObject<PrometheusRule>(objects, "PrometheusRule", "pvc-guardian", "pvc-guardian");
    const alerts = new Map(rule.spec.groups.flatMap((g) => g.rules).map((a) => [a.alert, a]));
    const critical = alerts.get("PvcGuardianRestoreNotVerified")!;
    assert.equal(critical.labels["severity"], "critical");
    const matched = /pvc_guardian_restore_verifications_total\{verdict=~"([a-z|]+)"\}/.exec(critical.expr);
    assert.ok(matched, critical.expr);
    assert.deepEqual(matched[1]!.split("|").sort(), ["empty", "failed", "mismatch"]);
    for (const verdict of matched[1]!.split("|")) assert.ok(series.has(verdict), `${verdict} is a label value the counter exports`);
    const warning = alerts.get("PvcGuardianRestoreUnverified")!;
    assert.equal(warning.labels["severity"], "warning");
    assert.match(warning.expr, /pvc_guardian_restore_verifications_total\{verdict="unverified"\}/);
    // A verified restore must never raise an alert.
    for (const alert of alerts.values()) assert.doesNotMatch(alert.expr, /verdict=~?"(?:[^"]*\|)?verified(?:\|[^"]*)?"/, alert.alert);
  });
});
