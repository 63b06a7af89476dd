import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { detectEarlierIncarnation, type IncarnationFacts } from "../../../webhook/reconciler/pvc-incarnation.ts";

describe("detectEarlierIncarnation", () => {
  const pvc = { uid: "uid-new", creationTimestamp: "2026-11-25T12:00:00Z" };
  const cases: Array<[string, IncarnationFacts, RegExp | undefined]> = [
    [
      "another uid recorded on the RD",
      { pvc, recordedPvcUid: "uid-old", source: { creationTimestamp: "2026-11-25T14:00:00Z" } },
      /records PVC uid uid-old, the live PVC is uid-new/,
    ],
    ["the RS created a second before the PVC", { pvc, recordedPvcUid: undefined, source: { creationTimestamp: "2026-11-25T11:59:59Z" } }, /before the PVC/],
    [
      "the RS created before the PVC, this uid recorded",
      { pvc, recordedPvcUid: "uid-new", source: { creationTimestamp: "2026-11-25T11:00:00Z" } },
      /before the PVC/,
    ],
    ["this uid recorded, the RS created after the PVC", { pvc, recordedPvcUid: "uid-new", source: { creationTimestamp: "2026-11-25T14:00:00Z" } }, undefined],
    ["the RS created in the PVC's second", { pvc, recordedPvcUid: undefined, source: { creationTimestamp: "2026-11-25T12:00:00Z" } }, undefined],
    [
      "nothing recorded, no times",
      { pvc: { uid: "uid-new", creationTimestamp: undefined }, recordedPvcUid: undefined, source: { creationTimestamp: undefined } },
      undefined,
    ],
    [
      "a PVC without a uid",
      { pvc: { uid: undefined, creationTimestamp: undefined }, recordedPvcUid: "uid-old", source: { creationTimestamp: undefined } },
      undefined,
    ],
  ];
  for (const [name, facts, expected] of cases) {
    it(name, () => {
      const reason = detectEarlierIncarnation(facts);
      if (expected === undefined) assert.equal(reason, undefined);
      else assert.match(reason ?? "", expected);
    });
  }
});
