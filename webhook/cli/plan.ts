import { parseAllDocuments, stringify } from "yaml";
import { parsePolicyFile, toPolicy } from "../config.ts";
import { ADMISSION_API_VERSION, completeReview, decodeReview } from "../admission/admission-review.ts";
import type { BackupObjectGenerator, GenerationRequest } from "../admission/generation-port.ts";
import { applyAddOperations, type JsonPatchOperation } from "../admission/json-patch.ts";
import { createReviewHandlers } from "../admission/review-handlers.ts";
import { evaluatePvc, type PvcEvaluation } from "../domain/pvc-admission.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource, desiredSecret, restoreTargetOf } from "../domain/desired-resources.ts";
import { DEFAULT_POLICY, S3_SECRET_KEYS, type Policy } from "../domain/policy.ts";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";
import type { CatalogLookup, SnapshotCatalog } from "../domain/snapshot-catalog.ts";
import { createUnconfiguredCatalog, snapshotRecord } from "../domain/snapshot-catalog.ts";
import { createKopiaCatalog } from "../kopia/snapshot-catalog.ts";
import type { CliIo } from "./cli-io.ts";
import { parseCommandOptions } from "./command-options.ts";
import { openRepositoryStore, repositoryStoreUsage } from "./repository-store.ts";
import { errorMessage } from "../domain/error-message.ts";

// `pvc-guardian plan -f <manifests>`: for every PVC in a YAML stream (kustomize or Helm output),
// offline, what admission would decide, the patch it would apply and the objects it would
// generate. A review tool for data protection in GitOps pull requests.

export const PLAN_USAGE = `usage: pvc-guardian plan -f <file|-> [--policy <policy.yaml>] [--assume restore|fresh]
                         [--repository <dir|s3://bucket/prefix> --password-file <file>]
                         [--s3-addressing path|virtual-hosted] [--s3-ca-file <pem>]
                         [--namespace <default namespace>] [--output yaml|json]

Without --assume or a repository the decision is "unknown": offline, nothing can tell whether a
backup exists, and the validator would deny such a PVC. --assume previews each path;
--repository reads a Kopia repository (read-only) for the real decision.
${repositoryStoreUsage}`;

type AssumedAnswer = "restore" | "fresh";

/** Where kubectl puts an object whose manifest names no namespace, unless told otherwise. */
const KUBECTL_DEFAULT_NAMESPACE = "default";

/** The catalog used by --assume: a clearly labelled preview, never a reading of a repository. */
export function createAssumedCatalog(answer: AssumedAnswer, nowMs: number): SnapshotCatalog {
  const startTime = new Date(nowMs).toISOString();
  const lookup: CatalogLookup =
    answer === "fresh"
      ? { readable: true, snapshots: [], refreshedAtMs: nowMs }
      : {
          readable: true,
          refreshedAtMs: nowMs,
          snapshots: [snapshotRecord({ id: "assumed-by-plan", startTime, endTime: startTime, incomplete: false })!],
        };
  return { lookup: () => lookup };
}

export type PlanEntry = {
  document: number;
  pvc: string;
  protected: boolean;
  tier?: string;
  identity?: string;
  decision?: string;
  decisionDetail?: string;
  /** The two webhooks' answer as the API server would show it: the validator's verdict, both warnings. */
  admission: { allowed: boolean; code?: number; message?: string; warnings?: string[] };
  patch: JsonPatchOperation[];
  generated: unknown[];
  notes: string[];
};

function describeDecision(evaluation: PvcEvaluation): { decision?: string; decisionDetail?: string } {
  if (evaluation.scope !== "protected") return {};
  const { decision } = evaluation;
  if (decision.answer === "restore")
    return { decision: "restore", decisionDetail: `newest snapshot ${decision.snapshot.id} of ${decision.snapshot.startTime}` };
  if (decision.answer === "unknown") return { decision: "unknown", decisionDetail: decision.reason };
  return { decision: "fresh", decisionDetail: "the repository holds no snapshot for this identity" };
}

/** The CREATE review the API server would send for `pvc` in `namespace`. */
export function planReview(pvc: PersistentVolumeClaim, namespace: string, uid: string): Record<string, unknown> {
  const name = pvc.metadata?.name;
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      resource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      ...(typeof name === "string" && name !== "" ? { name } : {}),
      namespace,
      operation: "CREATE",
      object: pvc,
    },
  };
}

/**
 * A generator that writes nothing and keeps what the validator asked it to write, so that `plan`
 * can show the objects the webhook would create.
 */
function createRecordingGenerator(): BackupObjectGenerator & { requests: GenerationRequest[] } {
  const requests: GenerationRequest[] = [];
  return {
    requests,
    async generate(request) {
      requests.push(request);
      return { ok: true, warnings: [] };
    },
  };
}

/** The objects a generation request stands for, with what happens to each after admission. */
function describeGenerated(request: GenerationRequest, policy: Policy): { generated: unknown[]; notes: string[] } {
  const { pvc, evaluation, restoring } = request;
  const target = backupTargetOf(
    pvc,
    evaluation.pvcName,
    evaluation.namespace,
    restoring ? restoreTargetOf(evaluation.decision, evaluation.restoreSource) : undefined,
  );
  const secret = desiredSecret(target, {});
  const notes = [`Secret ${secret.metadata.name}: its data is copied from ${policy.sourceSecret.namespace}/${policy.sourceSecret.name} by the reconciler`];
  if (policy.s3) {
    notes.push(
      `the repository is in S3 (${policy.s3.url ?? "KOPIA_REPOSITORY of the source Secret"}): Secret ${secret.metadata.name} carries ` +
        `${S3_SECRET_KEYS.join(", ")} as the source Secret has them, and the mover needs no volume`,
    );
  }
  const generated: unknown[] = [secret, desiredReplicationDestination(target, policy, { paused: !restoring })];
  if (evaluation.schedule.ok) {
    generated.push(desiredReplicationSource(target, policy, { schedule: evaluation.schedule.schedule, retain: evaluation.tier.retain }));
    notes.push(
      `ReplicationSource ${target.names.replicationSource}: created by the reconciler once the PVC is Bound for ${Math.round(policy.firstBackupDelayMs / 60_000)} minutes`,
    );
  } else {
    notes.push(`no ReplicationSource: ${evaluation.schedule.problem}`);
  }
  return { generated, notes };
}

/**
 * What admission would do with `pvc`, found by asking the webhook's own handlers: the review goes
 * through the same decoder, the mutator's patch is applied as the API server applies it, and the
 * validator judges the patched object. Only the writes differ: a recording generator keeps them.
 */
export async function planPvc(
  pvc: PersistentVolumeClaim,
  documentIndex: number,
  namespace: string,
  policy: Policy,
  catalog: SnapshotCatalog,
  nowMs: number,
): Promise<PlanEntry> {
  const name = pvc.metadata?.name;
  const label = `${namespace}/${typeof name === "string" && name !== "" ? name : "(generateName)"}`;
  const decoded = decodeReview(planReview(pvc, namespace, `plan-${documentIndex}`));
  if (!decoded.ok) {
    const { status } = completeReview(decoded.reply, decoded.result).response;
    return { document: documentIndex, pvc: label, protected: false, admission: { allowed: false, ...status }, patch: [], generated: [], notes: [] };
  }
  // The repository was read once up front; a re-read on every miss would only repeat that read.
  const planCatalog: SnapshotCatalog = { lookup: (identity) => catalog.lookup(identity, nowMs) };
  const generator = createRecordingGenerator();
  const handlers = createReviewHandlers({ policy, catalog: planCatalog, generator, now: () => nowMs });
  const signal = new AbortController().signal;
  const mutation = await handlers.mutate(decoded.request, signal);
  const patch = mutation.kind === "patched" ? [...mutation.patch] : [];
  const validation = await handlers.validate({ ...decoded.request, pvc: applyAddOperations(decoded.request.pvc, patch) }, signal);
  const warnings = [...new Set([...mutation.warnings, ...validation.warnings])];

  // For the report only: which tier, identity and decision the handlers' answer rests on.
  const evaluation = evaluatePvc(pvc, { operation: "CREATE", name, namespace }, policy, (identity) => planCatalog.lookup(identity, nowMs));
  const entry: PlanEntry = {
    document: documentIndex,
    pvc: label,
    protected: evaluation.scope !== "not-ours",
    ...(evaluation.scope === "not-ours" ? {} : { tier: evaluation.tierName }),
    ...(evaluation.scope === "protected" ? { identity: evaluation.identity.key } : {}),
    ...describeDecision(evaluation),
    admission: {
      allowed: validation.kind !== "denied",
      ...(validation.kind === "denied" ? { code: validation.status.code, message: validation.status.message } : {}),
      ...(warnings.length ? { warnings } : {}),
    },
    patch,
    generated: [],
    notes: [],
  };
  for (const request of generator.requests) {
    const { generated, notes } = describeGenerated(request, policy);
    entry.generated.push(...generated);
    entry.notes.push(...notes);
  }
  return entry;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export async function runPlanCommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommandOptions(
    args,
    {
      file: { type: "string", short: "f" },
      policy: { type: "string" },
      assume: { type: "string" },
      namespace: { type: "string", short: "n" },
      repository: { type: "string" },
      "password-file": { type: "string" },
      "s3-addressing": { type: "string" },
      "s3-ca-file": { type: "string" },
      output: { type: "string", short: "o", default: "yaml" },
      help: { type: "boolean", short: "h" },
    },
    PLAN_USAGE,
    io,
  );
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  if (!values.file) {
    io.stderr(`plan needs -f <file|->\n${PLAN_USAGE}`);
    return 2;
  }
  if (values.output !== "yaml" && values.output !== "json") {
    io.stderr(`--output must be yaml or json, not ${values.output}\n`);
    return 2;
  }
  if (values.assume !== undefined && values.assume !== "restore" && values.assume !== "fresh") {
    io.stderr(`--assume must be restore or fresh, not ${values.assume}\n`);
    return 2;
  }

  if ((values.repository === undefined) !== (values["password-file"] === undefined)) {
    io.stderr("--repository and --password-file go together\n");
    return 2;
  }
  if (values.repository !== undefined && values.assume !== undefined) {
    io.stderr("--assume and --repository exclude each other: one previews, the other reads\n");
    return 2;
  }

  let policy: Policy = DEFAULT_POLICY;
  if (values.policy) {
    let text: string;
    try {
      text = io.readFile(values.policy);
    } catch (error) {
      io.stderr(`policy file ${values.policy}: cannot be read: ${errorMessage(error)}\n`);
      return 1;
    }
    const parsed = parsePolicyFile(text, `policy file ${values.policy}`);
    if (!parsed.ok) {
      io.stderr(`${parsed.problems.join("\n")}\n`);
      return 1;
    }
    policy = toPolicy(parsed.file);
  }

  let input: string;
  try {
    input = values.file === "-" ? await io.readStdin() : io.readFile(values.file);
  } catch (error) {
    io.stderr(`${values.file}: cannot be read: ${errorMessage(error)}\n`);
    return 1;
  }

  const nowMs = io.now();
  let catalog: SnapshotCatalog = values.assume ? createAssumedCatalog(values.assume as AssumedAnswer, nowMs) : createUnconfiguredCatalog();
  if (values.repository !== undefined && values["password-file"] !== undefined) {
    const opened = openRepositoryStore(values.repository, io.env, {
      ...(values["s3-addressing"] !== undefined ? { addressing: values["s3-addressing"] } : {}),
      ...(values["s3-ca-file"] !== undefined ? { caFile: values["s3-ca-file"] } : {}),
    });
    if (!opened.ok) {
      io.stderr(`${opened.problem}\n`);
      return 2;
    }
    const kopia = createKopiaCatalog({
      store: opened.store,
      repositoryPath: values.repository,
      passwordFile: values["password-file"],
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 3_600_000,
      missRefreshTimeoutMs: 1,
      now: io.now,
    });
    await kopia.start();
    kopia.stop();
    const health = kopia.health();
    if (health.lastError !== null) io.stderr(`warning: the repository could not be read, so protected PVCs are unknown: ${health.lastError}\n`);
    catalog = kopia;
  }
  const source = values.file === "-" ? "stdin" : values.file;
  const problems: string[] = [];
  const entries: PlanEntry[] = [];
  const documents = parseAllDocuments(input);
  const list = Array.isArray(documents) ? documents : [documents];
  for (const [index, document] of list.entries()) {
    const number = index + 1;
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        const line = error.linePos ? ` line ${error.linePos[0].line}` : "";
        problems.push(`${source}: document ${number}${line}: ${error.message.split("\n")[0]}`);
      }
      continue;
    }
    const doc: unknown = document.toJS();
    if (doc === null || doc === undefined) continue;
    if (!isRecord(doc)) {
      problems.push(`${source}: document ${number}: not a Kubernetes object (a map with apiVersion and kind)`);
      continue;
    }
    const items = doc["kind"] === "List" && Array.isArray(doc["items"]) ? (doc["items"] as unknown[]) : [doc];
    for (const item of items) {
      if (!isRecord(item) || item["kind"] !== "PersistentVolumeClaim") continue;
      const metadata = isRecord(item["metadata"]) ? item["metadata"] : {};
      const namespace = typeof metadata["namespace"] === "string" ? metadata["namespace"] : (values.namespace ?? KUBECTL_DEFAULT_NAMESPACE);
      const entry = await planPvc(item as PersistentVolumeClaim, number, namespace, policy, catalog, nowMs);
      if (entry.admission.code === 400) {
        // A document the webhook cannot read as a PVC: a problem with the manifest, not a verdict.
        const hint = /expected string/.test(entry.admission.message ?? "") ? ' (quote numbers and booleans in YAML: "1", "true")' : "";
        problems.push(`${source}: document ${number} (PersistentVolumeClaim ${String(metadata["name"] ?? "")}): ${entry.admission.message}${hint}`);
        continue;
      }
      entries.push(entry);
    }
  }

  if (problems.length > 0) {
    io.stderr(`${problems.join("\n")}\n`);
    return 1;
  }
  const report = {
    assumed: values.assume ?? null,
    summary: {
      pvcs: entries.length,
      protected: entries.filter((entry) => entry.protected).length,
      denied: entries.filter((entry) => !entry.admission.allowed).length,
    },
    pvcs: entries,
  };
  io.stdout(values.output === "json" ? `${JSON.stringify(report, null, 2)}\n` : stringify(report, { lineWidth: 0 }));
  return 0;
}
