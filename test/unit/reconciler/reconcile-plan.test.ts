import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { planReconcile, type ReconcileView } from "../../../webhook/reconciler/reconcile-plan.ts";
import { observeBound } from "../../../webhook/reconciler/bound-observation.ts";
import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID } from "../../../webhook/domain/wire-names.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import type { KubeObject } from "../../../webhook/kube/kube-objects.ts";

const HOUR = 3_600_000;
const now = Date.parse("2026-11-25T12:00:00Z");
const policy = { ...DEFAULT_POLICY, firstBackupDelayMs: 2 * HOUR };
const sourceData = { KOPIA_PASSWORD: "cA==", KOPIA_REPOSITORY: "cg==" };

function pvc(phase: string | undefined, labels: Record<string, string> = { backup: "hourly" }, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "data", namespace: "app", uid: "uid-1", labels, ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    ...(phase ? { status: { phase } } : {}),
  };
}

const target = backupTargetOf(pvc("Bound") as never, "data", "app");
const secret = (): KubeObject => desiredSecret(target, sourceData) as unknown as KubeObject;
function destination(boundAt?: string, uid = "uid-1", paused = true): KubeObject {
  const rd = desiredReplicationDestination(target, policy, { paused }) as unknown as KubeObject;
  if (boundAt) rd.metadata.annotations = { [ANNOTATION_BOUND_OBSERVED_AT]: boundAt, [ANNOTATION_BOUND_PVC_UID]: uid };
  return rd;
}
const source = (schedule = "0 * * * *"): KubeObject =>
  desiredReplicationSource(target, policy, { schedule, retain: policy.tiers["hourly"]!.retain }) as unknown as KubeObject;

function view(overrides: Partial<ReconcileView>): ReconcileView {
  return {
    nowMs: now,
    policy,
    pvcs: [],
    secrets: [],
    replicationDestinations: [],
    replicationSources: [],
    sourceSecretData: sourceData,
    adoptKyverno: false,
    ...overrides,
  };
}

const summary = (v: ReconcileView): string[] => planReconcile(v).writes.map((w) => `${w.action} ${w.kind}`);

describe("planReconcile", () => {
  it("keeps the restore admission pinned on an RD, and never writes the PVC's restore-as-of annotation raw", () => {
    const boundAt = new Date(now - HOUR).toISOString();
    const restore = {
      point: { restoreAsOf: "2026-11-20T10:00:00Z", previous: 1 },
      snapshotId: "k42",
      snapshotStats: { fileCount: 3, dirCount: 2, totalSize: 10 },
      source: { identity: { username: "old-name", hostname: "app", path: "/data", key: "old-name@app:/data" }, fields: "explicit" as const },
    };
    const pinned = desiredReplicationDestination({ ...target, restore }, policy, { paused: false }) as unknown as KubeObject;
    pinned.metadata.annotations = { ...pinned.metadata.annotations, [ANNOTATION_BOUND_OBSERVED_AT]: boundAt, [ANNOTATION_BOUND_PVC_UID]: "uid-1" };
    const annotated = pvc("Bound", { backup: "hourly" }, { "volsync.backup/restore-as-of": "2026-11-20T12:00:00+02:00" });
    const plan = planReconcile(view({ pvcs: [annotated], secrets: [secret()], replicationDestinations: [pinned] }));
    assert.deepEqual(plan.writes, [], "an in-sync pinned RD needs no write");

    // A missing RD is made again paused with the PVC's own identity and no restore point.
    const recreated = planReconcile(view({ pvcs: [annotated], secrets: [secret()] })).writes.find((w) => w.kind === "ReplicationDestination");
    const kopia = (recreated?.object["spec"] as { kopia: Record<string, unknown> }).kopia;
    assert.equal(kopia["restoreAsOf"], undefined);
    assert.equal(kopia["username"], "data-backup");
  });

  it("creates the Secret and a paused RD for a protected PVC that has none, and no RS while Pending", () => {
    const plan = planReconcile(view({ pvcs: [pvc("Pending")] }));
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["create Secret", "create ReplicationDestination"],
    );
    assert.equal((plan.writes[1]!.object["spec"] as { paused: boolean }).paused, true);
    assert.equal(plan.awaitingFirstBackup, 1);
  });

  it("writes nothing when every object is in sync and the PVC waits for its first backup", () => {
    const boundAt = new Date(now - HOUR).toISOString();
    assert.deepEqual(summary(view({ pvcs: [pvc("Bound")], secrets: [secret()], replicationDestinations: [destination(boundAt)] })), []);
  });

  it("records the first Bound sighting on the RD", () => {
    const plan = planReconcile(view({ pvcs: [pvc("Bound")], secrets: [secret()], replicationDestinations: [destination()] }));
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["apply ReplicationDestination"],
    );
    assert.equal(plan.writes[0]!.object.metadata.annotations?.[ANNOTATION_BOUND_OBSERVED_AT], new Date(now).toISOString());
  });

  it("creates the RS once the PVC has been Bound for the delay", () => {
    const boundAt = new Date(now - 2 * HOUR).toISOString();
    const plan = planReconcile(view({ pvcs: [pvc("Bound")], secrets: [secret()], replicationDestinations: [destination(boundAt)] }));
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["create ReplicationSource"],
    );
    assert.equal(plan.writes[0]!.schedulesFirstBackup, true);
  });

  it("starts the clock again for a PVC recreated under the same name", () => {
    const boundAt = new Date(now - 5 * HOUR).toISOString();
    const plan = planReconcile(view({ pvcs: [pvc("Bound")], secrets: [secret()], replicationDestinations: [destination(boundAt, "uid-old")] }));
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["apply ReplicationDestination"],
    );
  });

  describe("a ReplicationSource made for an earlier PVC of the same name", () => {
    const earlierBoundAt = new Date(now - 5 * HOUR).toISOString();
    const liveSource = (overrides: { createdAt?: string; labels?: Record<string, string> } = {}): KubeObject => {
      const rs = source();
      rs.metadata.uid = "rs-uid";
      rs.metadata.creationTimestamp = overrides.createdAt ?? "2026-11-25T09:00:00Z";
      if (overrides.labels) rs.metadata.labels = overrides.labels;
      return rs;
    };
    const recreated = (): KubeObject => {
      const live = pvc("Bound");
      live.metadata.creationTimestamp = "2026-11-25T08:00:00Z";
      return live;
    };

    it("deletes it, by uid, when the RD records another PVC uid, and restarts the clock for this one", () => {
      const plan = planReconcile(
        view({
          pvcs: [recreated()],
          secrets: [secret()],
          replicationDestinations: [destination(earlierBoundAt, "uid-old")],
          replicationSources: [liveSource()],
        }),
      );
      assert.deepEqual(
        plan.writes.map((w) => `${w.action} ${w.kind}`),
        ["apply ReplicationDestination", "delete ReplicationSource"],
      );
      assert.equal(plan.writes[1]!.object.metadata.uid, "rs-uid");
      assert.match(plan.writes[1]!.reason, /records PVC uid uid-old, the live PVC is uid-1/);
      const annotations = plan.writes[0]!.object.metadata.annotations;
      assert.deepEqual(annotations, { [ANNOTATION_BOUND_OBSERVED_AT]: new Date(now).toISOString(), [ANNOTATION_BOUND_PVC_UID]: "uid-1" });
      assert.equal(plan.awaitingFirstBackup, 1);
    });

    it("deletes it while the recreated PVC is still Pending", () => {
      const pending = recreated();
      pending["status"] = { phase: "Pending" };
      const plan = planReconcile(
        view({ pvcs: [pending], secrets: [secret()], replicationDestinations: [destination(earlierBoundAt, "uid-old")], replicationSources: [liveSource()] }),
      );
      assert.deepEqual(
        plan.writes.filter((w) => w.kind === "ReplicationSource").map((w) => w.action),
        ["delete"],
      );
    });

    it("deletes it when it was created before the PVC, even with nothing recorded on the RD", () => {
      const plan = planReconcile(
        view({
          pvcs: [recreated()],
          secrets: [secret()],
          replicationDestinations: [destination()],
          replicationSources: [liveSource({ createdAt: "2026-11-25T07:59:59Z" })],
        }),
      );
      assert.deepEqual(
        plan.writes.map((w) => `${w.action} ${w.kind}`),
        ["apply ReplicationDestination", "delete ReplicationSource"],
      );
      assert.match(plan.writes[1]!.reason, /created at 2026-11-25T07:59:59Z, before the PVC/);
    });

    it("keeps the RS of this PVC", () => {
      const plan = planReconcile(
        view({
          pvcs: [recreated()],
          secrets: [secret()],
          replicationDestinations: [destination(earlierBoundAt, "uid-1")],
          replicationSources: [liveSource({ createdAt: "2026-11-25T08:00:00Z" })],
        }),
      );
      assert.deepEqual(plan.writes, []);
    });

    it("leaves alone an RS someone else manages, and one Kyverno made unless adoption is on", () => {
      const rdOfEarlierPvc = destination(earlierBoundAt, "uid-old");
      const foreign = liveSource({ labels: { "volsync.backup/pvc": "data" } });
      const foreignPlan = planReconcile(
        view({ pvcs: [recreated()], secrets: [secret()], replicationDestinations: [rdOfEarlierPvc], replicationSources: [foreign], adoptKyverno: true }),
      );
      assert.deepEqual(
        foreignPlan.writes.filter((w) => w.kind === "ReplicationSource"),
        [],
      );
      assert.ok(foreignPlan.notes.some((n) => /may belong to an earlier PVC/.test(n.note)));

      const kyverno = liveSource({ labels: { "app.kubernetes.io/managed-by": "kyverno", "volsync.backup/pvc": "data" } });
      const base = { pvcs: [recreated()], secrets: [secret()], replicationDestinations: [rdOfEarlierPvc], replicationSources: [kyverno] };
      assert.deepEqual(
        planReconcile(view(base)).writes.filter((w) => w.kind === "ReplicationSource"),
        [],
      );
      assert.deepEqual(
        planReconcile(view({ ...base, adoptKyverno: true }))
          .writes.filter((w) => w.kind === "ReplicationSource")
          .map((w) => w.action),
        ["delete"],
      );
    });
  });

  it("keeps a live RD's paused value: the reconciler has no catalog answer", () => {
    const boundAt = new Date(now - HOUR).toISOString();
    assert.deepEqual(summary(view({ pvcs: [pvc("Bound")], secrets: [secret()], replicationDestinations: [destination(boundAt, "uid-1", false)] })), []);
  });

  it("updates the RS schedule on a tier change", () => {
    const boundAt = new Date(now - 3 * HOUR).toISOString();
    const plan = planReconcile(
      view({ pvcs: [pvc("Bound", { backup: "daily" })], secrets: [secret()], replicationDestinations: [destination(boundAt)], replicationSources: [source()] }),
    );
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["apply ReplicationSource"],
    );
    assert.match(plan.writes[0]!.reason, /spec\.trigger\.schedule/);
  });

  it("re-syncs the Secret when the source changes", () => {
    const boundAt = new Date(now - HOUR).toISOString();
    const plan = planReconcile(
      view({
        pvcs: [pvc("Bound")],
        secrets: [secret()],
        replicationDestinations: [destination(boundAt)],
        sourceSecretData: { ...sourceData, KOPIA_PASSWORD: "cTI=" },
      }),
    );
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["apply Secret"],
    );
  });

  it("leaves the Secret alone when the source cannot be read", () => {
    const plan = planReconcile(view({ pvcs: [pvc("Pending")], sourceSecretData: undefined }));
    assert.deepEqual(
      plan.writes.map((w) => `${w.action} ${w.kind}`),
      ["create ReplicationDestination"],
    );
    assert.match(plan.notes[0]!.note, /source Secret unreadable/);
  });

  it("ignores unprotected and terminating PVCs", () => {
    const terminating = pvc("Bound");
    terminating.metadata.deletionTimestamp = "2026-11-25T11:00:00Z";
    assert.deepEqual(summary(view({ pvcs: [pvc("Bound", { backup: "weekly" }), pvc("Bound", {}), terminating] })), []);
  });

  it("adopts objects Kyverno generated only when configured", () => {
    const kyverno = secret();
    kyverno.metadata.labels = { "app.kubernetes.io/managed-by": "kyverno", "volsync.backup/pvc": "data" };
    const boundAt = new Date(now - HOUR).toISOString();
    const base = { pvcs: [pvc("Bound")], secrets: [kyverno], replicationDestinations: [destination(boundAt)] };
    assert.deepEqual(summary(view(base)), []);
    assert.deepEqual(summary(view({ ...base, adoptKyverno: true })), ["adopt Secret"]);
  });

  it("never touches a same-named object someone else manages", () => {
    const foreign = secret();
    foreign.metadata.labels = { "volsync.backup/pvc": "data" };
    const boundAt = new Date(now - HOUR).toISOString();
    const plan = planReconcile(view({ pvcs: [pvc("Bound")], secrets: [foreign], replicationDestinations: [destination(boundAt)], adoptKyverno: true }));
    assert.deepEqual(plan.writes, []);
    assert.match(plan.notes[0]!.note, /not managed by pvc-guardian/);
  });
});

describe("observeBound", () => {
  const cases: Array<[string, { uid: string | undefined; phase: string | undefined }, Record<string, string> | undefined, number | undefined]> = [
    ["not Bound", { uid: "u", phase: "Pending" }, undefined, undefined],
    ["Bound, nothing recorded", { uid: "u", phase: "Bound" }, undefined, now],
    [
      "Bound, recorded for this uid",
      { uid: "u", phase: "Bound" },
      { [ANNOTATION_BOUND_OBSERVED_AT]: "2026-11-25T10:00:00.000Z", [ANNOTATION_BOUND_PVC_UID]: "u" },
      now - 2 * HOUR,
    ],
    [
      "Bound, recorded for another uid",
      { uid: "u", phase: "Bound" },
      { [ANNOTATION_BOUND_OBSERVED_AT]: "2026-11-25T10:00:00.000Z", [ANNOTATION_BOUND_PVC_UID]: "v" },
      now,
    ],
    [
      "Bound, recorded in the future",
      { uid: "u", phase: "Bound" },
      { [ANNOTATION_BOUND_OBSERVED_AT]: "2026-11-26T10:00:00.000Z", [ANNOTATION_BOUND_PVC_UID]: "u" },
      now,
    ],
    ["Bound, garbage recorded", { uid: "u", phase: "Bound" }, { [ANNOTATION_BOUND_OBSERVED_AT]: "soon", [ANNOTATION_BOUND_PVC_UID]: "u" }, now],
  ];
  for (const [name, pvcState, recorded, expected] of cases) {
    it(name, () => assert.equal(observeBound(pvcState, recorded, now)?.observedAtMs, expected));
  }
});
