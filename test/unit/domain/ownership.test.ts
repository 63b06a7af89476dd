import { test } from "node:test";
import assert from "node:assert/strict";
import { mayManage, ownershipOf } from "../../../webhook/domain/ownership.ts";

test("ownership comes from the managed-by label; Kyverno's objects are managed only when adopted", () => {
  const ours = { "app.kubernetes.io/managed-by": "pvc-guardian" };
  const kyverno = { "app.kubernetes.io/managed-by": "kyverno" };
  const helm = { "app.kubernetes.io/managed-by": "Helm" };
  assert.deepEqual([ownershipOf(ours), ownershipOf(kyverno), ownershipOf(helm), ownershipOf(undefined)], ["ours", "kyverno", "foreign", "foreign"]);
  assert.deepEqual(
    [mayManage(ours, false), mayManage(kyverno, false), mayManage(kyverno, true), mayManage(helm, true), mayManage({}, true)],
    [true, false, true, false, false],
  );
});
