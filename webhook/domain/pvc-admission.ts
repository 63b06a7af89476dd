import { readBackupAnnotations, type BackupAnnotations } from "./backup-annotations.ts";
import { resolveSchedule, type ScheduleResult } from "./backup-schedule.ts";
import { backupIdentity, type BackupIdentity, type KopiaIdentity } from "./kopia-identity.ts";
import type { Policy, Tier } from "./policy.ts";
import { resolveProtection } from "./protection.ts";
import type { PersistentVolumeClaim, TypedObjectReference } from "./pvc.ts";
import { generatedNames, type GeneratedNames } from "./resource-names.ts";
import { decidePvcRestore, type RestoreDecision, type RestoreSource } from "./restore-decision.ts";
import type { CatalogLookup } from "./snapshot-catalog.ts";
import { ANNOTATION_SKIP_RESTORE, ANNOTATION_SKIP_RESTORE_REASON, BACKUP_LABEL, KIND_REPLICATION_DESTINATION, VOLSYNC_API_GROUP } from "./wire-names.ts";

// The admission rules for one PVC, as pure functions: what the mutator adds and whether the
// validator lets it through. The handlers in admission/ only translate these to AdmissionReviews.

export type AdmissionRequestFacts = {
  operation: string;
  /** From the request, falling back to the object: generateName requests carry no name yet. */
  name: string | undefined;
  namespace: string;
};

export type PvcEvaluation =
  | { scope: "not-ours"; reason: string; warnings: string[] }
  | {
      scope: "protected";
      pvcName: string;
      namespace: string;
      tierName: string;
      tier: Tier;
      annotations: BackupAnnotations;
      names: GeneratedNames;
      /** The identity this PVC's backups are written under (backupIdentity.written). */
      identity: KopiaIdentity;
      backupIdentity: BackupIdentity;
      decision: RestoreDecision;
      /** With a `restore` decision: where the ReplicationDestination reads from. */
      restoreSource?: RestoreSource;
      schedule: ScheduleResult;
      warnings: string[];
    }
  /** Protected by its label but impossible to decide for, e.g. no fixed name. */
  | { scope: "undecidable"; tierName: string; problem: string; warnings: string[] };

/**
 * The API server generates the name after mutating admission and before validating admission, so
 * the mutator sees no name and the validator sees `<generateName><5 random>`. Either way the name
 * is not one the PVC will have again after a disaster. The base is cut to 58 characters.
 */
const GENERATED_NAME_BASE_LENGTH = 58;
function isGeneratedName(name: string, generateName: string | undefined): boolean {
  return generateName !== undefined && generateName !== "" && name.startsWith(generateName.slice(0, GENERATED_NAME_BASE_LENGTH));
}

/** Looks a Kopia identity up; the admission path passes a memory-only catalog read. */
export type IdentityLookup = (identityKey: string) => CatalogLookup;

export function evaluatePvc(
  pvc: PersistentVolumeClaim,
  facts: AdmissionRequestFacts,
  policy: Pick<Policy, "tiers" | "excludedNamespaces">,
  lookup: IdentityLookup,
): PvcEvaluation {
  if (facts.operation !== "CREATE") return { scope: "not-ours", reason: "not-create", warnings: [] };
  const protection = resolveProtection(pvc.metadata?.labels, facts.namespace, policy);
  switch (protection.kind) {
    case "unlabelled":
      return { scope: "not-ours", reason: "unlabelled", warnings: [] };
    case "excluded-namespace":
      return { scope: "not-ours", reason: "excluded-namespace", warnings: [] };
    case "unknown-tier":
      return { scope: "not-ours", reason: "unknown-tier", warnings: [protection.warning] };
    case "protected":
      break;
  }
  const annotations = readBackupAnnotations(pvc.metadata?.annotations);
  if (!facts.name || isGeneratedName(facts.name, pvc.metadata?.generateName)) {
    return {
      scope: "undecidable",
      tierName: protection.tierName,
      problem:
        `a PVC labelled ${BACKUP_LABEL}=${protection.tierName} must have a fixed metadata.name: the backup ` +
        `is found again by name after a disaster, and generateName makes a new name every time`,
      warnings: annotations.warnings,
    };
  }
  const names = generatedNames(facts.name);
  const backup = backupIdentity(names.replicationDestination, facts.namespace);
  const restore = decidePvcRestore(backup, lookup, {
    ...(annotations.restoreAsOfNs === undefined ? {} : { restoreAsOfNs: annotations.restoreAsOfNs }),
    ...(annotations.restoreFromIdentity === undefined ? {} : { restoreFromIdentity: annotations.restoreFromIdentity }),
  });
  const schedule = resolveSchedule(annotations.scheduleOverride ?? protection.tier.schedule, `${facts.namespace}/${facts.name}`);
  const warnings = [...annotations.warnings, ...restore.warnings];
  if (!schedule.ok) warnings.push(`the backup schedule cannot be used: ${schedule.problem}`);
  return {
    scope: "protected",
    pvcName: facts.name,
    namespace: facts.namespace,
    tierName: protection.tierName,
    tier: protection.tier,
    annotations,
    names,
    identity: backup.written,
    backupIdentity: backup,
    decision: restore.decision,
    ...(restore.source === undefined ? {} : { restoreSource: restore.source }),
    schedule,
    warnings,
  };
}

export function restoreDataSourceRef(names: GeneratedNames): Required<Pick<TypedObjectReference, "apiGroup" | "kind" | "name">> {
  return { apiGroup: VOLSYNC_API_GROUP, kind: KIND_REPLICATION_DESTINATION, name: names.replicationDestination };
}

function carriesDataSourceRef(pvc: PersistentVolumeClaim, expected: TypedObjectReference): boolean {
  const ref = pvc.spec?.dataSourceRef;
  return (
    ref !== undefined &&
    ref.apiGroup === expected.apiGroup &&
    ref.kind === expected.kind &&
    ref.name === expected.name &&
    (ref.namespace === undefined || ref.namespace === "")
  );
}

const hasValidSkipRestore = (annotations: BackupAnnotations): boolean => annotations.skipRestore.requested && annotations.skipRestore.reason !== undefined;

/**
 * Whether the PVC will be populated from its ReplicationDestination: a backup exists and no valid
 * skip-restore was given. Generation activates the RD then, and a failed write denies.
 */
export function isRestoring(evaluation: Extract<PvcEvaluation, { scope: "protected" }>): boolean {
  return evaluation.decision.answer === "restore" && !hasValidSkipRestore(evaluation.annotations);
}

export type MutationOutcome = {
  /** Set when the mutator must add this dataSourceRef. */
  addDataSourceRef?: TypedObjectReference;
  warnings: string[];
  reason: string;
};

export function decideMutation(pvc: PersistentVolumeClaim, evaluation: PvcEvaluation, dormant: boolean): MutationOutcome {
  if (evaluation.scope !== "protected") return { warnings: evaluation.warnings, reason: evaluation.scope === "not-ours" ? evaluation.reason : "undecidable" };
  const { warnings, decision, annotations, names } = evaluation;
  if (dormant) return { warnings: [...warnings, dormantWarning], reason: "dormant" };
  if (hasValidSkipRestore(annotations)) return { warnings, reason: "skip-restore" };
  if (decision.answer !== "restore") return { warnings, reason: decision.answer };
  if (annotations.blockingProblems.length > 0) return { warnings, reason: "invalid-annotation" };
  const expected = restoreDataSourceRef(names);
  if (carriesDataSourceRef(pvc, expected)) return { warnings, reason: "restore-already-set" };
  if (pvc.spec?.dataSourceRef || pvc.spec?.dataSource) {
    // Never overwrite a source the user chose; the validator explains what to do.
    return { warnings, reason: "existing-data-source" };
  }
  return { addDataSourceRef: expected, warnings, reason: "restore" };
}

export type ValidationOutcome = { allowed: true; warnings: string[]; reason: string } | { allowed: false; message: string; warnings: string[]; reason: string };

const dormantWarning = "pvc-guardian is dormant (policy switch): this PVC was admitted without checking for a backup to restore";

const fixUnknown =
  `Fix the repository access (see pvc-guardian's logs, or /readyz?verbose on its metrics port) and retry; ArgoCD and Flux retry on their own. ` +
  `To create the volume empty on purpose, set the annotations ${ANNOTATION_SKIP_RESTORE}: "true" and ` +
  `${ANNOTATION_SKIP_RESTORE_REASON}: "<why>".`;

export function decideValidation(pvc: PersistentVolumeClaim, evaluation: PvcEvaluation, dormant: boolean): ValidationOutcome {
  if (evaluation.scope === "not-ours") return { allowed: true, warnings: evaluation.warnings, reason: evaluation.reason };
  if (dormant) return { allowed: true, warnings: [...evaluation.warnings, dormantWarning], reason: "dormant" };
  if (evaluation.scope === "undecidable") {
    return {
      allowed: false,
      message: `pvc-guardian blocked this PVC: ${evaluation.problem}. Give it a fixed metadata.name and no generateName, or remove the ${BACKUP_LABEL} label.`,
      warnings: evaluation.warnings,
      reason: "undecidable",
    };
  }
  const { warnings, decision, annotations, names, namespace, pvcName, tierName } = evaluation;
  const subject = `PVC ${namespace}/${pvcName} (${BACKUP_LABEL}=${tierName}, Kopia identity ${decision.identity})`;

  if (annotations.skipRestore.requested && annotations.skipRestore.reason === undefined) {
    return {
      allowed: false,
      message:
        `pvc-guardian blocked ${subject}: it asks to skip the restore (${ANNOTATION_SKIP_RESTORE}: "true") without saying why. ` +
        `Skipping a restore can leave an empty volume where data existed, so it needs a non-empty ` +
        `${ANNOTATION_SKIP_RESTORE_REASON} annotation. Add one, or remove ${ANNOTATION_SKIP_RESTORE}.`,
      warnings,
      reason: "skip-restore-without-reason",
    };
  }
  const skip = annotations.skipRestore;
  if (skip.requested && skip.reason !== undefined) {
    const note =
      decision.answer === "restore"
        ? `a backup exists for ${decision.identity} (snapshot ${decision.snapshot.id} of ${decision.snapshot.startTime}) and is NOT restored because of ${ANNOTATION_SKIP_RESTORE}`
        : `restore skipped on request (${ANNOTATION_SKIP_RESTORE_REASON}: ${skip.reason})`;
    return { allowed: true, warnings: [...warnings, note], reason: "skip-restore" };
  }
  if (annotations.blockingProblems.length > 0) {
    return {
      allowed: false,
      message:
        `pvc-guardian blocked ${subject}: ${annotations.blockingProblems.join("; ")}. ` +
        `The restore point decides which data the volume starts with, so it must be unambiguous. Fix the annotation and retry.`,
      warnings,
      reason: "invalid-annotation",
    };
  }
  switch (decision.answer) {
    case "unknown":
      return {
        allowed: false,
        message:
          `pvc-guardian blocked ${subject}: it cannot tell whether the backup repository holds data for this volume ` +
          `(${decision.reason}). Creating it now could give it an empty volume over restorable data. ${decision.remedy ?? fixUnknown}`,
        warnings,
        reason: "unknown",
      };
    case "restore": {
      const expected = restoreDataSourceRef(names);
      if (carriesDataSourceRef(pvc, expected)) return { allowed: true, warnings, reason: "restore" };
      const found = pvc.spec?.dataSourceRef ?? pvc.spec?.dataSource;
      const carries = found ? `it carries dataSourceRef ${JSON.stringify(found)}` : "it carries no dataSourceRef";
      return {
        allowed: false,
        message:
          `pvc-guardian blocked ${subject}: a backup exists (snapshot ${decision.snapshot.id} of ${decision.snapshot.startTime}) ` +
          `and must be restored through dataSourceRef ${JSON.stringify(expected)}, but ${carries}. ` +
          `This happens when the backup appeared between mutation and validation, or another webhook changed the PVC. ` +
          `Retry the apply (GitOps tools retry on their own). To keep your own data source or start empty, set ` +
          `${ANNOTATION_SKIP_RESTORE}: "true" with ${ANNOTATION_SKIP_RESTORE_REASON}.`,
        warnings,
        reason: "data-source-mismatch",
      };
    }
    case "fresh": {
      // A PVC that already asks for our ReplicationDestination (a manifest exported from a
      // restored PVC, or a snapshot pruned between mutation and validation) would wait forever on
      // an RD that is created paused with nothing to restore.
      const expected = restoreDataSourceRef(names);
      if (!carriesDataSourceRef(pvc, expected)) return { allowed: true, warnings, reason: "fresh" };
      return {
        allowed: false,
        message:
          `pvc-guardian blocked ${subject}: it asks to be restored through dataSourceRef ${JSON.stringify(expected)}, ` +
          `but the repository holds no snapshot for this identity, so the volume would stay Pending forever. ` +
          `Remove spec.dataSourceRef from the manifest (pvc-guardian adds it itself when a backup exists) and retry.`,
        warnings,
        reason: "restore-requested-without-backup",
      };
    }
  }
}
