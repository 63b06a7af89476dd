// The ReplicationSource and ReplicationDestination that planPvc generates are accepted (201) by a
// real kube-apiserver with VolSync's CRDs, v0.17.11 and v0.17.7, under strict field validation,
// for the PVC names where VolSync's 50-character cut goes wrong: names whose `<name>-backup` cut
// ends in `-`, long StatefulSet ordinals that collide after the cut, dotted names, short ones.
// Every PVC gets its own identity, the same for its RS and RD (contract §1).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createAssumedCatalog, planPvc, type PlanEntry } from "../../../webhook/cli/plan.ts";
import { DEFAULT_POLICY, type Policy } from "../../../webhook/domain/policy.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds, type VolSyncCrdVersion } from "../../harness/crds.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { automaticUsername, moverJobEnvironment, moverRestoreSource, type VolSyncObject } from "../../harness/volsync-mover-oracle.ts";
import { eventually } from "../../support/eventually.ts";
import { pvcObject } from "../../support/pvc-object.ts";

const kafkaOrdinals = ["data-kafka-broker-production-eu-west-1-cluster-abc-0", "data-kafka-broker-production-eu-west-1-cluster-abc-1"];
const longest = "data-kafka-broker-production-eu-west-1-cluster-abc-def-ghijkl-0";
/** Names whose `<name>-backup`, cleaned as VolSync does, ends in `-` at the 50-character cut. */
const cutEndsInDash = [
  "analytics-warehouse-postgres-primary-data-volume1",
  "storage-loki-write-observability-stack-eu-central-0-wal",
  "pg.eu1.analytics-warehouse-primaryreplicadataset001-x",
];

/** PVC names, each with why it is here. */
const pvcNames: [string, string][] = [
  [cutEndsInDash[0]!, "49 characters: `<name>-backup` cut to 50 ends in `-`"],
  [cutEndsInDash[1]!, "its 50th character is `-`"],
  [cutEndsInDash[2]!, "dotted: without its dots the 50th character is `-`"],
  ["redis.cache.eu-west-1.example.com-primary-replicaset1-data-7", "dotted, 60 characters"],
  [kafkaOrdinals[0]!, "StatefulSet ordinal 0, 52 characters"],
  [kafkaOrdinals[1]!, "StatefulSet ordinal 1: the same 50-character cut as ordinal 0"],
  [longest, "63 characters, the same cut again"],
  ["postgres-data.primary", "dotted"],
  ["db.example.com", "dotted"],
  ["app-data", "short"],
  ["a", "one character"],
];

const nfsPolicy: Policy = { ...DEFAULT_POLICY, nfs: { server: "nas.lan", path: "/volsync", mountPath: "repository" } };

const pvcNamed = (name: string, namespace: string): PersistentVolumeClaim => pvcObject(namespace, name);

function volSyncObjects(entry: PlanEntry): VolSyncObject[] {
  const objects = entry.generated.filter((object) => {
    const kind = (object as { kind?: string }).kind;
    return kind === "ReplicationSource" || kind === "ReplicationDestination";
  }) as VolSyncObject[];
  assert.equal(objects.length, 2, `${entry.pvc}: one RS and one RD (admission ${JSON.stringify(entry.admission)}, notes ${entry.notes.join("; ")})`);
  return objects;
}

const plurals: Record<string, string> = { ReplicationSource: "replicationsources", ReplicationDestination: "replicationdestinations" };

/** Creates with fieldValidation=Strict; undefined when stored as written, else what went wrong. */
async function createStrict(cluster: TestCluster, object: VolSyncObject): Promise<string | undefined> {
  const { namespace, name } = object.metadata;
  const response = await requestJson<{ message?: string; spec?: unknown }>(
    cluster,
    "POST",
    `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/${plurals[object.kind]}?fieldValidation=Strict`,
    { body: object },
  );
  if (response.status !== 201) return `${object.kind} ${name}: HTTP ${response.status}: ${response.body?.message ?? JSON.stringify(response.body)}`;
  assert.deepEqual(response.body?.spec, (object as { spec?: unknown }).spec, `${object.kind} ${name}: stored as written`);
  return undefined;
}

describe("generated identities on the real apiserver with VolSync's CRDs", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster();
  });

  after(async () => {
    await cluster?.stop();
  });

  it("covers the names it claims to", () => {
    const cut = (name: string) => automaticUsername(`${name}-backup`);
    assert.equal(cutEndsInDash[0]!.length, 49);
    for (const name of cutEndsInDash) assert.match(cut(name), /-$/, name);
    assert.equal(longest.length, 63);
    assert.equal(cut(kafkaOrdinals[0]!), cut(kafkaOrdinals[1]!));
    assert.equal(cut(kafkaOrdinals[0]!), cut(longest));
    const listed = pvcNames.map(([name]) => name);
    for (const name of [...cutEndsInDash, ...kafkaOrdinals, longest]) assert.ok(listed.includes(name), name);
  });

  // v0.17.11 first, then the same cluster's CRDs replaced by v0.17.7's (it has no nfs mover volumes).
  const runs: [VolSyncCrdVersion, Policy][] = [
    ["v0.17.11", nfsPolicy],
    ["v0.17.7", DEFAULT_POLICY],
  ];
  for (const [version, policy] of runs) {
    describe(`VolSync ${version} CRDs`, () => {
      before(async () => {
        await installCrds(cluster, { volSyncVersion: version, certManager: false });
        if (version === "v0.17.7") await waitForSchemaWithoutNfs(cluster);
      });

      for (const path of ["restore", "fresh"] as const) {
        it(`accepts the RS and RD generated on the ${path} path for every name, each PVC with its own identity`, async () => {
          const namespace = await createNamespace(cluster);
          const nowMs = Date.now();
          const identities = new Map<string, string>();
          // Every problem of every name, so one run shows the whole picture.
          const problems: string[] = [];
          for (const [name, why] of pvcNames) {
            const entry = await planPvc(pvcNamed(name, namespace), 1, namespace, policy, createAssumedCatalog(path, nowMs), nowMs);
            assert.equal(entry.decision, path, `${name}: ${entry.decisionDetail}`);
            const objects = volSyncObjects(entry);
            const sources = new Set(objects.map((object) => moverRestoreSource(moverJobEnvironment(object))));
            if (sources.size !== 1) problems.push(`${name} (${why}): RS and RD name different identities: ${[...sources].join(", ")}`);
            for (const object of objects) {
              const refused = await createStrict(cluster, object);
              if (refused !== undefined) problems.push(`${name} (${why}): ${refused}`);
            }
            const source = moverRestoreSource(moverJobEnvironment(objects[0]!));
            const other = identities.get(source);
            if (other !== undefined) problems.push(`${name} (${why}): shares the identity ${source} with ${other}`);
            identities.set(source, name);
          }
          assert.deepEqual(problems, []);
          const ordinalIdentities = kafkaOrdinals.map((name) => [...identities].find(([, pvc]) => pvc === name)?.[0]);
          assert.notEqual(ordinalIdentities[0], ordinalIdentities[1]);
        });
      }
    });
  }
});

/** After replacing the CRDs: wait until an nfs mover volume is refused, so v0.17.7's schema is live. */
async function waitForSchemaWithoutNfs(cluster: TestCluster): Promise<void> {
  const namespace = await createNamespace(cluster);
  const probe = {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationDestination",
    metadata: { namespace },
    spec: {
      trigger: { manual: "probe" },
      kopia: {
        repository: "r",
        copyMethod: "Snapshot",
        moverVolumes: [{ mountPath: "repository", volumeSource: { nfs: { server: "nas.lan", path: "/volsync" } } }],
      },
    },
  };
  let attempt = 0;
  const refusal = await eventually(
    "the v0.17.7 CRDs to take effect (nfs mover volumes refused)",
    async () => {
      const response = await requestJson<{ message?: string }>(
        cluster,
        "POST",
        `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/replicationdestinations?fieldValidation=Strict`,
        { body: { ...probe, metadata: { ...probe.metadata, name: `probe-${attempt++}` } } },
      );
      return response.status === 422 || response.status === 400 ? response : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  assert.match(refusal.body?.message ?? "", /nfs/);
}
