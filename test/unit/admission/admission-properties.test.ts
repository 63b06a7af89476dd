import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import fc from "fast-check";
import { ADMISSION_API_VERSION, type ReviewHandler } from "../../../webhook/admission/admission-review.ts";
import type { BackupObjectGenerator } from "../../../webhook/admission/generation-port.ts";
import { createReviewHandlers, type AdmissionCatalog } from "../../../webhook/admission/review-handlers.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { snapshotRecord, type CatalogLookup } from "../../../webhook/domain/snapshot-catalog.ts";
import { applyAdmissionPatch } from "../../support/apply-json-patch.ts";
import { answerReview, type AnsweredReview } from "../../support/answer-review.ts";

// Properties of the two handlers over generated input: whatever arrives, each answers a valid
// AdmissionReview (or a 400 inside one) that echoes the request's uid, and never throws; and a
// protected PVC is never allowed while the catalog cannot read the repository.

const fixturesDir = new URL("../../fixtures/admission/", import.meta.url);
const fixtures = readdirSync(fixturesDir)
  .filter((name) => name.endsWith(".json"))
  .map((name) => JSON.parse(readFileSync(new URL(name, fixturesDir), "utf8")) as Record<string, any>);

const SEED = Number(process.env["PVC_GUARDIAN_PROPERTY_SEED"] ?? 20261121);
const SNAPSHOT = snapshotRecord({ id: "k1", startTime: "2026-11-20T02:00:00Z", endTime: "2026-11-20T02:01:00Z", incomplete: false })!;

/** Catalogs in every state the handlers can meet: readable with and without snapshots, unreadable, refreshing. */
const catalogs: Record<string, AdmissionCatalog> = {
  readableWithSnapshots: { lookup: () => ({ readable: true, snapshots: [SNAPSHOT], refreshedAtMs: 0 }) },
  readableEmpty: { lookup: () => ({ readable: true, snapshots: [], refreshedAtMs: 0 }) },
  unreadable: { lookup: () => ({ readable: false, reason: "repository unreadable" }) },
  refreshFinds: {
    lookup: () => ({ readable: true, snapshots: [], refreshedAtMs: 0 }),
    lookupWithRefreshOnMiss: async () => ({ readable: true, snapshots: [SNAPSHOT], refreshedAtMs: 1 }),
  },
};
const generator: BackupObjectGenerator = { generate: async () => ({ ok: true, warnings: [] }) };
const handlerSets = Object.entries(catalogs).map(([name, catalog]) => ({
  name,
  ...createReviewHandlers({ policy: DEFAULT_POLICY, catalog, generator }),
}));

const counts = { randomJson: 0, randomPvc: 0, mutatedFixture: 0, truncatedFixture: 0, protectedUnreadable: 0 };

function expectedUid(body: unknown): string {
  if (typeof body !== "object" || body === null) return "";
  const request = (body as Record<string, unknown>)["request"];
  if (typeof request !== "object" || request === null) return "";
  const uid = (request as Record<string, unknown>)["uid"];
  return typeof uid === "string" ? uid : "";
}

/** Decodes the body, calls a handler as the route does and checks the answer is a well-formed AdmissionReview for this body. */
async function answerOf(handler: ReviewHandler, body: unknown): Promise<AnsweredReview> {
  let outcome: AnsweredReview;
  try {
    outcome = await answerReview(handler, body, { deadlineMs: 1_000 });
  } catch (error) {
    assert.fail(`the handler threw ${(error as Error).stack}`);
  }
  const { review } = outcome;
  assert.equal(review.kind, "AdmissionReview");
  assert.equal(typeof review.apiVersion, "string");
  const bodyApiVersion = typeof body === "object" && body !== null ? (body as Record<string, unknown>)["apiVersion"] : undefined;
  assert.equal(review.apiVersion, typeof bodyApiVersion === "string" ? bodyApiVersion : ADMISSION_API_VERSION);
  assert.equal(typeof review.response.allowed, "boolean");
  assert.equal(review.response.uid, expectedUid(body));
  assert.equal(typeof outcome.reason, "string");
  if (!review.response.allowed) {
    assert.ok(review.response.status, "a denial carries a status");
    assert.ok([400, 403].includes(review.response.status.code), `code ${review.response.status.code}`);
    assert.ok(review.response.status.message.length > 0);
    assert.equal(review.response.patch, undefined);
  }
  if (review.response.status?.code === 400) assert.equal(review.response.allowed, false);
  if (review.response.warnings !== undefined) {
    assert.ok(review.response.warnings.length > 0 && review.response.warnings.every((w) => typeof w === "string"));
  }
  if (review.response.patch !== undefined) {
    assert.equal(review.response.patchType, "JSONPatch");
    const object = (body as { request: { object: unknown } }).request.object;
    const applied = applyAdmissionPatch(object, review.response.patch);
    assert.ok(applied.ok, `the patch must apply to the object it was made for: ${!applied.ok ? applied.error : ""}`);
  }
  // What the route serialises must survive JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(review)), review);
  return outcome;
}

/** Both webhooks, over a catalog state the case picks, so every state is covered across the run. */
async function bothHandlersAnswer(body: unknown, catalogPick: number) {
  const set = handlerSets[catalogPick % handlerSets.length]!;
  await answerOf(set.mutate, body);
  await answerOf(set.validate, body);
}
const catalogPick = fc.nat({ max: 1_000 });

// --- Arbitraries --------------------------------------------------------------------------------

const tierValue = fc.oneof(fc.constantFrom("hourly", "daily", "Hourly", "DAILY", " hourly", "weekly", "", "__proto__", "constructor"), fc.string());
const weirdValue = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.jsonValue());
const annotationValue = fc.oneof(
  fc.constantFrom("true", "false", "True", "", "2026-11-20T00:00:00Z", "2026-02-30T00:00:00Z", "H * * * *", "@daily", "0 2 * * *", "nonsense"),
  fc.string(),
);
const annotationKey = fc.constantFrom(
  "volsync.backup/schedule",
  "volsync.backup/restore-as-of",
  "volsync.backup/skip-restore",
  "volsync.backup/skip-restore-reason",
  "argocd.argoproj.io/tracking-id",
  "example.com/a~b",
);
const pvcName = fc.oneof(
  fc.constantFrom("app-data", "db.main", "a".repeat(63), "b".repeat(64), "c".repeat(253), "x_y", "données", "-lead", "trail-", ""),
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
);
const namespace = fc.oneof(fc.constantFrom("media", "kube-system", "volsync-system", "prod_eu", "team.a", ""), fc.string({ maxLength: 70 }));
const dataSourceRef = fc.oneof(
  fc.constant(undefined),
  fc.record({ apiGroup: fc.constant("volsync.backube"), kind: fc.constant("ReplicationDestination"), name: fc.constant("app-data-backup") }),
  fc.record({ apiGroup: fc.string(), kind: fc.string(), name: fc.string() }, { requiredKeys: [] }),
);

/** A PVC: mostly well-typed, sometimes with wrong types where the API server would never send them. */
const pvcObject = fc
  .record(
    {
      name: pvcName,
      namespace,
      labels: fc.oneof(
        fc.dictionary(fc.oneof(fc.constant("backup"), fc.string()), tierValue, { maxKeys: 4 }),
        fc.record({ backup: tierValue }),
        fc.dictionary(fc.constant("backup"), weirdValue, { maxKeys: 1 }),
      ),
      annotations: fc.oneof(fc.dictionary(annotationKey, annotationValue, { maxKeys: 5 }), fc.dictionary(annotationKey, weirdValue, { maxKeys: 3 })),
      accessModes: fc.oneof(fc.constant(["ReadWriteOnce"]), fc.array(fc.string(), { maxLength: 3 }), weirdValue),
      storage: fc.oneof(fc.constant("10Gi"), fc.integer(), weirdValue),
      dataSourceRef,
      spec: fc.boolean(),
      generateName: fc.option(fc.string(), { nil: undefined }),
    },
    { requiredKeys: ["name", "namespace", "labels", "spec"] },
  )
  .map((p) => {
    const metadata: Record<string, unknown> = { name: p.name, namespace: p.namespace, labels: p.labels };
    if (p.annotations !== undefined) metadata["annotations"] = p.annotations;
    if (p.generateName !== undefined) metadata["generateName"] = p.generateName;
    const object: Record<string, unknown> = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata };
    if (p.spec) {
      const spec: Record<string, unknown> = { resources: { requests: { storage: p.storage } }, storageClassName: "longhorn" };
      if (p.accessModes !== undefined) spec["accessModes"] = p.accessModes;
      if (p.dataSourceRef !== undefined) spec["dataSourceRef"] = p.dataSourceRef;
      object["spec"] = spec;
    }
    return object;
  });

const review = fc
  .record({
    uid: fc.oneof(fc.uuid(), fc.string()),
    operation: fc.oneof(fc.constantFrom("CREATE", "CREATE", "CREATE", "UPDATE", "DELETE", "CONNECT"), fc.string()),
    object: fc.oneof(pvcObject, pvcObject, fc.constant(null)),
    dryRun: fc.option(fc.boolean(), { nil: undefined }),
    requestName: fc.boolean(),
  })
  .map((r) => {
    const object = r.object as Record<string, any> | null;
    const request: Record<string, unknown> = {
      uid: r.uid,
      kind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      resource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      operation: r.operation,
      object,
      oldObject: null,
    };
    if (typeof object?.["metadata"]?.namespace === "string") request["namespace"] = object["metadata"].namespace;
    if (r.requestName && typeof object?.["metadata"]?.name === "string") request["name"] = object["metadata"].name;
    if (r.dryRun !== undefined) request["dryRun"] = r.dryRun;
    return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request };
  });

/** A path into a JSON value, as a list of keys, chosen from the value itself. */
function pathsOf(value: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  out.push(prefix);
  if (typeof value === "object" && value !== null && prefix.length < 8) {
    for (const key of Object.keys(value)) pathsOf((value as Record<string, unknown>)[key], [...prefix, key], out);
  }
  return out;
}
function setAt(root: any, path: string[], replacement: unknown, remove: boolean): unknown {
  if (path.length === 0) return remove ? undefined : replacement;
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key];
  if (remove) {
    if (Array.isArray(node)) node.splice(Number(path.at(-1)), 1);
    else delete node[path.at(-1)!];
  } else node[path.at(-1)!] = replacement;
  return root;
}

const mutatedFixture = fc
  .record({
    fixture: fc.constantFrom(...fixtures),
    edits: fc.array(fc.record({ pick: fc.nat(), remove: fc.boolean(), value: fc.oneof(fc.jsonValue(), weirdValue, fc.constant(undefined)) }), {
      minLength: 1,
      maxLength: 4,
    }),
  })
  .map(({ fixture, edits }) => {
    let body: unknown = structuredClone(fixture);
    for (const edit of edits) {
      const paths = pathsOf(body);
      const path = paths[edit.pick % paths.length]!;
      body = setAt(body, path, edit.value, edit.remove);
    }
    return body;
  });

// --- Properties ---------------------------------------------------------------------------------

function report(t: TestContext, name: keyof typeof counts) {
  const line = `${name}: ${counts[name]} cases ran (seed ${SEED})`;
  t.diagnostic(line);
  console.log(`property ${line}`);
}

test("any JSON value gets a valid AdmissionReview from both webhooks, never a throw", async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.jsonValue(), fc.record({ apiVersion: fc.string(), kind: fc.string(), request: fc.jsonValue() })),
      catalogPick,
      async (body, pick) => {
        counts.randomJson++;
        await bothHandlersAnswer(body, pick);
      },
    ),
    { numRuns: 500, seed: SEED },
  );
  report(t, "randomJson");
});

test("any generated PVC review gets a valid AdmissionReview whose patch applies to its object", async (t) => {
  await fc.assert(
    fc.asyncProperty(review, catalogPick, async (body, pick) => {
      counts.randomPvc++;
      await bothHandlersAnswer(body, pick);
    }),
    { numRuns: 1000, seed: SEED },
  );
  report(t, "randomPvc");
});

test("any fixture with fields removed or replaced gets a valid AdmissionReview echoing its uid", async (t) => {
  await fc.assert(
    fc.asyncProperty(mutatedFixture, catalogPick, async (body, pick) => {
      counts.mutatedFixture++;
      await bothHandlersAnswer(body, pick);
    }),
    { numRuns: 800, seed: SEED },
  );
  report(t, "mutatedFixture");
});

test("any truncated fixture gets a 400 AdmissionReview or, when it still parses, a valid answer", async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...fixtures), fc.nat(), catalogPick, async (fixture, cut, pick) => {
      counts.truncatedFixture++;
      const text = JSON.stringify(fixture);
      const truncated = text.slice(0, cut % text.length);
      let body: unknown = truncated;
      try {
        body = JSON.parse(truncated);
      } catch {
        // The route answers unparseable bodies itself; the handler must still cope with text.
      }
      const set = handlerSets[pick % handlerSets.length]!;
      for (const handler of [set.mutate, set.validate]) {
        const outcome = await answerOf(handler, body);
        if (typeof body === "string") assert.equal(outcome.review.response.status?.code, 400);
      }
    }),
    { numRuns: 400, seed: SEED },
  );
  report(t, "truncatedFixture");
});

// The safety property: labelled with a configured tier, outside the excluded namespaces, a
// CREATE, no valid skip-restore, not dormant, and the catalog cannot read the repository.
const excluded = new Set(DEFAULT_POLICY.excludedNamespaces);
const protectedReview = fc
  .record({
    base: fc.constantFrom(...fixtures.filter((f) => f["request"].operation === "CREATE" && f["request"].object)),
    tier: fc.constantFrom(...Object.keys(DEFAULT_POLICY.tiers)),
    name: fc.oneof(pvcName, fc.constant(undefined)),
    namespace: fc
      .oneof(fc.constantFrom("media", "databases", "prod_eu", "team.a"), fc.string({ minLength: 1, maxLength: 63 }))
      .filter((ns) => !excluded.has(ns)),
    otherLabels: fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
    annotations: fc.dictionary(annotationKey, annotationValue, { maxKeys: 5 }),
    dataSourceRef,
    dryRun: fc.boolean(),
  })
  .filter(
    ({ annotations }) => !(annotations["volsync.backup/skip-restore"] === "true" && (annotations["volsync.backup/skip-restore-reason"] ?? "").trim() !== ""),
  )
  .map((p) => {
    const body = structuredClone(p.base);
    const object = body["request"].object;
    body["request"].namespace = p.namespace;
    object.metadata.namespace = p.namespace;
    if (p.name === undefined) {
      delete body["request"].name;
      delete object.metadata.name;
    } else {
      body["request"].name = p.name;
      object.metadata.name = p.name;
    }
    object.metadata.labels = { ...p.otherLabels, backup: p.tier };
    object.metadata.annotations = p.annotations;
    delete object.spec.dataSourceRef;
    if (p.dataSourceRef !== undefined) object.spec.dataSourceRef = p.dataSourceRef;
    body["request"].dryRun = p.dryRun;
    return body;
  });

const unreadableCatalogs: Record<string, AdmissionCatalog> = {
  unreadable: catalogs["unreadable"]!,
  refreshFailsAfterMiss: {
    lookup: () => ({ readable: true, snapshots: [], refreshedAtMs: 0 }),
    lookupWithRefreshOnMiss: async (): Promise<CatalogLookup> => ({ readable: false, reason: "refresh failed" }),
  },
  unconfigured: { lookup: () => ({ readable: false, reason: "no Kopia repository is configured for pvc-guardian" }) },
};
const validators = Object.values(unreadableCatalogs).map((catalog) => createReviewHandlers({ policy: DEFAULT_POLICY, catalog, generator }).validate);

test("a protected PVC is never allowed by the validator while the catalog cannot read the repository", async (t) => {
  await fc.assert(
    fc.asyncProperty(protectedReview, catalogPick, async (body, pick) => {
      counts.protectedUnreadable++;
      const outcome = await answerOf(validators[pick % validators.length]!, body);
      assert.equal(outcome.review.response.allowed, false, `allowed (${outcome.reason}): ${JSON.stringify(body["request"].object.metadata)}`);
    }),
    { numRuns: 1300, seed: SEED },
  );
  report(t, "protectedUnreadable");
});

test("runs at least 4,000 property cases and reports how many", (t) => {
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const line = `property cases in total: ${total} (${Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")})`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(total >= 4_000, line);
});
