import { test } from "node:test";
import assert from "node:assert/strict";
import { backupIdentity } from "../../../webhook/domain/kopia-identity.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import {
  decideMutation,
  decideValidation,
  evaluatePvc,
  restoreDataSourceRef,
  type AdmissionRequestFacts,
  type IdentityLookup,
} from "../../../webhook/domain/pvc-admission.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import { generatedNames } from "../../../webhook/domain/resource-names.ts";
import { snapshotRecord, type CatalogLookup } from "../../../webhook/domain/snapshot-catalog.ts";

const SNAPSHOT = snapshotRecord({ id: "k9f3", startTime: "2026-11-20T02:00:00Z", endTime: "2026-11-20T02:03:00Z", incomplete: false })!;
const lookups: Record<"restore" | "fresh" | "unknown", CatalogLookup> = {
  restore: { readable: true, snapshots: [SNAPSHOT], refreshedAtMs: 0 },
  fresh: { readable: true, snapshots: [], refreshedAtMs: 0 },
  unknown: { readable: false, reason: "the repository password is wrong" },
};
const EXPECTED_REF = { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "app-data-backup" };

function pvc(
  overrides: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: PersistentVolumeClaim["spec"] } = {},
): PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: "app-data",
      namespace: "media",
      labels: overrides.labels ?? { backup: "hourly", "app.kubernetes.io/instance": "media" },
      ...(overrides.annotations ? { annotations: overrides.annotations } : {}),
    },
    spec: overrides.spec ?? { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } }, storageClassName: "longhorn" },
  };
}
function withGenerateName(generateName: string, name: string): PersistentVolumeClaim {
  const claim = pvc();
  claim.metadata = { ...claim.metadata, name, generateName };
  return claim;
}
const facts: AdmissionRequestFacts = { operation: "CREATE", name: "app-data", namespace: "media" };

function run(claim: PersistentVolumeClaim, answer: keyof typeof lookups, options: { facts?: typeof facts; dormant?: boolean } = {}) {
  const asked: string[] = [];
  const lookup: IdentityLookup = (key) => {
    asked.push(key);
    return lookups[answer];
  };
  const evaluation = evaluatePvc(claim, options.facts ?? facts, DEFAULT_POLICY, lookup);
  return {
    evaluation,
    asked,
    mutation: decideMutation(claim, evaluation, options.dormant ?? false),
    validation: decideValidation(claim, evaluation, options.dormant ?? false),
  };
}

test("evaluatePvc looks up the identity of <pvc>-backup in the PVC's namespace", () => {
  const { evaluation, asked } = run(pvc(), "fresh");
  assert.equal(evaluation.scope, "protected");
  assert.deepEqual(asked, ["app-data-backup@media:/data"]);
  assert.ok(evaluation.scope === "protected");
  assert.deepEqual(evaluation.identity, backupIdentity("app-data-backup", "media").written);
  assert.equal(evaluation.identity.key, "app-data-backup@media:/data");
  assert.deepEqual(evaluation.names, generatedNames("app-data"));
  assert.equal(evaluation.tierName, "hourly");
  assert.deepEqual(evaluation.schedule, { ok: true, schedule: "0 * * * *" });
});

test("evaluatePvc of a dotted name looks up its own identity, then the one VolSync would have written", () => {
  const claim = pvc();
  claim.metadata!.name = "db.main";
  const { asked, evaluation } = run(claim, "fresh", { facts: { operation: "CREATE", name: "db.main", namespace: "prod-eu" } });
  assert.ok(evaluation.scope === "protected");
  assert.match(evaluation.identity.key, /^dbmain-backup\.[0-9a-f]{12}@prod-eu:\/data$/);
  assert.deepEqual(asked, [evaluation.identity.key, "dbmain-backup@prod-eu:/data"]);
});

test("evaluatePvc denies a PVC whose snapshots may sit under an identity other names share, and says the way out", () => {
  const claim = pvc();
  claim.metadata!.name = "db.main";
  const facts = { operation: "CREATE", name: "db.main", namespace: "prod-eu" };
  const lookup: IdentityLookup = (key) => (key === "dbmain-backup@prod-eu:/data" ? lookups.restore : lookups.fresh);
  const evaluation = evaluatePvc(claim, facts, DEFAULT_POLICY, lookup);
  const validation = decideValidation(claim, evaluation, false);
  assert.equal(validation.allowed, false);
  assert.match(validation.allowed ? "" : validation.message, /restore-from-identity: "dbmain-backup@prod-eu:\/data"/);
  assert.doesNotMatch(validation.allowed ? "" : validation.message, /Fix the repository access/);
  // With the annotation, the same PVC restores from there through an explicit identity.
  claim.metadata!.annotations = { "volsync.backup/restore-from-identity": "dbmain-backup@prod-eu:/data" };
  const annotated = evaluatePvc(claim, facts, DEFAULT_POLICY, lookup);
  assert.ok(annotated.scope === "protected" && annotated.decision.answer === "restore");
  assert.equal(annotated.restoreSource?.identity.key, "dbmain-backup@prod-eu:/data");
});

test("evaluatePvc resolves an H schedule annotation for this PVC and warns about a bad one", () => {
  const hashed = run(pvc({ annotations: { "volsync.backup/schedule": "H 3 * * *" } }), "fresh").evaluation;
  assert.ok(hashed.scope === "protected" && hashed.schedule.ok && /^\d{1,2} 3 \* \* \*$/.test(hashed.schedule.schedule));
  const bad = run(pvc({ annotations: { "volsync.backup/schedule": "every hour" } }), "fresh");
  assert.ok(bad.evaluation.scope === "protected" && !bad.evaluation.schedule.ok);
  assert.equal(bad.validation.allowed, true, "a bad schedule loses a preference, it does not block");
  assert.ok(bad.validation.warnings.some((w) => /backup schedule cannot be used/.test(w)));
});

type Row = {
  name: string;
  claim: PersistentVolumeClaim;
  answer: keyof typeof lookups;
  facts?: typeof facts;
  dormant?: boolean;
  addsRef: boolean;
  mutationReason: string;
  allowed: boolean;
  validationReason: string;
  message?: RegExp;
  warning?: RegExp;
};

const rows: Row[] = [
  {
    name: "injects dataSourceRef when a snapshot exists",
    claim: pvc(),
    answer: "restore",
    addsRef: true,
    mutationReason: "restore",
    allowed: false,
    validationReason: "data-source-mismatch",
    message: /a backup exists \(snapshot k9f3/,
  },
  {
    name: "allows a restored PVC that carries exactly the expected dataSourceRef",
    claim: pvc({ spec: { dataSourceRef: { ...EXPECTED_REF } } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "restore-already-set",
    allowed: true,
    validationReason: "restore",
  },
  {
    name: "allows the expected dataSourceRef with an empty namespace",
    claim: pvc({ spec: { dataSourceRef: { ...EXPECTED_REF, namespace: "" } } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "restore-already-set",
    allowed: true,
    validationReason: "restore",
  },
  {
    name: "never overwrites a user's dataSourceRef and denies it when a backup exists",
    claim: pvc({ spec: { dataSourceRef: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "db-2026-11-20" } } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "existing-data-source",
    allowed: false,
    validationReason: "data-source-mismatch",
    message: /VolumeSnapshot/,
  },
  {
    name: "never overwrites a user's dataSource",
    claim: pvc({ spec: { dataSource: { kind: "PersistentVolumeClaim", name: "other" } } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "existing-data-source",
    allowed: false,
    validationReason: "data-source-mismatch",
  },
  {
    name: "treats a dataSourceRef into another namespace as not ours",
    claim: pvc({ spec: { dataSourceRef: { ...EXPECTED_REF, namespace: "elsewhere" } } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "existing-data-source",
    allowed: false,
    validationReason: "data-source-mismatch",
  },
  {
    name: "allows a fresh PVC without a patch",
    claim: pvc(),
    answer: "fresh",
    addsRef: false,
    mutationReason: "fresh",
    allowed: true,
    validationReason: "fresh",
  },
  {
    name: "allows a fresh PVC that brings its own data source",
    claim: pvc({ spec: { dataSourceRef: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "s" } } }),
    answer: "fresh",
    addsRef: false,
    mutationReason: "fresh",
    allowed: true,
    validationReason: "fresh",
  },
  {
    name: "denies when the repository cannot be read, naming the identity and the error",
    claim: pvc(),
    answer: "unknown",
    addsRef: false,
    mutationReason: "unknown",
    allowed: false,
    validationReason: "unknown",
    message: /Kopia identity app-data-backup@media:\/data.*the repository password is wrong/,
  },
  {
    name: "allows a skip-restore with a reason over an existing backup, with a warning",
    claim: pvc({ annotations: { "volsync.backup/skip-restore": "true", "volsync.backup/skip-restore-reason": "schema migration" } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "skip-restore",
    allowed: true,
    validationReason: "skip-restore",
    warning: /snapshot k9f3.*NOT restored/,
  },
  {
    name: "allows a skip-restore with a reason while the repository is unreadable",
    claim: pvc({ annotations: { "volsync.backup/skip-restore": "true", "volsync.backup/skip-restore-reason": "schema migration" } }),
    answer: "unknown",
    addsRef: false,
    mutationReason: "skip-restore",
    allowed: true,
    validationReason: "skip-restore",
    warning: /restore skipped on request.*schema migration/,
  },
  {
    name: "denies a skip-restore without a reason",
    claim: pvc({ annotations: { "volsync.backup/skip-restore": "true" } }),
    answer: "fresh",
    addsRef: false,
    mutationReason: "fresh",
    allowed: false,
    validationReason: "skip-restore-without-reason",
    message: /skip-restore-reason/,
  },
  {
    name: "denies a skip-restore without a reason over a backup, which the mutator still restores",
    claim: pvc({ annotations: { "volsync.backup/skip-restore": "true" } }),
    answer: "restore",
    addsRef: true,
    mutationReason: "restore",
    allowed: false,
    validationReason: "skip-restore-without-reason",
  },
  {
    name: "denies an unreadable restore-as-of and does not patch",
    claim: pvc({ annotations: { "volsync.backup/restore-as-of": "last tuesday" } }),
    answer: "restore",
    addsRef: false,
    mutationReason: "invalid-annotation",
    allowed: false,
    validationReason: "invalid-annotation",
    message: /RFC 3339/,
  },
  {
    name: "allows everything while dormant, with a warning and no patch",
    claim: pvc(),
    answer: "unknown",
    dormant: true,
    addsRef: false,
    mutationReason: "dormant",
    allowed: true,
    validationReason: "dormant",
    warning: /dormant/,
  },
  {
    name: "leaves an UPDATE alone",
    claim: pvc(),
    answer: "unknown",
    facts: { ...facts, operation: "UPDATE" },
    addsRef: false,
    mutationReason: "not-create",
    allowed: true,
    validationReason: "not-create",
  },
  {
    name: "leaves a DELETE alone",
    claim: pvc(),
    answer: "unknown",
    facts: { ...facts, operation: "DELETE" },
    addsRef: false,
    mutationReason: "not-create",
    allowed: true,
    validationReason: "not-create",
  },
  {
    name: "leaves an unlabelled PVC alone",
    claim: pvc({ labels: { app: "x" } }),
    answer: "unknown",
    addsRef: false,
    mutationReason: "unlabelled",
    allowed: true,
    validationReason: "unlabelled",
  },
  {
    name: "leaves an excluded namespace alone",
    claim: pvc(),
    answer: "unknown",
    facts: { ...facts, namespace: "kube-system" },
    addsRef: false,
    mutationReason: "excluded-namespace",
    allowed: true,
    validationReason: "excluded-namespace",
  },
  {
    name: "warns about a mistyped tier and leaves the PVC alone",
    claim: pvc({ labels: { backup: "Hourly" } }),
    answer: "unknown",
    addsRef: false,
    mutationReason: "unknown-tier",
    allowed: true,
    validationReason: "unknown-tier",
    warning: /Did you mean "hourly"/,
  },
  {
    name: "denies a protected PVC with no fixed name",
    claim: pvc(),
    answer: "fresh",
    facts: { ...facts, name: undefined },
    addsRef: false,
    mutationReason: "undecidable",
    allowed: false,
    validationReason: "undecidable",
    message: /fixed metadata.name/,
  },
  {
    name: "denies a protected PVC whose name was generated (as the validator sees it)",
    claim: withGenerateName("scratch-", "scratch-x7k2p"),
    answer: "fresh",
    facts: { ...facts, name: "scratch-x7k2p" },
    addsRef: false,
    mutationReason: "undecidable",
    allowed: false,
    validationReason: "undecidable",
    message: /no generateName/,
  },
  {
    name: "denies a generated name whose base was cut to 58 characters",
    claim: withGenerateName(`${"g".repeat(70)}-`, `${"g".repeat(58)}abcde`),
    answer: "fresh",
    facts: { ...facts, name: `${"g".repeat(58)}abcde` },
    addsRef: false,
    mutationReason: "undecidable",
    allowed: false,
    validationReason: "undecidable",
  },
  {
    name: "decides normally when a fixed name does not come from generateName",
    claim: withGenerateName("scratch-", "app-data"),
    answer: "fresh",
    addsRef: false,
    mutationReason: "fresh",
    allowed: true,
    validationReason: "fresh",
  },
  {
    name: "decides normally with an empty generateName",
    claim: withGenerateName("", "app-data"),
    answer: "restore",
    addsRef: true,
    mutationReason: "restore",
    allowed: false,
    validationReason: "data-source-mismatch",
  },
];

for (const row of rows) {
  test(`admission rules: ${row.name}`, () => {
    const { mutation, validation } = run(row.claim, row.answer, { facts: row.facts, dormant: row.dormant });
    assert.equal(mutation.reason, row.mutationReason);
    if (row.addsRef) assert.deepEqual(mutation.addDataSourceRef, EXPECTED_REF);
    else assert.equal(mutation.addDataSourceRef, undefined);
    assert.equal(validation.allowed, row.allowed);
    assert.equal(validation.reason, row.validationReason);
    if (!validation.allowed) {
      assert.match(validation.message, /^pvc-guardian blocked /);
      if (row.message) assert.match(validation.message, row.message);
    }
    if (row.warning) {
      assert.ok(
        validation.warnings.some((w) => row.warning!.test(w)),
        JSON.stringify(validation.warnings),
      );
    }
  });
}

test("the mutation is idempotent: the patched PVC needs no second patch and passes validation", () => {
  const first = run(pvc(), "restore");
  assert.ok(first.mutation.addDataSourceRef);
  const patched = pvc({ spec: { ...pvc().spec, dataSourceRef: first.mutation.addDataSourceRef } });
  const second = run(patched, "restore");
  assert.equal(second.mutation.addDataSourceRef, undefined);
  assert.equal(second.validation.allowed, true);
});

test("restoreDataSourceRef points at the shared <pvc>-backup ReplicationDestination", () => {
  assert.deepEqual(restoreDataSourceRef(generatedNames("app-data")), EXPECTED_REF);
  const long = "l".repeat(70);
  assert.equal(restoreDataSourceRef(generatedNames(long)).name, generatedNames(long).replicationDestination);
});

test("an unknown denial tells the person how to fix it and how to start empty on purpose", () => {
  const { validation } = run(pvc(), "unknown");
  assert.ok(!validation.allowed);
  assert.match(validation.message, /retry/i);
  assert.match(validation.message, /volsync.backup\/skip-restore: "true"/);
});

test("denies a PVC that already asks for its ReplicationDestination when the repository holds no backup", () => {
  const { validation } = run(pvc({ spec: { dataSourceRef: { ...EXPECTED_REF } } }), "fresh");
  assert.equal(validation.allowed, false);
  assert.ok(!validation.allowed);
  assert.equal(validation.reason, "restore-requested-without-backup");
  assert.match(validation.message, /would stay Pending forever/);
});

test("allows a fresh PVC that carries somebody else's data source", () => {
  const { validation } = run(pvc({ spec: { dataSourceRef: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "seed" } } }), "fresh");
  assert.equal(validation.allowed, true);
});

test("a long name gets an identity of its own instead of VolSync's cut one, with no warning to act on", () => {
  const longName = "a".repeat(48);
  const { evaluation } = run(pvc(), "fresh", { facts: { ...facts, name: longName } });
  assert.ok(evaluation.scope === "protected");
  assert.notEqual(evaluation.identity.key, evaluation.backupIdentity.automatic.key);
  assert.equal(evaluation.backupIdentity.automatic.username, `${longName}-b`);
  assert.deepEqual(evaluation.warnings, []);
});
