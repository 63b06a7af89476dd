import { test } from "node:test";
import assert from "node:assert/strict";
import { judgePolicySupport, type VolSyncCapabilities } from "../../../webhook/domain/policy-support.ts";

const nfs = { server: "nas.lan", path: "/volsync", mountPath: "repository" };
const withNfs = { nfs };
const withoutNfs = {};
const lacking: VolSyncCapabilities = {
  known: true,
  hasNfsMoverVolumes: false,
  crdsWithoutNfs: ["replicationsources.volsync.backube", "replicationdestinations.volsync.backube"],
};
const having: VolSyncCapabilities = { known: true, hasNfsMoverVolumes: true, crdsWithoutNfs: [] };
const unknown: VolSyncCapabilities = { known: false, reason: "customresourcedefinitions is forbidden" };

const cases: [string, Parameters<typeof judgePolicySupport>[0], VolSyncCapabilities, boolean][] = [
  ["an NFS policy on CRDs with nfs mover volumes is supported", withNfs, having, true],
  ["an NFS policy on CRDs without them is not", withNfs, lacking, false],
  ["an NFS policy on CRDs that could not be read is treated as supported", withNfs, unknown, true],
  ["a policy without NFS is supported on CRDs without nfs mover volumes", withoutNfs, lacking, true],
  ["a policy without NFS is supported on CRDs with them", withoutNfs, having, true],
  ["a policy without NFS is supported when the CRDs could not be read", withoutNfs, unknown, true],
];

for (const [name, policy, capabilities, supported] of cases) {
  test(name, () => {
    assert.equal(judgePolicySupport(policy, capabilities).supported, supported);
  });
}

test("the problem says what is wrong and both ways to fix it", () => {
  const judged = judgePolicySupport(withNfs, { ...lacking, crdsWithoutNfs: ["replicationdestinations.volsync.backube"] });
  assert.equal(judged.supported, false);
  if (judged.supported) return;
  assert.match(judged.problem, /repository\.nfs: nas\.lan:\/volsync/);
  assert.match(judged.problem, /\(replicationdestinations\.volsync\.backube\) have no nfs mover volumes/);
  assert.match(judged.problem, /upgrade VolSync .* perfectra1n\/volsync v0\.17\.11/);
  assert.match(judged.problem, /or remove repository\.nfs from the policy$/);
});
