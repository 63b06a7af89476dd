import { parseArgs } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { parsePolicyFile, toPolicy } from "../config.ts";
import { decideMutation, decideValidation, evaluatePvc, isRestoring, type PvcEvaluation } from "../domain/pvc-admission.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource, desiredSecret, restoreTargetOf } from "../domain/desired-resources.ts";
import { DEFAULT_POLICY, S3_SECRET_KEYS, type Policy } from "../domain/policy.ts";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";
import type { CatalogLookup, SnapshotCatalog } from "../domain/snapshot-catalog.ts";
import { createUnconfiguredCatalog, snapshotRecord } from "../domain/snapshot-catalog.ts";
import { jsonPointer, type JsonPatchOperation } from "../admission/json-patch.ts";
import { createKopiaCatalog } from "../kopia/snapshot-catalog.ts";
import type { CliIo } from "./cli-io.ts";
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
  admission: { allowed: boolean; message?: string; warnings?: string[] };
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

export function planPvc(
  pvc: PersistentVolumeClaim,
  documentIndex: number,
  namespace: string,
  policy: Policy,
  catalog: SnapshotCatalog,
  nowMs: number,
): PlanEntry {
  const name = pvc.metadata?.name;
  const facts = { operation: "CREATE", name, namespace };
  const evaluation = evaluatePvc(pvc, facts, policy, (identity) => catalog.lookup(identity, nowMs));
  const mutation = decideMutation(pvc, evaluation, policy.dormant);
  const patch: JsonPatchOperation[] = mutation.addDataSourceRef
    ? [{ op: "add", path: jsonPointer("spec", "dataSourceRef"), value: mutation.addDataSourceRef }]
    : [];
  const mutated: PersistentVolumeClaim = mutation.addDataSourceRef ? { ...pvc, spec: { ...pvc.spec, dataSourceRef: mutation.addDataSourceRef } } : pvc;
  const verdict = decideValidation(mutated, evaluation, policy.dormant);
  const warnings = [...new Set([...mutation.warnings, ...verdict.warnings])];
  const entry: PlanEntry = {
    document: documentIndex,
    pvc: `${namespace}/${name ?? "(generateName)"}`,
    protected: evaluation.scope !== "not-ours",
    ...(evaluation.scope === "not-ours" ? {} : { tier: evaluation.tierName }),
    ...(evaluation.scope === "protected" ? { identity: evaluation.identity.key } : {}),
    ...describeDecision(evaluation),
    admission: { allowed: verdict.allowed, ...(verdict.allowed ? {} : { message: verdict.message }), ...(warnings.length ? { warnings } : {}) },
    patch,
    generated: [],
    notes: [],
  };
  if (evaluation.scope !== "protected" || !verdict.allowed) return entry;

  const restoring = isRestoring(evaluation);
  const target = backupTargetOf(
    pvc,
    evaluation.pvcName,
    evaluation.namespace,
    restoring ? restoreTargetOf(evaluation.decision, evaluation.restoreSource) : undefined,
  );
  const secret = desiredSecret(target, {});
  entry.notes.push(`Secret ${secret.metadata.name}: its data is copied from ${policy.sourceSecret.namespace}/${policy.sourceSecret.name} at admission`);
  if (policy.s3) {
    entry.notes.push(
      `the repository is in S3 (${policy.s3.url ?? "KOPIA_REPOSITORY of the source Secret"}): Secret ${secret.metadata.name} carries ` +
        `${S3_SECRET_KEYS.join(", ")} as the source Secret has them, and the mover needs no volume`,
    );
  }
  entry.generated.push(secret, desiredReplicationDestination(target, policy, { paused: !restoring }));
  if (evaluation.schedule.ok) {
    entry.generated.push(desiredReplicationSource(target, policy, { schedule: evaluation.schedule.schedule, retain: evaluation.tier.retain }));
    entry.notes.push(
      `ReplicationSource ${target.names.replicationSource}: created by the reconciler once the PVC is Bound for ${Math.round(policy.firstBackupDelayMs / 60_000)} minutes`,
    );
  } else {
    entry.notes.push(`no ReplicationSource: ${evaluation.schedule.problem}`);
  }
  return entry;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Problems that make a PVC document unreadable, naming the field. */
function pvcShapeProblems(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const metadata = doc["metadata"];
  if (!isRecord(metadata)) return ["metadata is missing or not a map"];
  if (metadata["name"] !== undefined && typeof metadata["name"] !== "string") problems.push("metadata.name is not a string");
  if (metadata["name"] === undefined && metadata["generateName"] === undefined) problems.push("metadata.name is missing");
  for (const field of ["labels", "annotations"] as const) {
    const map = metadata[field];
    if (map === undefined || map === null) continue;
    if (!isRecord(map)) {
      problems.push(`metadata.${field} is not a map`);
      continue;
    }
    for (const [key, value] of Object.entries(map)) {
      if (typeof value !== "string") problems.push(`metadata.${field}.${key} is not a string (quote it in YAML: "${String(value)}")`);
    }
  }
  const spec = doc["spec"];
  if (spec !== undefined && !isRecord(spec)) problems.push("spec is not a map");
  return problems;
}

export async function runPlanCommand(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
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
      strict: true,
    }));
  } catch (error) {
    io.stderr(`${errorMessage(error)}\n${PLAN_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(PLAN_USAGE);
    return 0;
  }
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
  list.forEach((document, index) => {
    const number = index + 1;
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        const line = error.linePos ? ` line ${error.linePos[0].line}` : "";
        problems.push(`${source}: document ${number}${line}: ${error.message.split("\n")[0]}`);
      }
      return;
    }
    const doc: unknown = document.toJS();
    if (doc === null || doc === undefined) return;
    if (!isRecord(doc)) {
      problems.push(`${source}: document ${number}: not a Kubernetes object (a map with apiVersion and kind)`);
      return;
    }
    const items = doc["kind"] === "List" && Array.isArray(doc["items"]) ? (doc["items"] as unknown[]) : [doc];
    for (const item of items) {
      if (!isRecord(item) || item["kind"] !== "PersistentVolumeClaim") continue;
      const shape = pvcShapeProblems(item);
      const label = `${source}: document ${number} (PersistentVolumeClaim ${isRecord(item["metadata"]) ? String(item["metadata"]["name"] ?? "") : ""})`;
      if (shape.length > 0) {
        problems.push(...shape.map((problem) => `${label}: ${problem}`));
        continue;
      }
      const pvc = item as PersistentVolumeClaim;
      const namespace = pvc.metadata?.namespace ?? values.namespace ?? "default";
      entries.push(planPvc(pvc, number, namespace, policy, catalog, nowMs));
    }
  });

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
