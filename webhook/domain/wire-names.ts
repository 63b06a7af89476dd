// Every string that crosses a wire (label and annotation keys, API groups, field managers) lives
// here and nowhere else, so a typo cannot split one concept into two.

export const BACKUP_LABEL = "backup";

export const ANNOTATION_SCHEDULE = "volsync.backup/schedule";
export const ANNOTATION_RESTORE_AS_OF = "volsync.backup/restore-as-of";
export const ANNOTATION_SKIP_RESTORE = "volsync.backup/skip-restore";
export const ANNOTATION_SKIP_RESTORE_REASON = "volsync.backup/skip-restore-reason";

/** On generated objects: which PVC they serve (label value may be hashed, see resource-names). */
export const LABEL_PVC = "volsync.backup/pvc";
/** On generated objects: the PVC's full name when the label value had to be hashed. */
export const ANNOTATION_PVC_NAME = "volsync.backup/pvc-name";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY_GUARDIAN = "pvc-guardian";
/** What the Kyverno policy stack put on the objects it generated; adoption looks for it. */
export const MANAGED_BY_KYVERNO = "kyverno";

export const FIELD_MANAGER = "pvc-guardian";
/** The Lease, in pvc-guardian's namespace, whose holder reconciles and sweeps. */
export const LEADER_LEASE_NAME = "pvc-guardian-leader";
/** `reportingController` of the Events pvc-guardian records. */
export const EVENT_REPORTING_CONTROLLER = "pvc-guardian.io/pvc-guardian";

export const VOLSYNC_API_GROUP = "volsync.backube";
export const VOLSYNC_API_VERSION = "volsync.backube/v1alpha1";
export const KIND_REPLICATION_SOURCE = "ReplicationSource";
export const KIND_REPLICATION_DESTINATION = "ReplicationDestination";

/** The manual trigger value on every ReplicationDestination we generate. */
export const RESTORE_ONCE_TRIGGER = "restore-once";

/** The path VolSync's Kopia mover snapshots the volume under. */
export const KOPIA_SOURCE_PATH = "/data";

/**
 * On our ReplicationDestination: when the reconciler first saw the PVC Bound, and the uid of the
 * PVC it saw. A PVC records no bind time, so this is what the first-backup delay counts from.
 */
export const ANNOTATION_BOUND_OBSERVED_AT = "volsync.backup/bound-observed-at";
export const ANNOTATION_BOUND_PVC_UID = "volsync.backup/bound-pvc-uid";

/**
 * The reasons of the Events pvc-guardian records on PVCs (what `kubectl describe pvc` shows and
 * what alerting on Events matches): every one it can emit, so none is spelled twice.
 */
export const PVC_EVENT_REASONS = [
  "RestoreDecided",
  "BackupObjectsCreated",
  "BackupPolicyUnsupported",
  "FirstBackupScheduled",
  "StaleReplicationSourceDeleted",
  "SweepHeldByBreaker",
  "RestoreVerified",
  "RestoreMismatch",
  "RestoreEmpty",
  "RestoreFailed",
  "RestoreUnverified",
] as const;
export type PvcEventReason = (typeof PVC_EVENT_REASONS)[number];

/** The ConfigMap, in pvc-guardian's namespace, through which an operator releases a held sweep. */
export const SWEEP_ACKNOWLEDGEMENT_CONFIGMAP = "pvc-guardian-sweep-acknowledgement";
/** Its keys: the largest sweep allowed, and the RFC 3339 time after which it counts for nothing. */
export const SWEEP_ACKNOWLEDGEMENT_MAX_DELETIONS_KEY = "maxDeletions";
export const SWEEP_ACKNOWLEDGEMENT_EXPIRES_AT_KEY = "expiresAt";

/**
 * On a PVC: restore from this Kopia identity (`username@hostname:/data`, in the PVC's own
 * namespace) when the PVC's own identity holds no backup yet. The way out when a PVC's backups
 * were written under an identity other PVCs may share (see kopia-identity.ts).
 */
export const ANNOTATION_RESTORE_FROM_IDENTITY = "volsync.backup/restore-from-identity";

/**
 * On a ReplicationDestination activated for a restore: the snapshot the decision chose (its
 * manifest id) and that snapshot's own statistics, JSON `{"fileCount":N,"dirCount":N,"totalSize":N}`
 * as its manifest records them. Restore verification compares the mover's report with these.
 */
export const ANNOTATION_RESTORE_SNAPSHOT_ID = "volsync.backup/restore-snapshot-id";
export const ANNOTATION_RESTORE_SNAPSHOT_STATS = "volsync.backup/restore-snapshot-stats";
/** On that ReplicationDestination, once its mover finished: the verdict and a sentence why. */
export const ANNOTATION_RESTORE_VERDICT = "volsync.backup/restore-verdict";
export const ANNOTATION_RESTORE_VERDICT_DETAIL = "volsync.backup/restore-verdict-detail";

/** The read API's realm in WWW-Authenticate (RFC 6750): what a 401 asks the caller to authenticate to. */
export const READ_API_REALM = "pvc-guardian";
