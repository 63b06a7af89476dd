import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AdmissionReviewOut } from "../../../webhook/admission/admission-review.ts";
import type { BackupObjectGenerator } from "../../../webhook/admission/generation-port.ts";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { planPvc } from "../../../webhook/cli/plan.ts";
import { DEFAULT_POLICY, type Policy } from "../../../webhook/domain/policy.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import { snapshotRecord, type SnapshotCatalog } from "../../../webhook/domain/snapshot-catalog.ts";
import { createAdmissionRoutes, mutatePath, validatePath } from "../../../webhook/server/admission-routes.ts";
import { createMetrics } from "../../../webhook/server/metrics.ts";
import { applyAdmissionPatch } from "../../support/apply-json-patch.ts";
import { pvcCreateReviewOf } from "../../support/pvc-review.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { admissionRouteSettings } from "../../support/default-settings.ts";

// `plan` must say what the webhook does. Over random PVCs, the same PVC is put to the webhook the
// way the API server puts it (a CREATE review posted to the mutating route, its base64 patch
// applied with the test's own RFC 6902 applier, the patched object posted to the validating
// route) and to `planPvc`; both must give the same patch, the same allow or deny, the same denial
// message and code, and the same warnings.

const NOW_MS = Date.parse("2026-11-25T12:00:00Z");
const SEED = Number(process.env["PVC_GUARDIAN_PROPERTY_SEED"] ?? 20261201);
const RUNS = 600;

const snapshot = (id: string, startTime: string) => snapshotRecord({ id, startTime, endTime: startTime.replace(/:00Z$/, ":30Z"), incomplete: false })!;
const SNAPSHOTS = [snapshot("k1", "2026-11-20T02:00:00Z"), snapshot("k2", "2026-11-22T02:00:00Z"), snapshot("k3", "2026-11-24T02:00:00Z")];

/** Catalog states: every identity backed up, none, some (by the identity's first letter), unreadable. */
const catalogs: Record<string, SnapshotCatalog> = {
  everyIdentity: { lookup: () => ({ readable: true, snapshots: SNAPSHOTS, refreshedAtMs: NOW_MS }) },
  noIdentity: { lookup: () => ({ readable: true, snapshots: [], refreshedAtMs: NOW_MS }) },
  someIdentities: {
    lookup: (identity) => ({ readable: true, snapshots: identity.charCodeAt(0) % 2 === 0 ? SNAPSHOTS.slice(0, 2) : [], refreshedAtMs: NOW_MS }),
  },
  unreadable: { lookup: () => ({ readable: false, reason: "the repository could not be read" }) },
};
const policies: Record<string, Policy> = { active: DEFAULT_POLICY, dormant: { ...DEFAULT_POLICY, dormant: true } };

const dnsLabel = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
const pvcName = fc.oneof(dnsLabel, fc.constantFrom("app-data", "db.main", "data-postgres-0", "a".repeat(63), "cache"));
const namespace = fc.constantFrom("media", "apps", "kube-system", "team.a", "prod-eu");
const annotation = fc.oneof(
  fc.record({ key: fc.constant("volsync.backup/skip-restore"), value: fc.constantFrom("true", "false", "yes", "") }),
  fc.record({ key: fc.constant("volsync.backup/skip-restore-reason"), value: fc.constantFrom("fresh start", "", "data migrated") }),
  fc.record({
    key: fc.constant("volsync.backup/restore-as-of"),
    value: fc.constantFrom("2026-11-21T00:00:00Z", "2026-11-23T02:00:00.5Z", "2026-11-19T00:00:00Z", "2026-02-30T00:00:00Z", "yesterday"),
  }),
  fc.record({ key: fc.constant("volsync.backup/schedule"), value: fc.constantFrom("H * * * *", "0 2 * * *", "@daily", "nonsense") }),
  fc.record({ key: fc.constant("volsync.backup/restore-from-identity"), value: fc.constantFrom("app-data@media:/data", "other@apps:/data", "bad") }),
  fc.record({ key: fc.constant("argocd.argoproj.io/tracking-id"), value: fc.constant("media:/PersistentVolumeClaim:media/app") }),
);
const dataSourceRef = fc.oneof(
  fc.constant(undefined),
  fc.constant("ours" as const),
  fc.record({ apiGroup: fc.constant("volsync.backube"), kind: fc.constant("ReplicationDestination"), name: fc.constantFrom("other-backup", "x") }),
  fc.record({ apiGroup: fc.constant("snapshot.storage.k8s.io"), kind: fc.constant("VolumeSnapshot"), name: fc.constant("snap-1") }),
);

const pvcCase = fc.record({
  name: fc.option(pvcName, { nil: undefined }),
  namespace,
  // Mostly protected PVCs: those are where the two could differ.
  tier: fc.oneof(
    { arbitrary: fc.constantFrom("hourly", "daily"), weight: 6 },
    { arbitrary: fc.constantFrom("Hourly", "weekly", ""), weight: 1 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  ),
  otherLabels: fc.dictionary(fc.constantFrom("app", "app.kubernetes.io/name"), fc.constantFrom("media", "db"), { maxKeys: 2 }),
  annotations: fc.oneof(
    { arbitrary: fc.constant<{ key: string; value: string }[]>([]), weight: 2 },
    { arbitrary: fc.array(annotation, { maxLength: 3 }), weight: 3 },
  ),
  spec: fc.constantFrom("none", "empty", "full"),
  dataSourceRef: fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: dataSourceRef, weight: 2 }),
  catalog: fc.constantFrom(...Object.keys(catalogs)),
  policy: fc.constantFrom("active", "active", "active", "dormant"),
});

type PvcCase = typeof pvcCase extends fc.Arbitrary<infer T> ? T : never;

function pvcOf(c: PvcCase): PersistentVolumeClaim {
  const labels: Record<string, string> = { ...c.otherLabels, ...(c.tier !== undefined ? { backup: c.tier } : {}) };
  const annotations = Object.fromEntries((c.annotations as readonly { key: string; value: string }[]).map(({ key, value }) => [key, value]));
  const metadata: Record<string, unknown> = { namespace: c.namespace, labels };
  if (c.name !== undefined) metadata["name"] = c.name;
  else metadata["generateName"] = "data-";
  if (c.annotations.length > 0) metadata["annotations"] = annotations;
  const pvc: Record<string, unknown> = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata };
  if (c.spec !== "none") {
    const spec: Record<string, unknown> =
      c.spec === "full" ? { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } }, storageClassName: "longhorn" } : {};
    const ref =
      c.dataSourceRef === "ours" ? { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: `${c.name ?? "data-"}-backup` } : c.dataSourceRef;
    if (ref !== undefined) spec["dataSourceRef"] = ref;
    pvc["spec"] = spec;
  }
  return pvc as PersistentVolumeClaim;
}

const writesNothingButSucceeds: BackupObjectGenerator = { generate: async () => ({ ok: true, warnings: [] }) };

function webhookFor(policy: Policy, catalog: SnapshotCatalog) {
  const handlers = createReviewHandlers({ policy, catalog, generator: writesNothingButSucceeds, now: () => NOW_MS });
  return createAdmissionRoutes({
    ...admissionRouteSettings,
    ...handlers,
    maxBodyBytes: 1024 * 1024,
    deadlineMs: 5_000,
    log: createSilentLogger(),
    metrics: createMetrics({ collectProcessMetrics: false }),
  });
}
const webhooks = new Map<string, ReturnType<typeof webhookFor>>();
for (const [policyName, policy] of Object.entries(policies)) {
  for (const [catalogName, catalog] of Object.entries(catalogs)) webhooks.set(`${policyName}/${catalogName}`, webhookFor(policy, catalog));
}

async function post(app: ReturnType<typeof webhookFor>, path: string, review: unknown): Promise<AdmissionReviewOut["response"]> {
  const res = await app.request(path, { method: "POST", body: JSON.stringify(review), headers: { "content-type": "application/json" } });
  assert.equal(res.status, 200);
  return ((await res.json()) as AdmissionReviewOut).response;
}

/** What the webhook does with the PVC, as the API server would see it. */
async function askWebhook(c: PvcCase, pvc: PersistentVolumeClaim) {
  const app = webhooks.get(`${c.policy}/${c.catalog}`)!;
  const mutation = await post(app, mutatePath, pvcCreateReviewOf(pvc, { uid: "uid-m" }));
  assert.equal(mutation.allowed, true, "the mutator never denies a well-formed PVC");
  let object: unknown = pvc;
  let patch: unknown[] = [];
  if (mutation.patch !== undefined) {
    patch = JSON.parse(Buffer.from(mutation.patch, "base64").toString("utf8")) as unknown[];
    const applied = applyAdmissionPatch(pvc, mutation.patch);
    assert.ok(applied.ok, `the mutator's patch applies: ${applied.ok ? "" : applied.error}`);
    object = applied.document;
  }
  const validation = await post(app, validatePath, pvcCreateReviewOf(object as PersistentVolumeClaim, { uid: "uid-v" }));
  return { patch, validation, warnings: [...(mutation.warnings ?? []), ...(validation.warnings ?? [])] };
}

const seen = { allowed: 0, denied: 0, patched: 0 };

test("plan and the webhook agree on the patch, the verdict, the message and the warnings for random PVCs", async (t) => {
  await fc.assert(
    fc.asyncProperty(pvcCase, async (c) => {
      const pvc = pvcOf(c);
      const webhook = await askWebhook(c, pvc);
      const entry = await planPvc(structuredClone(pvc), 1, c.namespace, policies[c.policy]!, catalogs[c.catalog]!, NOW_MS);

      assert.deepEqual(entry.patch, webhook.patch, "the same patch");
      assert.equal(entry.admission.allowed, webhook.validation.allowed, "the same verdict");
      assert.equal(entry.admission.message, webhook.validation.status?.message, "the same denial message");
      assert.equal(entry.admission.code, webhook.validation.status?.code, "the same denial code");
      assert.deepEqual(new Set(entry.admission.warnings ?? []), new Set(webhook.warnings), "the same warnings");

      seen[webhook.validation.allowed ? "allowed" : "denied"] += 1;
      if (webhook.patch.length > 0) seen.patched += 1;
    }),
    { numRuns: RUNS, seed: SEED },
  );
  const line = `plan/webhook agreement: ${RUNS} PVCs, ${seen.allowed} allowed, ${seen.denied} denied, ${seen.patched} patched`;
  t.diagnostic(line);
  // Each outcome must actually occur, or the property would hold for want of cases.
  assert.ok(seen.allowed > RUNS / 10 && seen.denied > RUNS / 10 && seen.patched > RUNS / 20, line);
});
