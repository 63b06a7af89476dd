// Restore verification against a real kube-apiserver with VolSync's CRDs: our RD carries the
// pinned snapshot, the test writes its status through the status subresource the way VolSync's
// controller does when a mover finishes, and a reconcile pass (or the RD watch) must write the
// verdict onto the RD, record the Event on the PVC, count the verdict in the metric the alert
// reads, and make the audit say so.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { requireOrSkip } from "../../harness/binaries.ts";
import { createNamespace, finishMover } from "../../harness/kube-objects.ts";
import { backupTargetOf, desiredReplicationDestination } from "../../../webhook/domain/desired-resources.ts";
import {
  ANNOTATION_RESTORE_SNAPSHOT_ID,
  ANNOTATION_RESTORE_SNAPSHOT_STATS,
  ANNOTATION_RESTORE_VERDICT,
  ANNOTATION_RESTORE_VERDICT_DETAIL,
} from "../../../webhook/domain/wire-names.ts";
import { createPvcEventRecorder } from "../../../webhook/kube/pvc-events.ts";
import { EVENTS, REPLICATION_DESTINATIONS, type KubeObject } from "../../../webhook/kube/kube-objects.ts";
import { createBackgroundControllers } from "../../../webhook/reconciler/background-controllers.ts";
import { createReconciler } from "../../../webhook/reconciler/reconciler.ts";
import { auditProtectedPvcs } from "../../../webhook/domain/backup-audit.ts";
import { createClusterAuditSource } from "../../../webhook/server/cluster-audit-source.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { startKubeEnvironment, type KubeEnvironment } from "../../harness/kube-environment.ts";
import { eventually } from "../../support/eventually.ts";
import { pvcObject } from "../../support/pvc-object.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";
import { defaultSettings, reconcilerSettings } from "../../support/default-settings.ts";

const skip = requireOrSkip(["etcd", "kube-apiserver"]);
const SNAPSHOT_ID = "4f1e0c9a8b7d6e5f4a3b2c1d0e9f8a7b";
// What the real kopia v0.22.3 printed for a tree of 3 files (1,257 bytes), 5 directories counting
// the root, and 2 symbolic links, and what its manifest recorded (test/integration/kopia/restore-verification.test.ts).
const PINNED_STATS = '{"fileCount":3,"dirCount":5,"totalSize":1257}';
const RESTORED_LINE = "Restored 3 files, 5 directories and 2 symbolic links (1.3 KB).";

type Case = {
  pvc: string;
  moverStatus?: { result: string; logs?: string };
  verdict?: string;
  eventType?: string;
  reason?: string;
  auditVerdict?: "restore-failed" | "not-failed";
  detail?: RegExp;
};

const cases: Case[] = [
  {
    pvc: "matching",
    // The log as VolSync keeps it with MOVER_LOG_DEBUG=true on its controller.
    moverStatus: { result: "Successful", logs: `INFO: Executing restore command...\n${RESTORED_LINE}\nINFO: Snapshot restore completed successfully` },
    verdict: "verified",
    eventType: "Normal",
    reason: "RestoreVerified",
    auditVerdict: "not-failed",
    detail: /restored and verified from snapshot 4f1e0c9a/,
  },
  {
    pvc: "different",
    moverStatus: {
      result: "Successful",
      logs: `Restored 2 files, 4 directories and 2 symbolic links (1.2 KB), ignored 1 errors.\nINFO: Snapshot restore completed successfully`,
    },
    verdict: "mismatch",
    eventType: "Warning",
    reason: "RestoreMismatch",
    auditVerdict: "restore-failed",
    detail: /restored 2 files, 4 directories .* holds 3 files, 5 directories/,
  },
  {
    pvc: "nothing",
    moverStatus: { result: "Successful", logs: "No eligible snapshots found\nNo snapshots found for nothing-backup@ns:/data" },
    verdict: "empty",
    eventType: "Warning",
    reason: "RestoreEmpty",
    auditVerdict: "restore-failed",
    detail: /handed over empty/,
  },
  {
    pvc: "broken",
    moverStatus: { result: "Failed", logs: "ERROR: Failed to restore snapshot: 4f1e0c9a8b7d6e5f4a3b2c1d0e9f8a7b" },
    verdict: "failed",
    eventType: "Warning",
    reason: "RestoreFailed",
    auditVerdict: "restore-failed",
    detail: /failed to restore/,
  },
  {
    pvc: "filtered",
    // What VolSync keeps by default: its log filter drops the Restored line.
    moverStatus: { result: "Successful", logs: "INFO: Snapshot restore completed successfully" },
    verdict: "unverified",
    eventType: "Warning",
    reason: "RestoreUnverified",
    auditVerdict: "not-failed",
    detail: /not verified: .*MOVER_LOG_DEBUG=true/,
  },
  { pvc: "running" },
];

describe("restore verification against a real API server", { skip }, () => {
  let env: KubeEnvironment;
  let namespace: string;
  const log = createRecordingLogger();
  const metrics = createMetrics({ collectProcessMetrics: false });

  before(async () => {
    env = await startKubeEnvironment();
  });
  after(async () => env?.stop());

  const reconciler = () =>
    createReconciler({
      ...reconcilerSettings,
      objects: env.kube.objects,
      policy: env.policy,
      log,
      metrics: metrics.reconciler,
      events: createPvcEventRecorder(env.kube.objects, { reportingController: "pvc-guardian", reportingInstance: "test" }),
    });
  const rdOf = (ns: string, pvc: string) => env.kube.objects.get(REPLICATION_DESTINATIONS, ns, `${pvc}-backup`);
  const counterValue = async (verdict: string): Promise<number> => {
    const text = await metrics.render();
    const match = new RegExp(`^pvc_guardian_restore_verifications_total\\{verdict="${verdict}"\\} (\\d+)$`, "m").exec(text);
    assert.ok(match, `no series for verdict ${verdict} in:\n${text}`);
    return Number(match[1]);
  };

  /** Our RD as admission activates it for a restore: the pinned snapshot and its numbers. */
  async function createRestoringPvc(
    ns: string,
    pvc: string,
    annotations: Record<string, string> = { [ANNOTATION_RESTORE_SNAPSHOT_ID]: SNAPSHOT_ID, [ANNOTATION_RESTORE_SNAPSHOT_STATS]: PINNED_STATS },
  ) {
    const created = await env.kube.objects.create(pvcObject(ns, pvc));
    const destination = desiredReplicationDestination(backupTargetOf(created as never, pvc, ns), env.policy, { paused: false }) as unknown as KubeObject;
    destination.metadata.annotations = { ...destination.metadata.annotations, ...annotations };
    await env.kube.objects.create(destination);
    return created;
  }

  /** The mover finished: status written through the status subresource, as VolSync's controller does. */
  const finishRestore = (ns: string, pvc: string, moverStatus: { result: string; logs?: string }) =>
    finishMover(env.cluster, ns, `${pvc}-backup`, moverStatus, {
      latestImage: { apiGroup: "", kind: "PersistentVolumeClaim", name: `volsync-${pvc}-backup-dest` },
    });

  it("judges each finished restore once: verdict on the RD, Event on the PVC, counter, audit", async () => {
    namespace = await createNamespace(env.cluster);
    const uids = new Map<string, string>();
    for (const c of cases) uids.set(c.pvc, (await createRestoringPvc(namespace, c.pvc)).metadata.uid!);
    // Someone else's restore (no pinned snapshot) with a finished mover: not ours to judge.
    await createRestoringPvc(namespace, "unpinned", {});
    await finishRestore(namespace, "unpinned", { result: "Failed" });
    for (const c of cases) if (c.moverStatus) await finishRestore(namespace, c.pvc, c.moverStatus);
    const before = new Map<string, number>();
    for (const verdict of ["verified", "mismatch", "empty", "failed", "unverified"]) before.set(verdict, await counterValue(verdict));

    const report = await reconciler().runPass();
    assert.equal(report.restoresJudged, 5, JSON.stringify(report));

    const events = await eventually("five restore Events", async () => {
      const listed = (await env.kube.objects.list(EVENTS, { namespace })).items.filter((e) => String(e["reason"]).startsWith("Restore"));
      return listed.length >= 5 ? listed : undefined;
    });
    for (const c of cases) {
      const rd = (await rdOf(namespace, c.pvc))!;
      assert.equal(rd.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT], c.verdict, c.pvc);
      if (c.verdict === undefined) {
        assert.equal(rd.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT_DETAIL], undefined, "a running mover gets no verdict");
        continue;
      }
      const event = events.find((e) => (e["regarding"] as { name: string }).name === c.pvc);
      assert.ok(event, `an Event for ${c.pvc}`);
      assert.equal(event["type"], c.eventType);
      assert.equal(event["reason"], c.reason);
      assert.equal((event["regarding"] as { uid?: string }).uid, uids.get(c.pvc), "the Event names the PVC's uid");
      assert.ok(
        String(event["note"]).startsWith(rd.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT_DETAIL] ?? "<none>"),
        "the note starts with the detail on the RD",
      );
    }
    assert.equal(
      (await rdOf(namespace, "unpinned"))!.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT],
      undefined,
      "an RD without a pinned snapshot is left alone",
    );
    for (const verdict of ["verified", "mismatch", "empty", "failed", "unverified"]) {
      assert.equal((await counterValue(verdict)) - before.get(verdict)!, 1, `one ${verdict} counted`);
    }

    // The audit over the real adapter reads the verdicts off the RDs.
    const inventory = await createClusterAuditSource(env.kube.objects).inventory();
    const audit = auditProtectedPvcs(inventory, env.policy, () => ({ readable: true, snapshots: [], refreshedAtMs: Date.now() }), Date.now());
    for (const c of cases) {
      const row = audit.rows.find((r) => r.namespace === namespace && r.pvc === c.pvc);
      assert.ok(row, `an audit row for ${c.pvc}`);
      assert.equal(row.restore?.snapshot, SNAPSHOT_ID);
      assert.equal(row.restore?.verdict ?? undefined, c.verdict);
      if (c.auditVerdict === "restore-failed") assert.equal(row.verdict, "restore-failed", c.pvc);
      if (c.auditVerdict === "not-failed") assert.notEqual(row.verdict, "restore-failed", c.pvc);
      if (c.detail) assert.match(row.detail ?? "", c.detail, c.pvc);
    }

    // The next pass, which applies the RDs again, keeps every verdict and judges nothing twice.
    const versions = await Promise.all(cases.map(async (c) => (await rdOf(namespace, c.pvc))!.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT]));
    const again = await reconciler().runPass();
    assert.equal(again.restoresJudged, 0);
    assert.deepEqual(await Promise.all(cases.map(async (c) => (await rdOf(namespace, c.pvc))!.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT])), versions);
    for (const verdict of ["verified", "mismatch", "empty", "failed", "unverified"]) assert.equal((await counterValue(verdict)) - before.get(verdict)!, 1);
  });

  it("judges a restore within seconds of its mover finishing, through the RD watch", async () => {
    const ns = await createNamespace(env.cluster);
    await createRestoringPvc(ns, "watched");
    let passes = 0;
    const controllers = createBackgroundControllers({
      objects: env.kube.objects,
      policy: env.policy,
      log,
      metrics: metrics.reconciler,
      namespace: env.systemNamespace,
      identity: "verifier-test",
      leaseName: "restore-verification-test",
      reconcile: { ...defaultSettings.reconcile, intervalMs: 10 * 60_000, watchDebounceMs: 200, retryPeriodMs: 500 },
      sweep: defaultSettings.sweep,
      listPageSize: defaultSettings.kubernetes.listPageSize,
      watchPvcs: false,
      watchReplicationDestinations: true,
      onReconciled: () => void passes++,
    });
    controllers.start();
    try {
      await eventually("the first pass as leader", async () => (passes > 0 ? true : undefined), { timeoutMs: 20_000 });
      assert.equal((await rdOf(ns, "watched"))!.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT], undefined);
      await finishRestore(ns, "watched", { result: "Successful", logs: RESTORED_LINE });
      const verdict = await eventually(
        "the verdict written after the watch saw the mover finish",
        async () => (await rdOf(ns, "watched"))!.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT],
        { timeoutMs: 5_000 },
      );
      assert.equal(verdict, "verified");
    } finally {
      await controllers.stop();
    }
  });
});
