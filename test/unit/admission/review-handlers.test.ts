import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { AdmissionReviewOut } from "../../../webhook/admission/admission-review.ts";
import type { BackupObjectGenerator, GenerationRequest, GenerationResult } from "../../../webhook/admission/generation-port.ts";
import { createReviewHandlers, type AdmissionCatalog, type ReviewHandlerDeps } from "../../../webhook/admission/review-handlers.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { snapshotRecord, type CatalogLookup, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";
import { applyAdmissionPatch } from "../../support/apply-json-patch.ts";
import { answerReview, type AnsweredReview } from "../../support/answer-review.ts";

// Handlers are tested through createReviewHandlers with in-memory implementations of the two
// ports they depend on: the snapshot catalog and the backup object generator.

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
const fixture = (name: string): Review => JSON.parse(readFileSync(new URL(`../../fixtures/admission/${name}`, import.meta.url), "utf8"));

const APP_DATA = "app-data-backup@media:/data";
const EXPECTED_REF = { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "app-data-backup" };

function snapshot(id: string, startTime: string, incomplete = false): SnapshotRecord {
  return snapshotRecord({ id, startTime, endTime: startTime, incomplete })!;
}
const nov19 = snapshot("k19", "2026-11-19T02:00:00Z");
const nov21 = snapshot("k21", "2026-11-21T02:00:00Z");

/** A catalog held in memory: snapshots per identity, or one unreadable reason for everything. */
function createMemoryCatalog(state: {
  snapshots?: Record<string, SnapshotRecord[]>;
  unreadable?: string;
  refresh?: (identity: string) => Promise<CatalogLookup>;
}) {
  const lookups: string[] = [];
  const refreshes: string[] = [];
  const catalog: AdmissionCatalog = {
    lookup(identity) {
      lookups.push(identity);
      if (state.unreadable !== undefined) return { readable: false, reason: state.unreadable };
      return { readable: true, snapshots: state.snapshots?.[identity] ?? [], refreshedAtMs: Date.UTC(2026, 10, 21) };
    },
  };
  if (state.refresh) {
    const refresh = state.refresh;
    catalog.lookupWithRefreshOnMiss = (identity) => {
      refreshes.push(identity);
      return refresh(identity);
    };
  }
  return { catalog, lookups, refreshes };
}

/** A generator that records what it was asked and answers as told. */
function createRecordingGenerator(
  answer: (request: GenerationRequest, signal: AbortSignal) => Promise<GenerationResult> = async () => ({ ok: true, warnings: [] }),
) {
  const calls: GenerationRequest[] = [];
  const generator: BackupObjectGenerator = {
    generate(request, signal) {
      calls.push(request);
      return answer(request, signal);
    },
  };
  return { generator, calls };
}

function setup(options: { catalog: AdmissionCatalog; generator?: BackupObjectGenerator; deadlineMs?: number; dormant?: boolean }) {
  const failures: string[] = [];
  const deps: ReviewHandlerDeps = {
    policy: { ...DEFAULT_POLICY, dormant: options.dormant ?? false },
    catalog: options.catalog,
    onGenerationFailure: (path) => failures.push(path),
    ...(options.generator ? { generator: options.generator } : {}),
  };
  const handlers = createReviewHandlers(deps);
  // As the route calls them, with its deadline.
  const deadlineMs = options.deadlineMs ?? 2_000;
  return {
    mutate: (body: unknown, signal: AbortSignal) => answerReview(handlers.mutate, body, { signal, deadlineMs }),
    validate: (body: unknown, signal: AbortSignal) => answerReview(handlers.validate, body, { signal, deadlineMs }),
    failures,
  };
}

const signal = () => new AbortController().signal;

function assertEchoes(outcome: AnsweredReview, body: Review) {
  assert.equal(outcome.review.apiVersion, "admission.k8s.io/v1");
  assert.equal(outcome.review.kind, "AdmissionReview");
  assert.equal(outcome.review.response.uid, body.request["uid"]);
}

function patchedObject(review: AdmissionReviewOut, object: unknown): any {
  assert.equal(review.response.patchType, "JSONPatch");
  const result = applyAdmissionPatch(object, review.response.patch!);
  assert.ok(result.ok, !result.ok ? result.error : "");
  return result.document;
}

/** The same review, carrying the object as the mutating webhook left it. */
function withObject(body: any, object: unknown): any {
  const next = structuredClone(body);
  next.request["object"] = object;
  return next;
}

/** Mutates, applies the patch as the API server would, and validates the review carrying the patched PVC. */
async function mutateThenValidate(handlers: Pick<ReturnType<typeof setup>, "mutate" | "validate">, body: any) {
  const mutation = await handlers.mutate(body, signal());
  const pvc = patchedObject(mutation.review, body.request["object"]);
  const validation = await handlers.validate(withObject(body, pvc), signal());
  return { mutation, pvc, validation };
}

/** The `unknown` path end to end: the mutator admits unchanged, the validator denies, nothing is generated. Returns the denial's message. */
async function unknownDenial(body: any, options: { catalog: AdmissionCatalog; deadlineMs?: number }): Promise<string> {
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ ...options, generator });
  const mutation = await mutate(body, signal());
  assert.deepEqual(mutation.review.response, { uid: body.request["uid"], allowed: true });
  assert.equal(mutation.reason, "unknown");
  const validation = await validate(body, signal());
  assertEchoes(validation, body);
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.reason, "unknown");
  assert.equal(calls.length, 0);
  return validation.review.response.status!.message;
}

/**
 * Both handlers allow `body` as it is for `reason`, with the repository unreadable, without asking
 * the catalog or generating anything. Returns their outcomes, mutate's first.
 */
async function leftAlone(body: any, reason: string): Promise<AnsweredReview[]> {
  const { catalog, lookups } = createMemoryCatalog({ unreadable: "down" });
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ catalog, generator });
  const outcomes: AnsweredReview[] = [];
  for (const handler of [mutate, validate]) {
    const outcome = await handler(body, signal());
    assert.deepEqual(outcome.review.response, { uid: body.request["uid"], allowed: true });
    assert.equal(outcome.reason, reason);
    outcomes.push(outcome);
  }
  assert.deepEqual(lookups, []);
  assert.equal(calls.length, 0);
  return outcomes;
}

const restoreCatalog = () => createMemoryCatalog({ snapshots: { [APP_DATA]: [nov19, nov21] } });

test("injects dataSourceRef when a snapshot exists, and the patched PVC passes validation", async () => {
  const body = fixture("protected-create.json");
  const { catalog, lookups } = restoreCatalog();
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ catalog, generator });

  const mutation = await mutate(body, signal());
  assertEchoes(mutation, body);
  assert.equal(mutation.review.response.allowed, true);
  assert.equal(mutation.reason, "restore");
  assert.equal(mutation.operation, "CREATE");
  assert.deepEqual(lookups, [APP_DATA]);
  const pvc = patchedObject(mutation.review, body.request["object"]);
  assert.deepEqual(pvc.spec.dataSourceRef, EXPECTED_REF);
  const { dataSourceRef, ...restOfSpec } = pvc.spec;
  assert.deepEqual(restOfSpec, body.request["object"].spec, "nothing else in spec changes");
  assert.deepEqual(pvc.metadata, body.request["object"].metadata, "metadata is untouched");

  const afterMutation = withObject(body, pvc);
  const validation = await validate(afterMutation, signal());
  assertEchoes(validation, body);
  assert.equal(validation.review.response.allowed, true);
  assert.equal(validation.reason, "restore");
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.restoring, true);
  assert.equal(calls[0]!.evaluation.decision.answer, "restore");
  assert.ok(calls[0]!.evaluation.decision.answer === "restore" && calls[0]!.evaluation.decision.snapshot.id === "k21");
});

test("denies an unpatched PVC when a backup exists (the backup appeared after mutation)", async () => {
  const body = fixture("protected-create.json");
  const { generator, calls } = createRecordingGenerator();
  const { validate } = setup({ catalog: restoreCatalog().catalog, generator });
  const validation = await validate(body, signal());
  assertEchoes(validation, body);
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.review.response.status?.code, 403);
  assert.equal(validation.reason, "data-source-mismatch");
  assert.match(validation.review.response.status!.message, /must be restored through dataSourceRef/);
  assert.equal(calls.length, 0, "nothing is generated for a denied PVC");
});

test("the mutation is idempotent: mutating the patched PVC again adds nothing", async () => {
  const body = fixture("protected-create.json");
  const { mutate } = setup({ catalog: restoreCatalog().catalog });
  const first = await mutate(body, signal());
  const again = structuredClone(body);
  again.request["object"] = patchedObject(first.review, body.request["object"]);
  const second = await mutate(again, signal());
  assert.equal(second.review.response.patch, undefined);
  assert.equal(second.reason, "restore-already-set");
});

test("adds the whole spec when a protected PVC arrives without one", async () => {
  const body = fixture("protected-create.json");
  delete body.request["object"].spec;
  const { mutate } = setup({ catalog: restoreCatalog().catalog });
  const mutation = await mutate(body, signal());
  const pvc = patchedObject(mutation.review, body.request["object"]);
  assert.deepEqual(pvc.spec, { dataSourceRef: EXPECTED_REF });
});

test("allows a fresh PVC without a patch and generates a paused RD for it", async () => {
  const body = fixture("protected-create.json");
  const { catalog } = createMemoryCatalog({ snapshots: {} });
  const { generator, calls } = createRecordingGenerator(async () => ({ ok: true, warnings: ["generator note"] }));
  const { mutate, validate } = setup({ catalog, generator });
  const mutation = await mutate(body, signal());
  assert.deepEqual(mutation.review.response, { uid: body.request["uid"], allowed: true });
  assert.equal(mutation.reason, "fresh");
  const validation = await validate(body, signal());
  assert.deepEqual(validation.review.response, { uid: body.request["uid"], allowed: true, warnings: ["generator note"] });
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.restoring, false);
  assert.equal(calls[0]!.pvc.metadata?.name, "app-data");
});

test("denies a protected PVC while the repository is unreadable, and the mutator fails open", async () => {
  const body = fixture("protected-create.json");
  const { catalog } = createMemoryCatalog({ unreadable: "cannot read kopia.repository.f: permission denied" });
  const message = await unknownDenial(body, { catalog });
  assert.match(message, /app-data-backup@media:\/data/);
  assert.match(message, /permission denied/);
});

test("leaves an unprotected PVC alone without asking the catalog", async () => {
  await leftAlone(fixture("unprotected-create.json"), "unlabelled");
});

test("warns about a mistyped tier on both webhooks and allows it", async () => {
  const body = fixture("mistyped-tier-create.json");
  const { catalog, lookups } = createMemoryCatalog({ unreadable: "down" });
  const { mutate, validate } = setup({ catalog });
  for (const handler of [mutate, validate]) {
    const outcome = await handler(body, signal());
    assert.equal(outcome.review.response.allowed, true);
    assert.equal(outcome.reason, "unknown-tier");
    assert.equal(outcome.review.response.patch, undefined);
    assert.equal(outcome.review.response.warnings?.length, 1);
    assert.match(outcome.review.response.warnings![0]!, /backup="Hourly".*NOT backed up.*Did you mean "hourly"/);
  }
  assert.deepEqual(lookups, []);
});

for (const name of ["update.json", "delete.json"]) {
  test(`allows ${name.replace(".json", "").toUpperCase()} without a decision, even while the repository is unreadable`, async () => {
    const body = fixture(name);
    for (const outcome of await leftAlone(body, "not-create")) assert.equal(outcome.operation, body.request["operation"]);
  });
}

test("honours dryRun: the patch is returned but the generator is never called", async () => {
  const body = fixture("dry-run-create.json");
  const { generator, calls } = createRecordingGenerator();
  const { pvc, validation } = await mutateThenValidate(setup({ catalog: restoreCatalog().catalog, generator }), body);
  assert.deepEqual(pvc.spec.dataSourceRef, EXPECTED_REF);
  assert.equal(validation.review.response.allowed, true);
  const fresh = await setup({ catalog: createMemoryCatalog({}).catalog, generator }).validate(body, signal());
  assert.equal(fresh.review.response.allowed, true);
  assert.equal(calls.length, 0);
});

test("never overwrites an existing dataSourceRef; the validator denies it when a backup exists and allows it when fresh", async () => {
  const body = fixture("existing-data-source-ref-create.json");
  const identity = "db-clone-backup@databases:/data";
  const withBackup = setup({ catalog: createMemoryCatalog({ snapshots: { [identity]: [nov19] } }).catalog });
  const mutation = await withBackup.mutate(body, signal());
  assert.deepEqual(mutation.review.response, { uid: body.request["uid"], allowed: true });
  assert.equal(mutation.reason, "existing-data-source");
  const validation = await withBackup.validate(body, signal());
  assert.equal(validation.review.response.allowed, false);
  assert.match(validation.review.response.status!.message, /VolumeSnapshot/);
  assert.match(validation.review.response.status!.message, /skip-restore/);

  const fresh = setup({ catalog: createMemoryCatalog({}).catalog });
  assert.equal((await fresh.validate(body, signal())).review.response.allowed, true);
});

test("leaves a PVC in an excluded namespace alone without asking the catalog", async () => {
  await leftAlone(fixture("excluded-namespace-create.json"), "excluded-namespace");
});

test("skip-restore with a reason creates the PVC empty over a backup, says so, and generates a paused RD", async () => {
  const body = fixture("skip-restore-with-reason-create.json");
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ catalog: restoreCatalog().catalog, generator });
  const mutation = await mutate(body, signal());
  assert.deepEqual(mutation.review.response, { uid: body.request["uid"], allowed: true });
  assert.equal(mutation.reason, "skip-restore");
  const validation = await validate(body, signal());
  assert.equal(validation.review.response.allowed, true);
  assert.ok(validation.review.response.warnings?.some((w) => /snapshot k21.*NOT restored/.test(w)));
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.restoring, false);
});

test("skip-restore with a reason is allowed while the repository is unreadable", async () => {
  const body = fixture("skip-restore-with-reason-create.json");
  const { validate } = setup({ catalog: createMemoryCatalog({ unreadable: "down" }).catalog });
  const validation = await validate(body, signal());
  assert.equal(validation.review.response.allowed, true);
  assert.ok(validation.review.response.warnings?.some((w) => /data migrated to new schema/.test(w)));
});

test("denies skip-restore without a reason, whatever the catalog says", async () => {
  const body = fixture("skip-restore-without-reason-create.json");
  for (const state of [{}, { unreadable: "down" }, { snapshots: { [APP_DATA]: [nov19] } }]) {
    const { validate } = setup({ catalog: createMemoryCatalog(state).catalog });
    const validation = await validate(body, signal());
    assertEchoes(validation, body);
    assert.equal(validation.review.response.allowed, false);
    assert.equal(validation.reason, "skip-restore-without-reason");
    assert.match(validation.review.response.status!.message, /volsync.backup\/skip-restore-reason/);
  }
});

test("restore-as-of restores the newest snapshot at or before the time and passes it to the generator", async () => {
  const body = fixture("restore-as-of-create.json");
  const { generator, calls } = createRecordingGenerator();
  const { pvc, validation } = await mutateThenValidate(setup({ catalog: restoreCatalog().catalog, generator }), body);
  assert.deepEqual(pvc.spec.dataSourceRef, EXPECTED_REF);
  assert.equal(validation.review.response.allowed, true);
  const evaluation = calls[0]!.evaluation;
  assert.equal(evaluation.annotations.restoreAsOf, "2026-11-20T00:00:00Z");
  assert.ok(evaluation.decision.answer === "restore" && evaluation.decision.snapshot.id === "k19");
});

test("restore-as-of before every snapshot is unknown and denied, never fresh", async () => {
  const body = fixture("restore-as-of-create.json");
  const { mutate, validate } = setup({ catalog: createMemoryCatalog({ snapshots: { [APP_DATA]: [nov21] } }).catalog });
  const mutation = await mutate(body, signal());
  assert.equal(mutation.review.response.patch, undefined);
  const validation = await validate(body, signal());
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.reason, "unknown");
  assert.match(validation.review.response.status!.message, /none at or before the requested restore-as-of/);
});

test("a protected generateName PVC with no name is not patched and is denied", async () => {
  const body = fixture("generate-name-create.json");
  const { catalog, lookups } = createMemoryCatalog({});
  const { mutate, validate } = setup({ catalog });
  const mutation = await mutate(body, signal());
  assert.deepEqual(mutation.review.response, { uid: body.request["uid"], allowed: true });
  assert.equal(mutation.reason, "undecidable");
  const validation = await validate(body, signal());
  assert.equal(validation.review.response.allowed, false);
  assert.match(validation.review.response.status!.message, /fixed metadata.name/);
  assert.deepEqual(lookups, []);
});

test("a protected generateName PVC is denied by the validator, which sees the generated name", async () => {
  const body = fixture("generate-name-validating-create.json");
  const { catalog, lookups } = createMemoryCatalog({});
  const { generator, calls } = createRecordingGenerator();
  const validation = await setup({ catalog, generator }).validate(body, signal());
  assertEchoes(validation, body);
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.reason, "undecidable");
  assert.match(validation.review.response.status!.message, /generateName makes a new name every time/);
  assert.deepEqual(lookups, []);
  assert.equal(calls.length, 0, "no backup objects for a name that will never come back");
});

test("dormant allows a protected PVC while the repository is unreadable, with a warning and no generation", async () => {
  const body = fixture("protected-create.json");
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ catalog: createMemoryCatalog({ unreadable: "down" }).catalog, generator, dormant: true });
  for (const handler of [mutate, validate]) {
    const outcome = await handler(body, signal());
    assert.equal(outcome.review.response.allowed, true);
    assert.equal(outcome.review.response.patch, undefined);
    assert.ok(outcome.review.response.warnings?.some((w) => /dormant/.test(w)));
  }
  assert.equal(calls.length, 0);
});

test("a failed generation on the restore path denies and is counted", async () => {
  const body = fixture("protected-create.json");
  const handlers = setup({
    catalog: restoreCatalog().catalog,
    generator: createRecordingGenerator(async () => ({ ok: false, message: "the API server refused the ReplicationDestination" })).generator,
  });
  const { validation } = await mutateThenValidate(handlers, body);
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.reason, "generation-failed");
  assert.match(validation.review.response.status!.message, /the API server refused the ReplicationDestination/);
  assert.deepEqual(handlers.failures, ["restore"]);
});

test("a failed generation on the fresh path allows with a warning and is counted", async () => {
  const body = fixture("protected-create.json");
  const { validate, failures } = setup({
    catalog: createMemoryCatalog({}).catalog,
    generator: createRecordingGenerator(async () => ({ ok: false, message: "the API server is unavailable" })).generator,
  });
  const validation = await validate(body, signal());
  assert.equal(validation.review.response.allowed, true);
  assert.equal(validation.reason, "generation-deferred");
  assert.ok(validation.review.response.warnings?.some((w) => /the API server is unavailable.*reconciler will create them/.test(w)));
  assert.deepEqual(failures, ["fresh"]);
});

test("a generator that throws is a failed generation naming the error, not a crash", async () => {
  const body = fixture("protected-create.json");
  const rejecting: BackupObjectGenerator = { generate: async () => Promise.reject(new Error("socket hang up")) };
  const throwing: BackupObjectGenerator = {
    generate: () => {
      throw new Error("socket hang up");
    },
  };
  for (const generator of [rejecting, throwing]) {
    const fresh = await setup({ catalog: createMemoryCatalog({}).catalog, generator }).validate(body, signal());
    assert.equal(fresh.review.response.allowed, true);
    assert.equal(fresh.reason, "generation-deferred");
    assert.ok(fresh.review.response.warnings?.some((w) => /writing the backup objects failed: socket hang up/.test(w)));
    const afterMutation = structuredClone(body);
    afterMutation.request["object"].spec.dataSourceRef = EXPECTED_REF;
    const restore = await setup({ catalog: restoreCatalog().catalog, generator }).validate(afterMutation, signal());
    assert.equal(restore.review.response.allowed, false);
    assert.equal(restore.reason, "generation-failed");
    assert.match(restore.review.response.status!.message, /writing the backup objects failed: socket hang up/);
  }
});

test("a generation that outlives the deadline denies on the restore path and warns on the fresh path", { timeout: 10_000 }, async () => {
  const body = fixture("protected-create.json");
  const seenSignals: AbortSignal[] = [];
  const hanging = createRecordingGenerator((_request, generationSignal) => {
    seenSignals.push(generationSignal);
    return new Promise<GenerationResult>(() => {});
  }).generator;
  const afterMutation = structuredClone(body);
  afterMutation.request["object"].spec.dataSourceRef = EXPECTED_REF;
  const restore = await setup({ catalog: restoreCatalog().catalog, generator: hanging, deadlineMs: 50 }).validate(afterMutation, signal());
  assert.equal(restore.review.response.allowed, false);
  assert.equal(restore.reason, "generation-failed");
  assert.match(restore.review.response.status!.message, /internal deadline/);
  const fresh = await setup({ catalog: createMemoryCatalog({}).catalog, generator: hanging, deadlineMs: 50 }).validate(body, signal());
  assert.equal(fresh.review.response.allowed, true);
  assert.equal(fresh.reason, "generation-deferred");
  assert.ok(seenSignals.length === 2 && seenSignals.every((s) => s.aborted), "the generator is told to give up");
});

test("refresh-on-miss turns a miss into a restore when the backup landed after the last refresh", async () => {
  const body = fixture("protected-create.json");
  const { catalog, refreshes } = createMemoryCatalog({
    snapshots: {},
    refresh: async () => ({ readable: true, snapshots: [nov21], refreshedAtMs: Date.UTC(2026, 10, 22) }),
  });
  const { generator, calls } = createRecordingGenerator();
  const { mutate, validate } = setup({ catalog, generator });
  const mutation = await mutate(body, signal());
  assert.equal(mutation.reason, "restore");
  const pvc = patchedObject(mutation.review, body.request["object"]);
  assert.deepEqual(pvc.spec.dataSourceRef, EXPECTED_REF);
  assert.deepEqual(refreshes, [APP_DATA]);
  const afterMutation = withObject(body, pvc);
  assert.equal((await validate(afterMutation, signal())).review.response.allowed, true);
  assert.equal(calls[0]!.restoring, true);
});

test("refresh-on-miss is only tried on a miss, never on a hit or an unreadable repository", async () => {
  const body = fixture("protected-create.json");
  for (const state of [{ snapshots: { [APP_DATA]: [nov19] } }, { unreadable: "down" }]) {
    const { catalog, refreshes } = createMemoryCatalog({ ...state, refresh: async () => ({ readable: true, snapshots: [], refreshedAtMs: 0 }) });
    await setup({ catalog }).mutate(body, signal());
    await setup({ catalog }).validate(body, signal());
    assert.deepEqual(refreshes, []);
  }
});

test("a refresh that confirms the miss stays fresh", async () => {
  const body = fixture("protected-create.json");
  const { catalog } = createMemoryCatalog({ snapshots: {}, refresh: async () => ({ readable: true, snapshots: [], refreshedAtMs: 1 }) });
  assert.equal((await setup({ catalog }).validate(body, signal())).reason, "fresh");
});

test("a refresh that fails makes the answer unknown and denies, saying why", async () => {
  const body = fixture("protected-create.json");
  const refreshes: Array<[(identity: string) => Promise<CatalogLookup>, RegExp]> = [
    [async () => ({ readable: false, reason: "index blob unreadable" }), /index blob unreadable/],
    [async () => Promise.reject(new Error("EIO: i/o error, read")), /re-reading the repository failed: EIO: i\/o error, read/],
    [
      () => {
        throw new Error("catalog not started");
      },
      /re-reading the repository failed: catalog not started/,
    ],
  ];
  for (const [refresh, message] of refreshes) {
    const { catalog } = createMemoryCatalog({ snapshots: {}, refresh });
    const denial = await unknownDenial(body, { catalog });
    assert.match(denial, message);
    assert.doesNotMatch(denial, /deadline/);
  }
});

test("a refresh that never resolves ends in an unknown denial by the deadline", { timeout: 10_000 }, async () => {
  const body = fixture("protected-create.json");
  const { catalog } = createMemoryCatalog({ snapshots: {}, refresh: () => new Promise<CatalogLookup>(() => {}) });
  assert.match(await unknownDenial(body, { catalog, deadlineMs: 50 }), /deadline/);
});

test("a caller that gives up (request aborted) gets unknown, not fresh", { timeout: 10_000 }, async () => {
  const body = fixture("protected-create.json");
  const { catalog } = createMemoryCatalog({ snapshots: {}, refresh: () => new Promise<CatalogLookup>(() => {}) });
  const controller = new AbortController();
  const pending = setup({ catalog, deadlineMs: 60_000 }).validate(body, controller.signal);
  controller.abort();
  const validation = await pending;
  assert.equal(validation.review.response.allowed, false);
  assert.equal(validation.reason, "unknown");
});

const malformedBodies: Array<{ name: string; body: () => unknown; uid: string }> = [
  { name: "null", body: () => null, uid: "" },
  { name: "an array", body: () => [fixture("protected-create.json")], uid: "" },
  { name: "a review without a request", body: () => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), uid: "" },
  {
    name: "a review for a Secret",
    body: () => {
      const b = fixture("protected-create.json");
      b.request["kind"] = { group: "", version: "v1", kind: "Secret" };
      return b;
    },
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  },
  {
    name: "a CREATE without an object",
    body: () => {
      const b = fixture("protected-create.json");
      b.request["object"] = null;
      return b;
    },
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  },
  ...(
    [
      ["a label value that is a number", (o: any) => (o.metadata.labels.backup = 1)],
      ["labels that are a list", (o: any) => (o.metadata.labels = ["backup"])],
      ["an annotation value that is a boolean", (o: any) => (o.metadata.annotations = { "volsync.backup/skip-restore": true })],
      ["a name that is a number", (o: any) => (o.metadata.name = 42)],
      ["a dataSourceRef that is null", (o: any) => (o.spec.dataSourceRef = null)],
      ["accessModes that are a string", (o: any) => (o.spec.accessModes = "ReadWriteOnce")],
    ] as const
  ).map(([name, edit]) => ({
    name: `a PVC with ${name}`,
    body: () => {
      const b = fixture("protected-create.json");
      edit(b.request["object"]);
      return b;
    },
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  })),
];
for (const row of malformedBodies) {
  test(`answers a 400 AdmissionReview to ${row.name} on both webhooks`, async () => {
    const { mutate, validate } = setup({ catalog: createMemoryCatalog({}).catalog });
    for (const handler of [mutate, validate]) {
      const outcome = await handler(row.body(), signal());
      assert.equal(outcome.review.kind, "AdmissionReview");
      assert.equal(outcome.review.response.allowed, false);
      assert.equal(outcome.review.response.status?.code, 400);
      assert.equal(outcome.review.response.uid, row.uid);
    }
  });
}
