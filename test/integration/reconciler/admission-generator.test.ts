import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { requireOrSkip } from "../../harness/binaries.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { createAdmissionGenerator } from "../../../webhook/reconciler/admission-generator.ts";
import { answerReview } from "../../support/answer-review.ts";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { createPvcEventRecorder } from "../../../webhook/kube/pvc-events.ts";
import { EVENTS, REPLICATION_DESTINATIONS, SECRETS, type KubeObject } from "../../../webhook/kube/kube-objects.ts";
import { startKubeEnvironment, type KubeEnvironment } from "../../harness/kube-environment.ts";
import { countingMetrics } from "../../support/counting-metrics.ts";
import { eventually } from "../../support/eventually.ts";
import { failingObjects } from "../../support/failing-objects.ts";
import { protectedEvaluation, SNAPSHOT } from "../../support/protected-evaluation.ts";
import { pvcObject } from "../../support/pvc-object.ts";
import { pvcCreateReviewOf } from "../../support/pvc-review.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";
import { admissionGeneratorSettings } from "../../support/default-settings.ts";

// Generate on admission against a real kube-apiserver with VolSync's real CRDs: every object is
// validated by the published OpenAPI schemas on the way in.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);

describe("admission generator against a real API server", { skip }, () => {
  let env: KubeEnvironment;
  let namespace: string;
  const log = createRecordingLogger();
  const metrics = countingMetrics();
  let generator: ReturnType<typeof createAdmissionGenerator>;

  before(async () => {
    env = await startKubeEnvironment();
    namespace = await createNamespace(env.cluster);
    const events = createPvcEventRecorder(env.kube.objects, { reportingController: "pvc-guardian", reportingInstance: "test" });
    generator = createAdmissionGenerator({ ...admissionGeneratorSettings, objects: env.kube.objects, policy: env.policy, log, metrics, events });
  });
  after(async () => env?.stop());

  const signal = () => AbortSignal.timeout(8_000);
  const getRd = (name: string) => env.kube.objects.get(REPLICATION_DESTINATIONS, namespace, `${name}-backup`);
  const getSecret = (name: string) => env.kube.objects.get(SECRETS, namespace, `volsync-${name}`);
  const spec = (object: KubeObject | undefined) => object?.["spec"] as { paused: boolean; trigger: { manual: string }; kopia: Record<string, unknown> };

  it("creates a paused ReplicationDestination on the fresh path and no credentials: a review alone never writes them", async () => {
    const pvc = pvcObject(namespace, "fresh-data", { backup: "hourly", "argocd.argoproj.io/instance": "app" });
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "fresh"), restoring: false }, signal());
    assert.deepEqual(result, { ok: true, warnings: [] });

    assert.equal(await getSecret("fresh-data"), undefined, "the Secret clone is the reconciler's, for PVCs the API server holds");

    const rd = await getRd("fresh-data");
    assert.equal(spec(rd).paused, true);
    assert.equal(spec(rd).trigger.manual, "restore-once");
    assert.equal(spec(rd).kopia["repository"], "volsync-fresh-data");
    assert.equal(spec(rd).kopia["username"], "fresh-data-backup");
    assert.equal(spec(rd).kopia["hostname"], namespace);
    assert.equal(spec(rd).kopia["restoreAsOf"], undefined);

    const events = await eventually("a BackupObjectsCreated event", async () => {
      const list = await env.kube.objects.list(EVENTS, { namespace });
      return list.items.find((e) => e["reason"] === "BackupObjectsCreated" && (e["regarding"] as { name: string }).name === "fresh-data");
    });
    assert.match(
      String(events["note"]),
      /Created ReplicationDestination fresh-data-backup; the Secret with the repository credentials follows from the reconciler/,
    );
  });

  it("creates an active restore-once ReplicationDestination on the restore path and records the decision", async () => {
    const pvc = pvcObject(namespace, "restored");
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true }, signal());
    assert.equal(result.ok, true);
    const rd = await getRd("restored");
    assert.equal(spec(rd).paused, false);
    assert.equal(spec(rd).trigger.manual, "restore-once");
    assert.equal(spec(rd).kopia["capacity"], "1Gi");
    const event = await eventually("a RestoreDecided event", async () => {
      const list = await env.kube.objects.list(EVENTS, { namespace });
      return list.items.find((e) => e["reason"] === "RestoreDecided" && (e["regarding"] as { name: string }).name === "restored");
    });
    assert.match(String(event["note"]), new RegExp(SNAPSHOT.id));
  });

  it("pins restoreAsOf to the chosen snapshot's start time, not the PVC's restore-as-of text", async () => {
    const pvc = pvcObject(namespace, "as-of", { backup: "daily" }, { "volsync.backup/restore-as-of": "2026-11-21T02:00:00+02:00" });
    assert.equal((await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true }, signal())).ok, true);
    const rd = (await getRd("as-of"))!;
    assert.equal(spec(rd).kopia["restoreAsOf"], SNAPSHOT.startTime);
    assert.equal(spec(rd).kopia["previous"], undefined);
    assert.equal(rd.metadata.annotations?.["volsync.backup/restore-snapshot-id"], SNAPSHOT.id);
    assert.deepEqual(JSON.parse(rd.metadata.annotations?.["volsync.backup/restore-snapshot-stats"] ?? ""), {
      fileCount: 3,
      dirCount: 2,
      totalSize: 1024,
      symlinkCount: 0,
    });
  });

  it("creates a paused ReplicationDestination when the restore is skipped with a reason", async () => {
    const pvc = pvcObject(
      namespace,
      "skipped",
      { backup: "hourly" },
      { "volsync.backup/skip-restore": "true", "volsync.backup/skip-restore-reason": "migrated" },
    );
    const evaluation = protectedEvaluation(pvc, env.policy, "restore");
    // What the handler passes: a backup exists, but the skip is valid, so nothing restores.
    assert.equal((await generator.generate({ pvc, evaluation, restoring: false }, signal())).ok, true);
    assert.equal(spec(await getRd("skipped")).paused, true);
  });

  it("writes nothing for a dry-run review through the real validating handler", async () => {
    const handlers = createReviewHandlers({
      policy: env.policy,
      catalog: { lookup: () => ({ readable: true, snapshots: [SNAPSHOT], refreshedAtMs: Date.now() }) },
      generator,
    });
    const pvc = pvcObject(namespace, "dry-run");
    pvc.spec = { ...pvc.spec, dataSourceRef: { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "dry-run-backup" } };
    const review = (dryRun: boolean) => pvcCreateReviewOf(pvc, { uid: `uid-${dryRun}`, dryRun });
    const outcome = await answerReview(handlers.validate, review(true), { signal: signal(), deadlineMs: 8_000 });
    assert.equal((outcome.review.response as { allowed: boolean }).allowed, true);
    assert.equal(await getRd("dry-run"), undefined);
    assert.equal(await getSecret("dry-run"), undefined);
    // The same review without dryRun does write: the absence above is the handler's choice.
    await answerReview(handlers.validate, review(false), { signal: signal(), deadlineMs: 8_000 });
    assert.ok(await getRd("dry-run"));
  });

  it("leaves existing objects untouched when they are already as desired", async () => {
    const pvc = pvcObject(namespace, "fresh-data", { backup: "hourly" });
    const before = [await getRd("fresh-data")].map((o) => o?.metadata.resourceVersion);
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "fresh"), restoring: false }, signal());
    assert.equal(result.ok, true);
    const afterVersions = [await getRd("fresh-data")].map((o) => o?.metadata.resourceVersion);
    assert.deepEqual(afterVersions, before);
  });

  it("replaces a ReplicationDestination that holds an earlier restore's image before allowing a restore", async () => {
    const pvc = pvcObject(namespace, "stale");
    await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true }, signal());
    const first = await getRd("stale");
    // VolSync would have written this after the earlier restore; no controller runs here.
    const withImage = await requestJson(
      env.cluster,
      "PATCH",
      `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/replicationdestinations/stale-backup/status`,
      {
        body: { status: { latestImage: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "old-image" } } },
        contentType: "application/merge-patch+json",
      },
    );
    assert.equal(withImage.status, 200, JSON.stringify(withImage.body));
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true }, signal());
    assert.equal(result.ok, true);
    const second = await getRd("stale");
    assert.notEqual(second?.metadata.uid, first?.metadata.uid);
    assert.equal((second?.["status"] as { latestImage?: unknown } | undefined)?.latestImage, undefined);
    assert.equal(spec(second).paused, false);
  });

  it("never takes over a same-named object someone else created", async () => {
    const theirs = {
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationDestination",
      metadata: { name: "theirs-backup", namespace },
      spec: { trigger: { manual: "mine" }, kopia: { repository: "x" } },
    };
    await env.kube.objects.create(theirs);
    const pvc = pvcObject(namespace, "theirs");
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "fresh"), restoring: false }, signal());
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /theirs-backup already exists and is not managed by pvc-guardian/);
    const rd = await getRd("theirs");
    assert.equal(spec(rd).trigger.manual, "mine");
    assert.equal(rd?.metadata.labels, undefined);
  });

  it("leaves the ReplicationDestination of a PVC that exists alone: a review for a taken name changes nothing", async () => {
    const pvc = pvcObject(namespace, "live");
    assert.equal((await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "fresh"), restoring: false }, signal())).ok, true);
    await env.kube.objects.create(pvcObject(namespace, "live"));
    const before = await getRd("live");
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true }, signal());
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /PVC .*\/live already exists, so its ReplicationDestination is left as it is/);
    const after = await getRd("live");
    assert.equal(after?.metadata.uid, before?.metadata.uid);
    assert.equal(after?.metadata.resourceVersion, before?.metadata.resourceVersion);
    assert.equal(spec(after).paused, true);
  });

  for (const [path, restoring] of [
    ["fresh", false],
    ["restore", true],
  ] as const) {
    for (const failingKind of ["ReplicationDestination"]) {
      it(`reports a failed ${failingKind} write on the ${path} path as a clause the handler can use`, async () => {
        const objects = failingObjects(env.kube.objects, (verb, kind) => (verb === "create" || verb === "apply") && kind === failingKind);
        const failing = createAdmissionGenerator({ ...admissionGeneratorSettings, objects, policy: env.policy, log, metrics });
        const name = `fail-${path}-${failingKind.toLowerCase()}`;
        const pvc = pvcObject(namespace, name);
        const result = await failing.generate({ pvc, evaluation: protectedEvaluation(pvc, env.policy, restoring ? "restore" : "fresh"), restoring }, signal());
        assert.equal(result.ok, false);
        assert.match(
          result.ok ? "" : result.message,
          new RegExp(`the ${restoring ? "restore" : "backup"} objects for PVC ${namespace}/${name} could not be written \\(injected failure`),
        );
      });
    }
  }

  it("gives up when the deadline passes", async () => {
    const pvc = pvcObject(namespace, "late");
    const result = await generator.generate(
      { pvc, evaluation: protectedEvaluation(pvc, env.policy, "restore"), restoring: true },
      AbortSignal.abort(new Error("deadline")),
    );
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /deadline passed/);
  });
});
