import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { createLeaderElector } from "../../../webhook/reconciler/leader-election.ts";
import { createReconciler } from "../../../webhook/reconciler/reconciler.ts";
import { admissionResponseCodes, admissionWebhooks, createMetrics } from "../../../webhook/server/metrics.ts";
import { reconcilerSettings } from "../../support/default-settings.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { createInMemoryObjects } from "../reconciler/in-memory-objects.ts";

// The series as Prometheus scrapes them: names, labels and values read from the exposition text.

/** The value of one series, or undefined when the scrape has no such line. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const freshMetrics = () => createMetrics({ collectProcessMetrics: false });

describe("metrics", () => {
  it("starts each webhook's answer codes and its requests in flight at 0", async () => {
    const text = await freshMetrics().render();
    for (const webhook of admissionWebhooks) {
      for (const code of admissionResponseCodes) {
        assert.equal(sample(text, `pvc_guardian_admission_responses_total{webhook="${webhook}",code="${code}"}`), 0, `${webhook} ${code}`);
      }
      assert.equal(sample(text, `pvc_guardian_admission_requests_in_flight{webhook="${webhook}"}`), 0, webhook);
    }
    assert.match(text, /^# TYPE pvc_guardian_admission_responses_total counter$/m);
    assert.match(text, /^# TYPE pvc_guardian_admission_requests_in_flight gauge$/m);
  });

  it("counts admission answers by status code, codes outside the known ones included", async () => {
    const metrics = freshMetrics();
    metrics.observeAdmission("validate", "denied", 0.001, 403);
    metrics.observeAdmission("validate", "denied", 0.001, 403);
    metrics.observeAdmission("mutate", "patched", 0.001, 200);
    metrics.observeAdmission("validate", "error", 0.001, 422);
    const text = await metrics.render();
    assert.equal(sample(text, 'pvc_guardian_admission_responses_total{webhook="validate",code="403"}'), 2);
    assert.equal(sample(text, 'pvc_guardian_admission_responses_total{webhook="mutate",code="200"}'), 1);
    assert.equal(sample(text, 'pvc_guardian_admission_responses_total{webhook="validate",code="422"}'), 1);
    assert.equal(sample(text, 'pvc_guardian_admission_responses_total{webhook="validate",code="200"}'), 0);
    // The outcome counter and the duration histogram keep counting as before.
    assert.equal(sample(text, 'pvc_guardian_admission_requests_total{webhook="validate",outcome="denied"}'), 2);
    assert.equal(sample(text, 'pvc_guardian_admission_request_duration_seconds_count{webhook="validate",outcome="denied"}'), 2);
  });

  it("counts admission requests in flight until each one is done, once", async () => {
    const metrics = freshMetrics();
    const inFlight = async (webhook: string) => sample(await metrics.render(), `pvc_guardian_admission_requests_in_flight{webhook="${webhook}"}`);
    const first = metrics.trackAdmission("validate");
    const second = metrics.trackAdmission("validate");
    const mutating = metrics.trackAdmission("mutate");
    assert.equal(await inFlight("validate"), 2);
    assert.equal(await inFlight("mutate"), 1);
    first();
    first();
    assert.equal(await inFlight("validate"), 1);
    second();
    mutating();
    assert.equal(await inFlight("validate"), 0);
    assert.equal(await inFlight("mutate"), 0);
  });

  it("counts API server requests by verb and code as the client reports them, none before the first", async () => {
    const metrics = freshMetrics();
    assert.doesNotMatch(await metrics.render(), /^pvc_guardian_kube_requests_total\{/m);
    metrics.countKubeRequest("get", "200");
    metrics.countKubeRequest("get", "200");
    metrics.countKubeRequest("patch", "409");
    metrics.countKubeRequest("watch", "200");
    metrics.countKubeRequest("get", "error");
    const text = await metrics.render();
    assert.match(text, /^# TYPE pvc_guardian_kube_requests_total counter$/m);
    assert.equal(sample(text, 'pvc_guardian_kube_requests_total{verb="get",code="200"}'), 2);
    assert.equal(sample(text, 'pvc_guardian_kube_requests_total{verb="patch",code="409"}'), 1);
    assert.equal(sample(text, 'pvc_guardian_kube_requests_total{verb="watch",code="200"}'), 1);
    assert.equal(sample(text, 'pvc_guardian_kube_requests_total{verb="get",code="error"}'), 1);
  });

  it("times every reconcile pass, whatever its outcome", async () => {
    const metrics = freshMetrics();
    assert.equal(sample(await metrics.render(), "pvc_guardian_reconcile_duration_seconds_count"), 0);
    const objects = createInMemoryObjects();
    const reconciler = createReconciler({ ...reconcilerSettings, objects, policy: DEFAULT_POLICY, log: createSilentLogger(), metrics: metrics.reconciler });
    await reconciler.runPass();
    objects.partialLists.add("PersistentVolumeClaim");
    await reconciler.runPass();
    const text = await metrics.render();
    assert.match(text, /^# TYPE pvc_guardian_reconcile_duration_seconds histogram$/m);
    assert.equal(sample(text, "pvc_guardian_reconcile_duration_seconds_count"), 2);
    assert.equal(sample(text, 'pvc_guardian_reconcile_duration_seconds_bucket{le="+Inf"}'), 2);
    const seconds = sample(text, "pvc_guardian_reconcile_duration_seconds_sum")!;
    assert.ok(seconds > 0 && seconds < 5, `${seconds} s for two passes over nothing`);
    assert.equal(sample(text, 'pvc_guardian_reconcile_passes_total{outcome="ok"}'), 1);
    assert.equal(sample(text, 'pvc_guardian_reconcile_passes_total{outcome="partial"}'), 1);
  });

  it("reports leadership by Lease name: 0 from the start, 1 while leading, 0 after stopping", async () => {
    const metrics = freshMetrics();
    assert.equal(sample(await metrics.render(), 'pvc_guardian_leader{name="pvc-guardian-leader"}'), 0);
    const elector = createLeaderElector({
      objects: createInMemoryObjects(),
      namespace: "pvc-guardian",
      leaseName: "pvc-guardian-leader",
      identity: "replica-a",
      leaseDurationMs: 1_000,
      renewDeadlineMs: 600,
      retryPeriodMs: 20,
      log: createSilentLogger(),
      metrics: metrics.reconciler,
      onStartedLeading: () => {},
    });
    elector.start();
    for (let i = 0; i < 100 && !elector.isLeader(); i++) await sleep(10);
    assert.equal(elector.isLeader(), true);
    const leading = await metrics.render();
    assert.match(leading, /^# TYPE pvc_guardian_leader gauge$/m);
    assert.equal(sample(leading, 'pvc_guardian_leader{name="pvc-guardian-leader"}'), 1);
    await elector.stop();
    assert.equal(sample(await metrics.render(), 'pvc_guardian_leader{name="pvc-guardian-leader"}'), 0);
  });
});
