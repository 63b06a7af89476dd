import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { breakerLimit, planOrphans } from "../../../webhook/reconciler/orphan-plan.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import type { KubeObject } from "../../../webhook/kube/kube-objects.ts";

const MINUTE = 60_000;

function pvc(namespace: string, name: string, labels: Record<string, string> = { backup: "hourly" }): KubeObject {
  return { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace, uid: `pvc-${namespace}-${name}`, labels } };
}

function ours(namespace: string, pvcName: string, kind = "Secret", managedBy = "pvc-guardian", extra: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: kind === "Secret" ? "v1" : "volsync.backube/v1alpha1",
    kind,
    metadata: {
      name: `${pvcName}-${kind}`,
      namespace,
      uid: `${namespace}-${pvcName}-${kind}`,
      labels: { "app.kubernetes.io/managed-by": managedBy, "volsync.backup/pvc": pvcName },
      ...(Object.keys(extra).length ? { annotations: extra } : {}),
    },
  };
}

const base = { nowMs: 100 * MINUTE, gracePeriodMs: 10 * MINUTE, policy: DEFAULT_POLICY, firstSeenOrphanedMs: new Map<string, number>() };

describe("planOrphans", () => {
  it("keeps objects of a protected PVC", () => {
    const plan = planOrphans({ ...base, pvcs: [pvc("a", "data")], managed: [ours("a", "data"), ours("a", "data", "ReplicationSource")] });
    assert.equal(plan.due.length + plan.waiting.length, 0);
    assert.equal(plan.breaker.managedObjects, 2);
  });

  it("starts the grace period for objects whose PVC is gone", () => {
    const plan = planOrphans({ ...base, pvcs: [], managed: [ours("a", "data")] });
    assert.equal(plan.due.length, 0);
    assert.equal(plan.waiting[0]?.reason, "pvc-gone");
    assert.equal(plan.firstSeenOrphanedMs.get("a-data-Secret"), base.nowMs);
  });

  it("makes an orphan due once the grace period has passed since it was first seen", () => {
    const firstSeen = new Map([["a-data-Secret", base.nowMs - 10 * MINUTE]]);
    const plan = planOrphans({ ...base, firstSeenOrphanedMs: firstSeen, pvcs: [], managed: [ours("a", "data")] });
    assert.equal(plan.due.length, 1);
  });

  it("counts a PVC without the label, or with an unknown tier, or in an excluded namespace, as not protected", () => {
    const plan = planOrphans({
      ...base,
      pvcs: [pvc("a", "one", {}), pvc("a", "two", { backup: "Hourly" }), pvc("kube-system", "three")],
      managed: [ours("a", "one"), ours("a", "two"), ours("kube-system", "three")],
    });
    assert.deepEqual(
      plan.waiting.map((o) => o.reason),
      ["pvc-not-protected", "pvc-not-protected", "pvc-not-protected"],
    );
  });

  it("forgets the clock when the PVC comes back under the same name", () => {
    const firstSeen = new Map([["a-data-Secret", base.nowMs - 60 * MINUTE]]);
    const plan = planOrphans({ ...base, firstSeenOrphanedMs: firstSeen, pvcs: [pvc("a", "data")], managed: [ours("a", "data")] });
    assert.equal(plan.due.length, 0);
    assert.equal(plan.firstSeenOrphanedMs.size, 0);
  });

  it("never plans to delete objects without our managed-by label", () => {
    const plan = planOrphans({ ...base, gracePeriodMs: 0, pvcs: [], managed: [ours("a", "data", "Secret", "kyverno"), ours("a", "x", "Secret", "argocd")] });
    assert.equal(plan.due.length, 0);
    assert.equal(plan.breaker.managedObjects, 0);
  });

  it("reads the PVC name from the annotation when the label value is a hash", () => {
    const long = "x".repeat(70);
    const object = ours("a", "pvc-0123456789abcdef01234567", "Secret", "pvc-guardian", { "volsync.backup/pvc-name": long });
    assert.equal(planOrphans({ ...base, pvcs: [pvc("a", long)], managed: [object] }).waiting.length, 0);
    assert.equal(planOrphans({ ...base, pvcs: [], managed: [object] }).waiting[0]?.pvcName, long);
  });
});

describe("the breaker", () => {
  const cases: Array<[number, number, boolean]> = [
    // [managed objects, due deletions, tripped]
    [30, 10, false],
    [30, 11, true],
    [100, 20, false],
    [100, 21, true],
    [1000, 200, false],
    [1000, 201, true],
  ];
  for (const [managedCount, dueCount, tripped] of cases) {
    it(`${tripped ? "trips" : "holds still"} at ${dueCount} of ${managedCount}`, () => {
      const managed: KubeObject[] = [];
      const pvcs: KubeObject[] = [];
      for (let index = 0; index < managedCount; index++) {
        managed.push(ours("n", `p${index}`));
        if (index >= dueCount) pvcs.push(pvc("n", `p${index}`));
      }
      const plan = planOrphans({ ...base, gracePeriodMs: 0, pvcs, managed });
      assert.equal(plan.breaker.wouldDelete, dueCount);
      assert.equal(plan.breaker.tripped, tripped);
    });
  }
  it("allows at least 10 deletions however few objects there are", () => assert.equal(breakerLimit(3), 10));
});
