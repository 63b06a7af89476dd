import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withOwnManagedFields, type KubeObject } from "../../../webhook/kube/kube-objects.ts";

const pvc = (managedFields?: KubeObject["metadata"]["managedFields"]): KubeObject => ({
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name: "data", namespace: "media", labels: { backup: "hourly" }, ...(managedFields ? { managedFields } : {}) },
  spec: { accessModes: ["ReadWriteOnce"] },
});

describe("withOwnManagedFields", () => {
  it("keeps only the entries of the given field manager", () => {
    const ours = { manager: "pvc-guardian", operation: "Apply", fieldsV1: { "f:spec": {} } };
    const kept = withOwnManagedFields(pvc([{ manager: "kubectl", operation: "Update", fieldsV1: { "f:metadata": {} } }, ours]), "pvc-guardian");
    assert.deepEqual(kept.metadata.managedFields, [ours]);
    assert.deepEqual(kept.spec, { accessModes: ["ReadWriteOnce"] });
    assert.deepEqual(kept.metadata.labels, { backup: "hourly" });
  });

  it("drops managedFields when no entry is ours", () => {
    const kept = withOwnManagedFields(pvc([{ manager: "kube-controller-manager", operation: "Update", subresource: "status" }]), "pvc-guardian");
    assert.equal("managedFields" in kept.metadata, false);
  });

  it("leaves an object without managedFields as it is", () => {
    const object = pvc();
    assert.equal(withOwnManagedFields(object, "pvc-guardian"), object);
  });
});
