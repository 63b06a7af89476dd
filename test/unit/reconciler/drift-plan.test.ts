import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { planDrift, ownedButUnwanted, differingPaths } from "../../../webhook/reconciler/drift-plan.ts";
import type { KubeObject } from "../../../webhook/kube/kube-objects.ts";

const desired: KubeObject = {
  apiVersion: "volsync.backube/v1alpha1",
  kind: "ReplicationSource",
  metadata: { name: "data-backup", namespace: "app", labels: { "app.kubernetes.io/managed-by": "pvc-guardian" } },
  spec: { trigger: { schedule: "0 * * * *" }, kopia: { retain: { hourly: 24 }, accessModes: ["ReadWriteOnce"] } },
};

function live(overrides: Partial<KubeObject> & { spec?: unknown }): KubeObject {
  return structuredClone({ ...desired, metadata: { ...desired.metadata, uid: "u1", resourceVersion: "5" }, ...overrides }) as KubeObject;
}

describe("planDrift", () => {
  it("reports missing when there is no live object", () => {
    assert.deepEqual(planDrift(desired, undefined), { state: "missing" });
  });

  it("is in sync when live holds every desired field, plus fields others set", () => {
    const current = live({
      spec: { trigger: { schedule: "0 * * * *" }, kopia: { retain: { hourly: 24 }, accessModes: ["ReadWriteOnce"], cleanupCachePVC: true } },
    });
    current["status"] = { lastSyncTime: "2026-01-01T00:00:00Z" };
    current.metadata.annotations = { "user/note": "kept" };
    assert.deepEqual(planDrift(desired, current), { state: "in-sync" });
  });

  it("reports the paths of changed fields", () => {
    const current = live({ spec: { trigger: { schedule: "0 2 * * *" }, kopia: { retain: { hourly: 24, daily: 7 }, accessModes: ["ReadWriteOnce"] } } });
    const drift = planDrift(desired, current);
    assert.equal(drift.state, "drifted");
    assert.deepEqual(drift.state === "drifted" && drift.paths, ["spec.trigger.schedule"]);
  });

  it("treats arrays as whole values", () => {
    const current = live({ spec: { trigger: { schedule: "0 * * * *" }, kopia: { retain: { hourly: 24 }, accessModes: ["ReadWriteOnce", "ReadOnlyMany"] } } });
    assert.deepEqual(planDrift(desired, current), { state: "drifted", paths: ["spec.kopia.accessModes"] });
  });

  it("reports a field our apply owns that is no longer wanted", () => {
    const current = live({
      spec: { trigger: { schedule: "0 * * * *" }, kopia: { retain: { hourly: 24 }, accessModes: ["ReadWriteOnce"], restoreAsOf: "2026-01-01T00:00:00Z" } },
    });
    current.metadata.managedFields = [
      { manager: "pvc-guardian", operation: "Apply", fieldsV1: { "f:spec": { "f:kopia": { "f:restoreAsOf": {}, "f:retain": { "f:hourly": {} } } } } },
      { manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": { "f:kopia": { "f:cleanupCachePVC": {} } } } },
    ];
    assert.deepEqual(planDrift(desired, current), { state: "drifted", paths: ["spec.kopia.restoreAsOf (no longer wanted)"] });
  });

  it("ignores fields other managers own", () => {
    const current = live({
      spec: { trigger: { schedule: "0 * * * *" }, kopia: { retain: { hourly: 24 }, accessModes: ["ReadWriteOnce"], cleanupCachePVC: true } },
    });
    current.metadata.managedFields = [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": { "f:kopia": { "f:cleanupCachePVC": {} } } } }];
    assert.deepEqual(planDrift(desired, current), { state: "in-sync" });
  });
});

describe("ownedButUnwanted", () => {
  const cases: Array<[string, unknown, Record<string, unknown>, string[]]> = [
    ["nothing owned", { a: 1 }, {}, []],
    ["owned and wanted", { a: { b: 1 } }, { "f:a": { "f:b": {} } }, []],
    ["owned leaf gone", { a: {} }, { "f:a": { "f:b": {} } }, ["a.b"]],
    ["owned list under a wanted leaf", { a: [1] }, { "f:a": { 'k:{"x":1}': {} } }, []],
    ["markers are not fields", { a: { b: 1 } }, { "f:a": { ".": {}, "f:b": {} } }, []],
  ];
  for (const [name, wanted, owned, expected] of cases) {
    it(name, () => assert.deepEqual(ownedButUnwanted(wanted, owned), expected));
  }
});

describe("differingPaths", () => {
  it("reports a missing object as its path", () => assert.deepEqual(differingPaths({ a: { b: 1 } }, {}), ["a"]));
  it("compares scalars strictly", () => assert.deepEqual(differingPaths({ a: 2 }, { a: "2" }), ["a"]));
});
