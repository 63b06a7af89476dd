import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { requireOrSkip } from "../../harness/binaries.ts";
import { applyObject, createNamespace, deletePvc, setPvcPhase } from "../../harness/kube-objects.ts";
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
import { ANNOTATION_BOUND_OBSERVED_AT } from "../../../webhook/domain/wire-names.ts";
import { countingMetrics, evaluate, pvcObject, recordingLog, startEnvironment, waitFor, type Environment } from "./support.ts";

// The reconciler and the sweeper against a real kube-apiserver. Time is a clock the test moves,
// so a two-minute first-backup delay and a ten-minute grace period take no wall time; the API
// server, its validation and its preconditions are all real. No controller-manager runs: the
// test sets PVCs Bound through the status subresource and removes their finalizers on delete.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);
const MINUTE = 60_000;

describe("reconciler and sweeper against a real API server", { skip }, () => {
  let env: Environment;
  const log = recordingLog();
  const metrics = countingMetrics();
  let clockMs = Date.parse("2026-11-25T12:00:00Z");
  const now = () => clockMs;
  let policy: Environment["policy"];

  before(async () => {
    env = await startEnvironment();
    policy = { ...env.policy, firstBackupDelayMs: 2 * MINUTE };
  });
  after(async () => env?.stop());

  const reconcilerFor = (objects: KubeObjects = env.kube.objects) =>
    createReconciler({ objects, policy, log, metrics, now, events: createPvcEventRecorder(objects, { reportingController: "pvc-guardian", reportingInstance: "test" }) });
  const sweeperFor = (options: { objects?: KubeObjects; dryRun?: boolean } = {}) =>
    createSweeper({
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
  const rsSpec = (object: KubeObject | undefined) => object?.["spec"] as { paused?: boolean; trigger: { schedule: string }; kopia: { retain: Record<string, number> } };

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
      await waitFor("a FirstBackupScheduled event", async () =>
        (await env.kube.objects.list(EVENTS, { namespace })).items.find((e) => e["reason"] === "FirstBackupScheduled"),
      );

      // Nothing differs now: the next pass lists and writes nothing.
      const versions = await Promise.all([secret(namespace, "db"), rd(namespace, "db"), rs(namespace, "db")]).then((objects) => objects.map((o) => o?.metadata.resourceVersion));
      const requestsBefore = env.requests();
      report = await reconciler.runPass();
      assert.equal(report.created + report.repaired, 0);
      assert.equal(env.requests() - requestsBefore, 5, "four lists and the source Secret");
      const versionsAfter = await Promise.all([secret(namespace, "db"), rd(namespace, "db"), rs(namespace, "db")]).then((objects) => objects.map((o) => o?.metadata.resourceVersion));
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
      await env.kube.objects.replace({ ...withLabel!, metadata: { ...withLabel!.metadata, labels: { backup: "daily" }, annotations: { "volsync.backup/schedule": "H 3 * * *" } } });
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
      const orphaned = (report.waiting);
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
        report.due.filter((d) => d.namespace === namespace).map((d) => `${d.kind} ${d.name} ${d.reason}`).sort(),
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
      const generator = createAdmissionGenerator({ objects: env.kube.objects, policy, log, metrics });
      // Secret and RD of PVCs that never exist: orphans from the start.
      const orphanSets = async (prefix: string, count: number) => {
        for (let index = 0; index < count; index++) {
          const pvc = pvcObject(namespace, `${prefix}-${index}`);
          const result = await generator.generate({ pvc, evaluation: evaluate(pvc, policy, "fresh"), restoring: false }, AbortSignal.timeout(5_000));
          assert.equal(result.ok, true);
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
      await waitFor("a SweepHeldByBreaker event", async () =>
        (await env.kube.objects.list(EVENTS, { namespace })).items.find((e) => e["reason"] === "SweepHeldByBreaker"),
      );

      const acknowledge = async (maxDeletions: number, expiresAtMs: number) => {
        const data = { maxDeletions: String(maxDeletions), expiresAt: new Date(expiresAtMs).toISOString() };
        const existing = await env.kube.objects.get(CONFIG_MAPS, env.systemNamespace, "pvc-guardian-sweep-acknowledgement");
        if (existing) await env.kube.objects.replace({ ...existing, data });
        else await env.kube.objects.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "pvc-guardian-sweep-acknowledgement", namespace: env.systemNamespace }, data });
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
      const sweeper = createSweeper({ objects, policy, log, metrics, now, namespace: env.systemNamespace, gracePeriodMs: 10 * MINUTE, deleteConcurrency: 1 });
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
});
