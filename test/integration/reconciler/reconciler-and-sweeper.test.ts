import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { requireOrSkip } from "../../harness/binaries.ts";
import { randomUUID } from "node:crypto";
import { applyObject, createNamespace, deletePvc, requestJson, setPvcPhase } from "../../harness/kube-objects.ts";
import { answerReview } from "../../support/answer-review.ts";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { createAdmissionGenerator } from "../../../webhook/reconciler/admission-generator.ts";
import { createReconciler } from "../../../webhook/reconciler/reconciler.ts";
import { createSweeper } from "../../../webhook/reconciler/sweeper.ts";
import { createPvcEventRecorder } from "../../../webhook/kube/pvc-events.ts";
import {
  CONFIG_MAPS,
  EVENTS,
  PERSISTENT_VOLUME_CLAIMS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  SECRETS,
  type KubeObject,
  type KubeObjects,
} from "../../../webhook/kube/kube-objects.ts";
import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID } from "../../../webhook/domain/wire-names.ts";
import { startKubeEnvironment, SOURCE_DATA, type KubeEnvironment } from "../../harness/kube-environment.ts";
import { countingMetrics } from "../../support/counting-metrics.ts";
import { eventually } from "../../support/eventually.ts";
import { failingObjects } from "../../support/failing-objects.ts";
import { protectedEvaluation } from "../../support/protected-evaluation.ts";
import { pvcObject } from "../../support/pvc-object.ts";
import { pvcCreateReviewOf } from "../../support/pvc-review.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";
import { backupTargetOf, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import { admissionGeneratorSettings, reconcilerSettings, sweeperSettings } from "../../support/default-settings.ts";

// The reconciler and the sweeper against a real kube-apiserver. Time is a clock the test moves,
// so a two-minute first-backup delay and a ten-minute grace period take no wall time; the API
// server, its validation and its preconditions are all real. No controller-manager runs: the
// test sets PVCs Bound through the status subresource and removes their finalizers on delete.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);
const MINUTE = 60_000;

describe("reconciler and sweeper against a real API server", { skip }, () => {
  let env: KubeEnvironment;
  const log = createRecordingLogger();
  const metrics = countingMetrics();
  let clockMs = Date.parse("2026-11-25T12:00:00Z");
  const now = () => clockMs;
  let policy: KubeEnvironment["policy"];

  before(async () => {
    env = await startKubeEnvironment();
    policy = { ...env.policy, firstBackupDelayMs: 2 * MINUTE };
  });
  after(async () => env?.stop());

  const reconcilerFor = (objects: KubeObjects = env.kube.objects, options: { adoptKyverno?: boolean } = {}) =>
    createReconciler({
      ...reconcilerSettings,
      objects,
      policy,
      log,
      metrics,
      now,
      events: createPvcEventRecorder(objects, { reportingController: "pvc-guardian", reportingInstance: "test" }),
      ...(options.adoptKyverno === undefined ? {} : { adoptKyverno: options.adoptKyverno }),
    });
  const sweeperFor = (options: { objects?: KubeObjects; dryRun?: boolean } = {}) =>
    createSweeper({
      ...sweeperSettings,
      objects: options.objects ?? env.kube.objects,
      policy,
      log,
      metrics,
      now,
      namespace: env.systemNamespace,
      gracePeriodMs: 10 * MINUTE,
      dryRun: options.dryRun ?? false,
      events: createPvcEventRecorder(env.kube.objects, { reportingController: "pvc-guardian", reportingInstance: "test" }),
    });
  const get = (kind: typeof SECRETS, namespace: string, name: string) => env.kube.objects.get(kind, namespace, name);
  const rs = (namespace: string, pvc: string) => get(REPLICATION_SOURCES, namespace, `${pvc}-backup`);
  const rd = (namespace: string, pvc: string) => get(REPLICATION_DESTINATIONS, namespace, `${pvc}-backup`);
  const secret = (namespace: string, pvc: string) => get(SECRETS, namespace, `volsync-${pvc}`);
  const rsSpec = (object: KubeObject | undefined) =>
    object?.["spec"] as { paused?: boolean; trigger: { schedule: string }; kopia: { retain: Record<string, number> } };

  async function createPvc(namespace: string, name: string, labels: Record<string, string> = { backup: "hourly" }, annotations?: Record<string, string>) {
    return env.kube.objects.create(pvcObject(namespace, name, labels, annotations));
  }

  describe("ReplicationSource creation", () => {
    it("creates the RS only once the PVC is Bound and the delay has passed, and repairs nothing twice", async () => {
      const namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "db");
      const reconciler = reconcilerFor();

      let report = await reconciler.runPass();
      assert.equal(report.outcome, "ok");
      assert.ok(await secret(namespace, "db"), "the reconciler creates a missing Secret");
      assert.equal((await rd(namespace, "db"))?.["spec"] && (rsSpec(await rd(namespace, "db")) as unknown as { paused: boolean }).paused, true);
      assert.equal(await rs(namespace, "db"), undefined, "no RS while Pending");

      await setPvcPhase(env.cluster, namespace, "db", "Bound");
      await reconciler.runPass();
      const observed = (await rd(namespace, "db"))?.metadata.annotations?.[ANNOTATION_BOUND_OBSERVED_AT];
      assert.equal(observed, new Date(clockMs).toISOString(), "the first Bound sighting is recorded on the RD");
      assert.equal(await rs(namespace, "db"), undefined, "no RS right after binding");

      clockMs += MINUTE;
      await reconciler.runPass();
      assert.equal(await rs(namespace, "db"), undefined, "no RS before the delay");

      clockMs += MINUTE;
      report = await reconciler.runPass();
      const created = await rs(namespace, "db");
      assert.ok(created, "the RS exists once Bound for the delay");
      assert.equal(rsSpec(created).trigger.schedule, "0 * * * *");
      assert.equal((created?.["spec"] as { sourcePVC: string }).sourcePVC, "db");
      await eventually("a FirstBackupScheduled event", async () =>
        (await env.kube.objects.list(EVENTS, { namespace })).items.find((e) => e["reason"] === "FirstBackupScheduled"),
      );

      // Nothing differs now: the next pass lists and writes nothing.
      const versions = await Promise.all([secret(namespace, "db"), rd(namespace, "db"), rs(namespace, "db")]).then((objects) =>
        objects.map((o) => o?.metadata.resourceVersion),
      );
      const requestsBefore = env.requests();
      report = await reconciler.runPass();
      assert.equal(report.created + report.repaired, 0);
      assert.equal(env.requests() - requestsBefore, 5, "four lists and the source Secret");
      const versionsAfter = await Promise.all([secret(namespace, "db"), rd(namespace, "db"), rs(namespace, "db")]).then((objects) =>
        objects.map((o) => o?.metadata.resourceVersion),
      );
      assert.deepEqual(versionsAfter, versions);
    });

    it("keeps the first-backup clock across a restart of pvc-guardian", async () => {
      const namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "cache");
      await setPvcPhase(env.cluster, namespace, "cache", "Bound");
      await reconcilerFor().runPass(); // observes Bound, then this "process" goes away
      clockMs += 2 * MINUTE;
      const restarted = reconcilerFor(); // nothing in memory
      await restarted.runPass();
      assert.ok(await rs(namespace, "cache"), "the RS is created from the recorded observation");
    });

    it("does not create the RS early for a PVC recreated under the same name", async () => {
      const namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "redo");
      await setPvcPhase(env.cluster, namespace, "redo", "Bound");
      await reconcilerFor().runPass();
      await deletePvc(env.cluster, namespace, "redo");
      clockMs += 10 * MINUTE;
      await createPvc(namespace, "redo");
      await setPvcPhase(env.cluster, namespace, "redo", "Bound");
      await reconcilerFor().runPass();
      assert.equal(await rs(namespace, "redo"), undefined, "the old PVC's observation does not count");
      clockMs += 2 * MINUTE;
      await reconcilerFor().runPass();
      assert.ok(await rs(namespace, "redo"));
    });
  });

  describe("repair", () => {
    let namespace: string;
    before(async () => {
      namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "app");
      await setPvcPhase(env.cluster, namespace, "app", "Bound");
      await reconcilerFor().runPass();
      clockMs += 2 * MINUTE;
      await reconcilerFor().runPass();
      assert.ok(await rs(namespace, "app"));
    });

    it("applies a tier change to schedule and retention while a user's own field survives", async () => {
      // A user pauses backups with their own field manager: a field pvc-guardian does not own.
      await applyObject(env.cluster, {
        apiVersion: "volsync.backube/v1alpha1",
        kind: "ReplicationSource",
        metadata: { name: "app-backup", namespace, annotations: { "team.example/note": "paused for migration" } },
        spec: { paused: true },
      });
      const withLabel = await env.kube.objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, "app");
      await env.kube.objects.replace({
        ...withLabel!,
        metadata: { ...withLabel!.metadata, labels: { backup: "daily" }, annotations: { "volsync.backup/schedule": "H 3 * * *" } },
      });
      const report = await reconcilerFor().runPass();
      assert.ok(report.repaired >= 1);
      const updated = await rs(namespace, "app");
      assert.match(rsSpec(updated).trigger.schedule, /^\d+ 3 \* \* \*$/);
      assert.deepEqual(rsSpec(updated).kopia.retain, { hourly: 24, daily: 7, weekly: 4, monthly: 2 });
      assert.equal(rsSpec(updated).paused, true, "the user's pause survives");
      assert.equal(updated?.metadata.annotations?.["team.example/note"], "paused for migration");
    });

    it("puts back a field we own that someone changed, and re-syncs the Secret when the source changes", async () => {
      await applyObject(env.cluster, {
        apiVersion: "volsync.backube/v1alpha1",
        kind: "ReplicationSource",
        metadata: { name: "app-backup", namespace },
        spec: { kopia: { compression: "none" } },
      });
      const source = await env.kube.objects.get(SECRETS, env.systemNamespace, "kopia-credentials");
      const rotated = { ...(source!["data"] as Record<string, string>), KOPIA_PASSWORD: Buffer.from("rotated").toString("base64") };
      await env.kube.objects.replace({ ...source!, data: rotated });
      await reconcilerFor().runPass();
      assert.equal((rsSpec(await rs(namespace, "app")).kopia as unknown as { compression: string }).compression, "zstd-fastest");
      assert.deepEqual((await secret(namespace, "app"))?.["data"], rotated);
    });

    it("recreates a deleted Secret and RD (paused) for a protected PVC", async () => {
      const live = await rd(namespace, "app");
      await env.kube.objects.delete(REPLICATION_DESTINATIONS, namespace, "app-backup", { uid: live!.metadata.uid! });
      await reconcilerFor().runPass();
      const again = await rd(namespace, "app");
      assert.notEqual(again?.metadata.uid, live?.metadata.uid);
      assert.equal((again?.["spec"] as { paused: boolean }).paused, true);
    });
  });

  describe("sweep", () => {
    it("deletes objects of a removed label and a deleted PVC after the grace period, not before, and keeps a recreated PVC's", async () => {
      const namespace = await createNamespace(env.cluster);
      for (const name of ["unlabelled", "deleted", "recreated", "kept"]) await createPvc(namespace, name);
      await reconcilerFor().runPass();
      const pvc = await env.kube.objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, "unlabelled");
      await env.kube.objects.replace({ ...pvc!, metadata: { ...pvc!.metadata, labels: {} } });
      await deletePvc(env.cluster, namespace, "deleted");
      await deletePvc(env.cluster, namespace, "recreated");
      const sweeper = sweeperFor();

      let report = await sweeper.runPass();
      assert.equal(report.outcome, "ok");
      assert.equal(report.deleted, 0);
      const orphaned = report.waiting;
      assert.ok(orphaned >= 6, `six orphans wait out the grace period, saw ${orphaned}`);

      await createPvc(namespace, "recreated");
      clockMs += 9 * MINUTE;
      report = await sweeper.runPass();
      assert.equal(report.deleted, 0, "nothing before the grace period");

      clockMs += MINUTE;
      report = await sweeper.runPass();
      assert.equal(report.outcome, "ok");
      for (const name of ["unlabelled", "deleted"]) {
        assert.equal(await secret(namespace, name), undefined, `${name}'s Secret is swept`);
        assert.equal(await rd(namespace, name), undefined, `${name}'s RD is swept`);
      }
      for (const name of ["recreated", "kept"]) {
        assert.ok(await secret(namespace, name), `${name}'s Secret is kept`);
        assert.ok(await rd(namespace, name), `${name}'s RD is kept`);
      }
    });

    it("reports in dry-run mode what it would delete and deletes nothing", async () => {
      const namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "gone");
      await reconcilerFor().runPass();
      await deletePvc(env.cluster, namespace, "gone");
      const sweeper = sweeperFor({ dryRun: true });
      await sweeper.runPass();
      clockMs += 10 * MINUTE;
      const report = await sweeper.runPass();
      assert.equal(report.outcome, "dry-run");
      assert.deepEqual(
        report.due
          .filter((d) => d.namespace === namespace)
          .map((d) => `${d.kind} ${d.name} ${d.reason}`)
          .sort(),
        ["ReplicationDestination gone-backup pvc-gone", "Secret volsync-gone pvc-gone"],
      );
      assert.ok(await secret(namespace, "gone"));
      // Sweep them for real, so the breaker arithmetic below starts from no orphans.
      const cleaner = sweeperFor();
      await cleaner.runPass();
      clockMs += 10 * MINUTE;
      assert.equal((await cleaner.runPass()).deleted, 2);
    });

    it("trips the breaker above max(10, 20%) and releases it on acknowledgement", async () => {
      const namespace = await createNamespace(env.cluster);
      const generator = createAdmissionGenerator({ ...admissionGeneratorSettings, objects: env.kube.objects, policy, log, metrics });
      // Secret and RD of PVCs that never exist: orphans from the start. Admission writes the RD;
      // the Secret is written as the reconciler would have for a PVC that existed for a while.
      const orphanSets = async (prefix: string, count: number) => {
        for (let index = 0; index < count; index++) {
          const pvc = pvcObject(namespace, `${prefix}-${index}`);
          const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, policy, "fresh"), restoring: false }, AbortSignal.timeout(5_000));
          assert.equal(result.ok, true);
          await env.kube.objects.create(desiredSecret(backupTargetOf(pvc, `${prefix}-${index}`, namespace), SOURCE_DATA) as unknown as KubeObject);
        }
      };
      const sweeper = sweeperFor();
      await sweeper.runPass(); // settles earlier tests' orphans into clocks

      await orphanSets("ten", 5); // 10 objects: at the limit, not above it
      await sweeper.runPass();
      clockMs += 10 * MINUTE;
      let report = await sweeper.runPass();
      assert.ok(report.managedObjects < 50 + 10, `the limit is 10 at this size (managed ${report.managedObjects})`);
      assert.equal(report.outcome, "ok", JSON.stringify(report));
      assert.equal(report.deleted, 10);

      await orphanSets("twelve", 6); // 12 objects: above the limit
      await sweeper.runPass();
      clockMs += 10 * MINUTE;
      report = await sweeper.runPass();
      assert.equal(report.outcome, "held");
      assert.equal(report.deleted, 0);
      assert.equal(report.due.length, 12);
      assert.ok(await secret(namespace, "twelve-0"));
      await eventually("a SweepHeldByBreaker event", async () =>
        (await env.kube.objects.list(EVENTS, { namespace })).items.find((e) => e["reason"] === "SweepHeldByBreaker"),
      );

      const acknowledge = async (maxDeletions: number, expiresAtMs: number) => {
        const data = { maxDeletions: String(maxDeletions), expiresAt: new Date(expiresAtMs).toISOString() };
        const existing = await env.kube.objects.get(CONFIG_MAPS, env.systemNamespace, "pvc-guardian-sweep-acknowledgement");
        if (existing) await env.kube.objects.replace({ ...existing, data });
        else
          await env.kube.objects.create({
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: "pvc-guardian-sweep-acknowledgement", namespace: env.systemNamespace },
            data,
          });
      };
      await acknowledge(11, clockMs + 60 * MINUTE);
      assert.equal((await sweeper.runPass()).outcome, "held", "an acknowledgement for fewer deletions does not release it");
      await acknowledge(12, clockMs - MINUTE);
      assert.equal((await sweeper.runPass()).outcome, "held", "an expired acknowledgement does not release it");
      await acknowledge(12, clockMs + 60 * MINUTE);
      report = await sweeper.runPass();
      assert.equal(report.outcome, "ok");
      assert.equal(report.deleted, 12);
      assert.equal(await secret(namespace, "twelve-0"), undefined);
    });

    it("deletes nothing wrongly when the API server stops mid-sweep, and the next pass finishes", async () => {
      const namespace = await createNamespace(env.cluster);
      for (const name of ["keep-a", "keep-b", "drop-a", "drop-b", "drop-c"]) await createPvc(namespace, name);
      await reconcilerFor().runPass();
      for (const name of ["drop-a", "drop-b", "drop-c"]) await deletePvc(env.cluster, namespace, name);
      let deletes = 0;
      const objects: KubeObjects = {
        ...env.kube.objects,
        async delete(kind, ns, name, preconditions, signal) {
          deletes++;
          if (deletes === 3) await env.cluster.stopApiserver();
          return env.kube.objects.delete(kind, ns, name, preconditions, signal);
        },
      };
      const sweeper = createSweeper({
        ...sweeperSettings,
        objects,
        policy,
        log,
        metrics,
        now,
        namespace: env.systemNamespace,
        gracePeriodMs: 10 * MINUTE,
        deleteConcurrency: 1,
      });
      await sweeper.runPass();
      clockMs += 10 * MINUTE;
      let report = await sweeper.runPass();
      assert.equal(report.outcome, "error");
      assert.equal(report.deleted, 2);
      assert.equal(report.failed, 1);

      // With the server down, a sweep cannot list, so it does nothing at all.
      report = await sweeper.runPass(AbortSignal.timeout(5_000));
      assert.equal(report.outcome, "partial");
      assert.equal(report.deleted, 0);

      await env.cluster.startApiserver();
      report = await sweeper.runPass();
      assert.equal(report.outcome, "ok");
      assert.equal(report.deleted, 4);
      for (const name of ["keep-a", "keep-b"]) {
        assert.ok(await secret(namespace, name), `${name}'s Secret survives`);
        assert.ok(await rd(namespace, name), `${name}'s RD survives`);
      }
      for (const name of ["drop-a", "drop-b", "drop-c"]) assert.equal(await secret(namespace, name), undefined);
    });
  });
  describe("a PVC deleted and created again under the same name", () => {
    const generatorOver = (objects: KubeObjects = env.kube.objects) =>
      createAdmissionGenerator({
        ...admissionGeneratorSettings,
        objects,
        policy,
        log,
        metrics,
        events: createPvcEventRecorder(env.kube.objects, { reportingController: "pvc-guardian", reportingInstance: "test" }),
      });
    const observation = async (namespace: string, pvc: string) => {
      const annotations = (await rd(namespace, pvc))?.metadata.annotations ?? {};
      return { at: annotations[ANNOTATION_BOUND_OBSERVED_AT], uid: annotations[ANNOTATION_BOUND_PVC_UID] };
    };

    /** A PVC admitted as the webhook would, Bound, past the delay, and backed up: its RS exists. */
    async function backedUp(namespace: string, name: string): Promise<KubeObject> {
      const pvc = pvcObject(namespace, name);
      assert.equal(
        (await generatorOver().generate({ pvc, evaluation: protectedEvaluation(pvc, policy, "fresh"), restoring: false }, AbortSignal.timeout(8_000))).ok,
        true,
      );
      await createPvc(namespace, name);
      await setPvcPhase(env.cluster, namespace, name, "Bound");
      await reconcilerFor().runPass();
      clockMs += 2 * MINUTE;
      await reconcilerFor().runPass();
      const source = await rs(namespace, name);
      assert.ok(source, "the RS exists once the PVC is Bound and the delay passed");
      assert.equal((source["spec"] as { sourcePVC: string }).sourcePVC, name);
      return source;
    }

    /** The second PVC's RS: absent until it is Bound and the delay passed, then a new object. */
    async function assertRsWaitsForNewPvc(namespace: string, name: string, earlier: KubeObject): Promise<void> {
      await reconcilerFor().runPass();
      assert.equal(await rs(namespace, name), undefined, "no RS while the new PVC is Pending");
      await setPvcPhase(env.cluster, namespace, name, "Bound");
      await reconcilerFor().runPass();
      const live = await env.kube.objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, name);
      assert.deepEqual(
        await observation(namespace, name),
        { at: new Date(clockMs).toISOString(), uid: live?.metadata.uid },
        "the clock starts at the new PVC's Bound sighting",
      );
      clockMs += MINUTE;
      await reconcilerFor().runPass();
      assert.equal(await rs(namespace, name), undefined, "no RS before the delay");
      clockMs += MINUTE;
      await reconcilerFor().runPass();
      const again = await rs(namespace, name);
      assert.ok(again, "the RS comes back once the new PVC has been Bound for the delay");
      assert.notEqual(again.metadata.uid, earlier.metadata.uid);
    }

    it("deletes the RS when the validating webhook admits the new PVC, and not on a dry run", async () => {
      const namespace = await createNamespace(env.cluster);
      const earlier = await backedUp(namespace, "db");
      await deletePvc(env.cluster, namespace, "db");
      const handlers = createReviewHandlers({
        policy,
        catalog: { lookup: () => ({ readable: true, snapshots: [], refreshedAtMs: Date.now() }) },
        generator: generatorOver(),
      });
      // The validating webhook sees the object with its uid already assigned.
      const object = { ...pvcObject(namespace, "db"), metadata: { ...pvcObject(namespace, "db").metadata, uid: randomUUID() } };
      const review = (dryRun: boolean) => pvcCreateReviewOf(object, { uid: randomUUID(), dryRun });
      const dryRun = (await answerReview(handlers.validate, review(true), { deadlineMs: 8_000 })).review.response as { allowed: boolean };
      assert.equal(dryRun.allowed, true);
      assert.equal((await rs(namespace, "db"))?.metadata.uid, earlier.metadata.uid, "a dry run deletes nothing");

      const response = (await answerReview(handlers.validate, review(false), { deadlineMs: 8_000 })).review.response as {
        allowed: boolean;
        warnings?: string[];
      };
      assert.equal(response.allowed, true);
      assert.equal(response.warnings, undefined);
      assert.equal(await rs(namespace, "db"), undefined, "the earlier PVC's RS is gone once the new PVC is admitted");
      assert.deepEqual(await observation(namespace, "db"), { at: undefined, uid: undefined }, "the earlier PVC's Bound sighting is removed");
      await eventually("a StaleReplicationSourceDeleted event", async () =>
        (await env.kube.objects.list(EVENTS, { namespace })).items.find((e) => e["reason"] === "StaleReplicationSourceDeleted"),
      );

      await createPvc(namespace, "db");
      await assertRsWaitsForNewPvc(namespace, "db", earlier);
    });

    it("deletes the RS on the next reconcile pass when admission generation never ran", async () => {
      const namespace = await createNamespace(env.cluster);
      const earlier = await backedUp(namespace, "cache");
      await deletePvc(env.cluster, namespace, "cache");
      await createPvc(namespace, "cache"); // as if the webhook had been unreachable or bypassed
      assert.equal((await rs(namespace, "cache"))?.metadata.uid, earlier.metadata.uid);

      const calls: string[] = [];
      const inner = env.kube.objects;
      const recording: KubeObjects = {
        ...inner,
        get: (kind, ns, name, signal) => (calls.push(`get ${kind.kind} ${ns}/${name}`), inner.get(kind, ns, name, signal)),
        list: (kind, options, signal) => (calls.push(`list ${kind.kind}`), inner.list(kind, options, signal)),
        create: (object, signal) => (calls.push(`create ${object.kind} ${object.metadata.namespace}/${object.metadata.name}`), inner.create(object, signal)),
        apply: (object, options, signal) => (
          calls.push(`apply ${object.kind} ${object.metadata.namespace}/${object.metadata.name}`),
          inner.apply(object, options, signal)
        ),
        replace: (object, signal) => (calls.push(`replace ${object.kind} ${object.metadata.namespace}/${object.metadata.name}`), inner.replace(object, signal)),
        delete: (kind, ns, name, preconditions, signal) => (
          calls.push(`delete ${kind.kind} ${ns}/${name}`),
          inner.delete(kind, ns, name, preconditions, signal)
        ),
      };
      const report = await reconcilerFor(recording).runPass();
      assert.equal(report.deleted, 1);
      assert.equal(await rs(namespace, "cache"), undefined, "the reconciler deletes the earlier PVC's RS");
      // A list per kind and the source Secret, then only this PVC's writes: the delete first, and
      // the RD apply that drops the earlier PVC's sighting (the new PVC is still Pending). The
      // Event saying so goes out on the side.
      assert.equal(calls.filter((call) => call.startsWith("list ")).length, 4);
      assert.deepEqual(
        calls.filter((call) => call.startsWith("get ")),
        [`get Secret ${env.systemNamespace}/kopia-credentials`],
      );
      assert.ok(
        calls.some((call) => call.startsWith(`create Event ${namespace}/cache.`)),
        "a StaleReplicationSourceDeleted event",
      );
      assert.deepEqual(
        calls.filter((call) => !/^(list|get|create Event) /.test(call)),
        [`delete ReplicationSource ${namespace}/cache-backup`, `apply ReplicationDestination ${namespace}/cache-backup`],
      );
      await assertRsWaitsForNewPvc(namespace, "cache", earlier);
    });

    it("leaves the RS of a PVC that still exists when its name is created again", async () => {
      const namespace = await createNamespace(env.cluster);
      const live = await backedUp(namespace, "twice");
      const pvc = pvcObject(namespace, "twice");
      // This CREATE will fail with AlreadyExists after admission: the RS belongs to the live PVC.
      const result = await generatorOver().generate(
        { pvc, evaluation: protectedEvaluation(pvc, policy, "fresh"), restoring: false },
        AbortSignal.timeout(8_000),
      );
      assert.equal(result.ok, true);
      assert.equal((await rs(namespace, "twice"))?.metadata.uid, live.metadata.uid);
      assert.ok((await observation(namespace, "twice")).uid, "the live PVC's Bound sighting stays");
    });

    it("on the fresh path, allows with a warning when the delete fails, and the reconciler deletes the RS", async () => {
      const namespace = await createNamespace(env.cluster);
      const earlier = await backedUp(namespace, "warned");
      const earlierUid = (await observation(namespace, "warned")).uid;
      await deletePvc(env.cluster, namespace, "warned");
      const failing = generatorOver(failingObjects(env.kube.objects, (verb, kind) => verb === "delete" && kind === "ReplicationSource"));
      const pvc = pvcObject(namespace, "warned");
      const result = await failing.generate({ pvc, evaluation: protectedEvaluation(pvc, policy, "fresh"), restoring: false }, AbortSignal.timeout(8_000));
      assert.equal(result.ok, true);
      assert.match(
        result.ok ? result.warnings.join("\n") : "",
        /ReplicationSource .*warned-backup, left by an earlier PVC of this name, could not be deleted \(injected failure/,
      );
      assert.equal((await rs(namespace, "warned"))?.metadata.uid, earlier.metadata.uid);
      assert.equal((await observation(namespace, "warned")).uid, earlierUid, "the earlier uid stays on the RD for the reconciler");

      await createPvc(namespace, "warned");
      assert.equal((await reconcilerFor().runPass()).deleted, 1);
      assert.equal(await rs(namespace, "warned"), undefined);
    });

    it("on the restore path, denies when the delete fails and deletes the RS on retry", async () => {
      const namespace = await createNamespace(env.cluster);
      const earlier = await backedUp(namespace, "restored");
      await deletePvc(env.cluster, namespace, "restored");
      const pvc = pvcObject(namespace, "restored");
      const request = { pvc, evaluation: protectedEvaluation(pvc, policy, "restore"), restoring: true };
      const failing = generatorOver(failingObjects(env.kube.objects, (verb, kind) => verb === "delete" && kind === "ReplicationSource"));
      const denied = await failing.generate(request, AbortSignal.timeout(8_000));
      assert.equal(denied.ok, false);
      assert.match(
        denied.ok ? "" : denied.message,
        /the restore objects for PVC .*\/restored could not be written \(ReplicationSource .*restored-backup, left by an earlier PVC of this name, could not be deleted: injected failure/,
      );
      assert.equal((await rs(namespace, "restored"))?.metadata.uid, earlier.metadata.uid);

      const retried = await generatorOver().generate(request, AbortSignal.timeout(8_000));
      assert.deepEqual(retried, { ok: true, warnings: [] });
      assert.equal(await rs(namespace, "restored"), undefined);
      assert.equal(((await rd(namespace, "restored"))?.["spec"] as { paused: boolean }).paused, false, "the RD restores");
    });
  });

  describe("adopting objects the Kyverno policy generated", () => {
    /** Objects as the Kyverno policy made them, written with Kyverno's own field manager. */
    async function kyvernoObjects(namespace: string, pvc: string): Promise<KubeObject[]> {
      const labels = { "app.kubernetes.io/managed-by": "kyverno", "volsync.backup/pvc": pvc, "generate.kyverno.io/policy-name": "volsync-pvc-backup-restore" };
      const kopia = {
        repository: `volsync-${pvc}`,
        copyMethod: "Snapshot",
        cacheCapacity: "1Gi",
        storageClassName: "longhorn",
        volumeSnapshotClassName: "longhorn-snapclass",
      };
      const objects = [
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: `volsync-${pvc}`, namespace, labels },
          type: "Opaque",
          data: { KOPIA_PASSWORD: Buffer.from("old").toString("base64") },
        },
        {
          apiVersion: "volsync.backube/v1alpha1",
          kind: "ReplicationDestination",
          metadata: { name: `${pvc}-backup`, namespace, labels },
          spec: { trigger: { manual: "restore-once" }, kopia: { ...kopia, accessModes: ["ReadWriteOnce"], capacity: "1Gi" } },
        },
        {
          apiVersion: "volsync.backube/v1alpha1",
          kind: "ReplicationSource",
          metadata: { name: `${pvc}-backup`, namespace, labels },
          spec: { sourcePVC: pvc, trigger: { schedule: "30 * * * *" }, kopia: { ...kopia, compression: "zstd", retain: { hourly: 6 } } },
        },
      ];
      const created: KubeObject[] = [];
      for (const object of objects) {
        const root = object.apiVersion === "v1" ? "/api/v1" : `/apis/${object.apiVersion}`;
        const plural = object.kind === "Secret" ? "secrets" : `${object.kind.toLowerCase()}s`;
        const response = await requestJson<KubeObject>(env.cluster, "POST", `${root}/namespaces/${namespace}/${plural}?fieldManager=kyverno`, { body: object });
        assert.equal(response.status, 201, JSON.stringify(response.body));
        created.push(response.body!);
      }
      return created;
    }
    const versions = async (namespace: string, pvc: string) =>
      Promise.all([secret(namespace, pvc), rd(namespace, pvc), rs(namespace, pvc)]).then((objects) => objects.map((o) => o?.metadata.resourceVersion));

    it("leaves them alone while adoption is off, relabels them as ours and applies the fields we own once it is on", async () => {
      const namespace = await createNamespace(env.cluster);
      await createPvc(namespace, "adopted");
      await setPvcPhase(env.cluster, namespace, "adopted", "Bound");
      const kyverno = await kyvernoObjects(namespace, "adopted");
      await reconcilerFor(env.kube.objects, { adoptKyverno: false }).runPass();
      clockMs += 3 * MINUTE;
      const report = await reconcilerFor(env.kube.objects, { adoptKyverno: false }).runPass();
      assert.equal(report.outcome, "ok");
      assert.equal(report.notes >= 3, true, "each object is noted as left alone");
      assert.deepEqual(
        await versions(namespace, "adopted"),
        kyverno.map((o) => o.metadata.resourceVersion),
        "not one write to Kyverno's objects",
      );
      for (const object of [await secret(namespace, "adopted"), await rd(namespace, "adopted"), await rs(namespace, "adopted")]) {
        assert.equal(object?.metadata.labels?.["app.kubernetes.io/managed-by"], "kyverno");
      }

      const adopting = await reconcilerFor(env.kube.objects, { adoptKyverno: true }).runPass();
      assert.equal(adopting.outcome, "ok");
      assert.equal(adopting.repaired, 3, "three adoptions");
      assert.equal(adopting.created, 0);

      const [adoptedSecret, adoptedRd, adoptedRs] = [await secret(namespace, "adopted"), await rd(namespace, "adopted"), await rs(namespace, "adopted")];
      for (const object of [adoptedSecret, adoptedRd, adoptedRs]) {
        assert.equal(object?.metadata.labels?.["app.kubernetes.io/managed-by"], "pvc-guardian", `${object?.kind} is relabelled`);
        assert.equal(object?.metadata.labels?.["volsync.backup/pvc"], "adopted");
      }
      assert.deepEqual(
        [adoptedSecret, adoptedRd, adoptedRs].map((o) => o?.metadata.uid),
        kyverno.map((o) => o.metadata.uid),
        "taken over in place, not recreated",
      );
      const sourceSecret = await env.kube.objects.get(SECRETS, env.systemNamespace, "kopia-credentials");
      assert.deepEqual(adoptedSecret?.["data"], sourceSecret?.["data"], "the Secret is a clone of the source again");
      const rdKopia = (adoptedRd?.["spec"] as { kopia: Record<string, unknown> }).kopia;
      assert.equal(rdKopia["cacheCapacity"], "2Gi");
      assert.equal(rdKopia["username"], "adopted-backup");
      assert.equal(rdKopia["hostname"], namespace);
      const rsSpecAdopted = adoptedRs?.["spec"] as { trigger: { schedule: string }; kopia: Record<string, unknown> };
      assert.equal(rsSpecAdopted.trigger.schedule, "0 * * * *");
      assert.equal(rsSpecAdopted.kopia["compression"], "zstd-fastest");
      assert.deepEqual(rsSpecAdopted.kopia["retain"], { hourly: 24, daily: 7, weekly: 4, monthly: 2 });

      // Ours now: the next pass records the Bound sighting on the RD and otherwise writes nothing.
      await reconcilerFor(env.kube.objects, { adoptKyverno: true }).runPass();
      const settled = await versions(namespace, "adopted");
      const again = await reconcilerFor(env.kube.objects, { adoptKyverno: true }).runPass();
      assert.equal(again.created + again.repaired + again.deleted, 0);
      assert.deepEqual(await versions(namespace, "adopted"), settled);
    });
  });
});
