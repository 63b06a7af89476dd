import { evaluatePvc, decideMutation, decideValidation, isRestoring, type AdmissionRequestFacts, type PvcEvaluation } from "../domain/pvc-admission.ts";
import type { Policy } from "../domain/policy.ts";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";
import type { CatalogLookup, SnapshotCatalog } from "../domain/snapshot-catalog.ts";
import { allowed, denied, patched, type PvcReviewRequest, type ReviewHandler } from "./admission-review.ts";
import { errorMessage } from "../domain/error-message.ts";
import type { BackupObjectGenerator } from "./generation-port.ts";
import { jsonPointer, type JsonPatchOperation } from "./json-patch.ts";

// The mutating and validating handlers: a decoded PVC review in, a decision from domain/, an
// allowed / denied / patched result out. The only waiting they do is bounded by the route's
// deadline, the signal they are given: a single-flight catalog refresh when an identity has no
// snapshots, and the validator's writes. When it aborts they answer at once with what they know.

/** A catalog that can also re-read the repository once when an identity is missing. */
export type AdmissionCatalog = SnapshotCatalog & {
  lookupWithRefreshOnMiss?(identity: string, nowMs: number): Promise<CatalogLookup>;
};

export type CatalogChoice = { ok: true; repository: string; catalog: AdmissionCatalog } | { ok: false; reason: string };

/** A catalog that answers every lookup with why no repository could be chosen. */
function unchosenCatalog(reason: string): AdmissionCatalog {
  return { lookup: () => ({ readable: false, reason: `no repository can be chosen for this namespace: ${reason}` }) };
}

export type ReviewHandlerDeps = {
  policy: Pick<Policy, "tiers" | "excludedNamespaces" | "dormant">;
  catalog: AdmissionCatalog;
  /**
   * With more than one repository: the catalog of the repository serving a namespace, or why
   * none can be told. Absent: `catalog` serves every namespace.
   */
  catalogFor?: (namespace: string) => CatalogChoice;
  /** Absent where pvc-guardian has no API access (local runs): nothing is generated. */
  generator?: BackupObjectGenerator;
  now?: () => number;
  onGenerationFailure?: (path: "restore" | "fresh") => void;
};

export type ReviewHandlers = { mutate: ReviewHandler; validate: ReviewHandler };

const DEADLINE_PASSED = "pvc-guardian's internal deadline passed before the repository could be re-read";

function requestFacts(request: PvcReviewRequest, pvc: PersistentVolumeClaim): AdmissionRequestFacts {
  return {
    operation: request.operation,
    name: request.name || pvc.metadata?.name || undefined,
    namespace: request.namespace || pvc.metadata?.namespace || "",
  };
}

/**
 * Resolves with `fallback` if `signal` aborts first or the work fails; never leaves the caller
 * waiting. The fallback is told which, so the answer names what really happened.
 */
function raceAbort<T>(work: () => Promise<T>, signal: AbortSignal, fallback: (failure: { error?: unknown }) => T): Promise<T> {
  if (signal.aborted) return Promise.resolve(fallback({}));
  return new Promise((resolve) => {
    const onAbort = () => resolve(fallback({}));
    signal.addEventListener("abort", onAbort, { once: true });
    // Called inside a promise so that an adapter throwing synchronously is a failure, not a crash.
    Promise.resolve()
      .then(work)
      .then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          resolve(fallback({ error }));
        },
      );
  });
}

export function createReviewHandlers(deps: ReviewHandlerDeps): ReviewHandlers {
  const now = deps.now ?? Date.now;
  const { policy } = deps;
  const catalogOf = (namespace: string): AdmissionCatalog => {
    if (!deps.catalogFor) return deps.catalog;
    const choice = deps.catalogFor(namespace);
    return choice.ok ? choice.catalog : unchosenCatalog(choice.reason);
  };

  async function evaluate(pvc: PersistentVolumeClaim, facts: AdmissionRequestFacts, signal: AbortSignal): Promise<PvcEvaluation> {
    const catalog = catalogOf(facts.namespace);
    const first = evaluatePvc(pvc, facts, policy, (identity) => catalog.lookup(identity, now()));
    if (first.scope !== "protected" || first.decision.answer !== "fresh" || !catalog.lookupWithRefreshOnMiss) return first;
    // A miss may only mean the backup landed after our last refresh: read the new blobs once.
    const refreshOnMiss = catalog.lookupWithRefreshOnMiss.bind(catalog);
    const refreshed = await raceAbort(
      () => refreshOnMiss(first.identity.key, now()),
      signal,
      ({ error }): CatalogLookup => ({
        readable: false,
        reason: error === undefined ? DEADLINE_PASSED : `re-reading the repository failed: ${errorMessage(error)}`,
      }),
    );
    // The refreshed answer stands for the PVC's own identity, and a failed or late refresh for
    // every identity; otherwise the other identities the decision reads come from the new read.
    const ownKey = first.identity.key;
    return evaluatePvc(pvc, facts, policy, (identity) => (!refreshed.readable || identity === ownKey ? refreshed : catalog.lookup(identity, now())));
  }

  const mutate: ReviewHandler = async (request, signal) => {
    const { pvc } = request;
    const evaluation = await evaluate(pvc, requestFacts(request, pvc), signal);
    const mutation = decideMutation(pvc, evaluation, policy.dormant);
    const operations: JsonPatchOperation[] = [];
    if (mutation.addDataSourceRef) {
      operations.push(
        pvc.spec === undefined
          ? { op: "add", path: jsonPointer("spec"), value: { dataSourceRef: mutation.addDataSourceRef } }
          : { op: "add", path: jsonPointer("spec", "dataSourceRef"), value: mutation.addDataSourceRef },
      );
    }
    return patched(mutation.reason, operations, mutation.warnings);
  };

  const validate: ReviewHandler = async (request, signal) => {
    const { pvc } = request;
    const evaluation = await evaluate(pvc, requestFacts(request, pvc), signal);
    const verdict = decideValidation(pvc, evaluation, policy.dormant);
    if (!verdict.allowed) return denied(verdict.reason, verdict.message, verdict.warnings);
    if (evaluation.scope !== "protected" || policy.dormant || request.dryRun || !deps.generator) return allowed(verdict.reason, verdict.warnings);

    const restoring = isRestoring(evaluation);
    const generator = deps.generator;
    const result = await raceAbort(
      () => generator.generate({ pvc, evaluation, restoring }, signal),
      signal,
      ({ error }) => ({
        ok: false as const,
        message:
          error === undefined
            ? "the backup objects could not be written before pvc-guardian's internal deadline"
            : `writing the backup objects failed: ${errorMessage(error)}`,
      }),
    );
    if (result.ok) return allowed(verdict.reason, [...verdict.warnings, ...result.warnings]);
    deps.onGenerationFailure?.(restoring ? "restore" : "fresh");
    if (restoring) {
      const message =
        `pvc-guardian blocked PVC ${evaluation.namespace}/${evaluation.pvcName}: a backup exists and must be restored, ` +
        `but ${result.message}. Admitting it without them could restore it from a stale image or back it up before it is restored. ` +
        `Retry the apply; GitOps tools retry on their own.`;
      return denied("generation-failed", message, verdict.warnings);
    }
    const warning = `backup objects were not written yet (${result.message}); pvc-guardian's reconciler will create them`;
    return allowed("generation-deferred", [...verdict.warnings, warning]);
  };

  return { mutate, validate };
}
