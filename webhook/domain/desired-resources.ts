import { backupIdentity, type KopiaIdentity } from "./kopia-identity.ts";
import type { Policy, Retention } from "./policy.ts";
import type { PersistentVolumeClaim } from "./pvc.ts";
import { generatedNames, type GeneratedNames } from "./resource-names.ts";
import type { RestoreDecision, RestorePoint, RestoreSource } from "./restore-decision.ts";
import { formatPinnedSnapshotStats, parsePinnedSnapshotStats, type PinnedSnapshotStats } from "./restore-verification.ts";
import {
  ANNOTATION_PVC_NAME,
  ANNOTATION_RESTORE_SNAPSHOT_ID,
  ANNOTATION_RESTORE_SNAPSHOT_STATS,
  LABEL_MANAGED_BY,
  LABEL_PVC,
  MANAGED_BY_GUARDIAN,
  RESTORE_ONCE_TRIGGER,
  VOLSYNC_API_VERSION,
  KIND_REPLICATION_DESTINATION,
  KIND_REPLICATION_SOURCE,
  KOPIA_SOURCE_PATH,
} from "./wire-names.ts";

// The objects generated for a protected PVC, as the README's "How the pieces fit" lists them.
// No ownerReferences (children must survive a PVC delete-and-recreate; the sweeper removes
// orphans) and none of the PVC's labels (ArgoCD's tracking label would make ArgoCD prune them).

export type ObjectMeta = {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
};

export type SecretObject = {
  apiVersion: "v1";
  kind: "Secret";
  metadata: ObjectMeta;
  type: "Opaque";
  /** Base64 values, copied as they are from the source Secret. */
  data: Record<string, string>;
};

export type KopiaMoverVolume = {
  mountPath: string;
  volumeSource: { nfs: { server: string; path: string; readOnly?: boolean } };
};

export type ReplicationDestinationObject = {
  apiVersion: typeof VOLSYNC_API_VERSION;
  kind: typeof KIND_REPLICATION_DESTINATION;
  metadata: ObjectMeta;
  spec: {
    trigger: { manual: string };
    paused: boolean;
    kopia: Record<string, unknown>;
  };
};

export type ReplicationSourceObject = {
  apiVersion: typeof VOLSYNC_API_VERSION;
  kind: typeof KIND_REPLICATION_SOURCE;
  metadata: ObjectMeta;
  spec: {
    sourcePVC: string;
    trigger: { schedule: string };
    kopia: Record<string, unknown>;
  };
};

/** What a ReplicationDestination activated for a restore must carry so the mover takes the chosen snapshot. */
export type RestoreTarget = {
  point: RestorePoint;
  snapshotId: string;
  snapshotStats?: PinnedSnapshotStats;
  source: RestoreSource;
};

/** What generation needs to know about one protected PVC. */
export type BackupTarget = {
  pvcName: string;
  namespace: string;
  names: GeneratedNames;
  /** The identity backups are written under: explicit on the RS, and on the RD unless it restores from another. */
  identity: KopiaIdentity;
  accessMode: string;
  /** `spec.resources.requests.storage`, when the PVC has one. */
  capacity?: string;
  /** Set when the RD is activated for a restore. */
  restore?: RestoreTarget;
};

export function backupTargetOf(pvc: PersistentVolumeClaim, pvcName: string, namespace: string, restore?: RestoreTarget): BackupTarget {
  const storage = pvc.spec?.resources?.requests?.["storage"];
  const names = generatedNames(pvcName);
  return {
    pvcName,
    namespace,
    names,
    identity: backupIdentity(names.replicationDestination, namespace).written,
    accessMode: pvc.spec?.accessModes?.[0] ?? "ReadWriteOnce",
    ...(storage === undefined ? {} : { capacity: String(storage) }),
    ...(restore === undefined ? {} : { restore }),
  };
}

/** The restore a `restore` decision asks the RD for; undefined for any other answer. */
export function restoreTargetOf(decision: RestoreDecision, source: RestoreSource | undefined): RestoreTarget | undefined {
  if (decision.answer !== "restore" || source === undefined) return undefined;
  const summary = decision.snapshot.summary;
  const snapshotStats: PinnedSnapshotStats | undefined =
    summary === undefined ? undefined : { fileCount: summary.files, dirCount: summary.dirs, totalSize: summary.size, symlinkCount: summary.symlinks };
  return { point: decision.restorePoint, snapshotId: decision.snapshot.id, ...(snapshotStats === undefined ? {} : { snapshotStats }), source };
}

/**
 * The restore a live RD was activated for, read back from what admission wrote, so that repairs
 * keep it: the reconciler has no catalog answer, and replacing the pinned point or the identity
 * of an RD whose mover has not run yet would restore something else.
 */
export function restoreTargetOfDestination(live: { metadata: { annotations?: Record<string, string> }; spec?: unknown }): RestoreTarget | undefined {
  const snapshotId = live.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT_ID];
  const kopia = (live.spec as { kopia?: Record<string, unknown> } | undefined)?.kopia;
  if (snapshotId === undefined || typeof kopia?.["restoreAsOf"] !== "string") return undefined;
  const previous = typeof kopia["previous"] === "number" ? kopia["previous"] : 0;
  const { username, hostname } = kopia;
  const source: RestoreSource =
    typeof username === "string" && typeof hostname === "string"
      ? { identity: { username, hostname, path: KOPIA_SOURCE_PATH, key: `${username}@${hostname}:${KOPIA_SOURCE_PATH}` }, fields: "explicit" }
      : { identity: { username: "", hostname: "", path: KOPIA_SOURCE_PATH, key: "" }, fields: "automatic" };
  const parsed = parsePinnedSnapshotStats(live.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT_STATS]);
  const snapshotStats = parsed.ok ? parsed.stats : undefined;
  return { point: { restoreAsOf: kopia["restoreAsOf"], previous }, snapshotId, ...(snapshotStats === undefined ? {} : { snapshotStats }), source };
}

/** The labels and annotations that mark an object as ours and name its PVC. */
export function generatedObjectMeta(target: BackupTarget, name: string): ObjectMeta {
  const meta: ObjectMeta = {
    name,
    namespace: target.namespace,
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY_GUARDIAN, [LABEL_PVC]: target.names.pvcLabelValue },
  };
  if (target.names.pvcNameAnnotation !== undefined) meta.annotations = { [ANNOTATION_PVC_NAME]: target.names.pvcNameAnnotation };
  return meta;
}

export function desiredSecret(target: BackupTarget, sourceData: Readonly<Record<string, string>>): SecretObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: generatedObjectMeta(target, target.names.secret),
    type: "Opaque",
    data: { ...sourceData },
  };
}

function moverVolumes(policy: Pick<Policy, "nfs">): { moverVolumes?: KopiaMoverVolume[] } {
  if (!policy.nfs) return {};
  return {
    moverVolumes: [{ mountPath: policy.nfs.mountPath, volumeSource: { nfs: { server: policy.nfs.server, path: policy.nfs.path } } }],
  };
}

function sharedKopiaFields(target: BackupTarget, policy: Pick<Policy, "resources" | "nfs">) {
  const { resources } = policy;
  return {
    repository: target.names.secret,
    copyMethod: resources.copyMethod,
    storageClassName: resources.storageClassName,
    volumeSnapshotClassName: resources.volumeSnapshotClassName,
    cacheCapacity: resources.cacheCapacity,
    moverSecurityContext: { ...resources.moverSecurityContext },
    ...moverVolumes(policy),
  };
}

function identityFields(identity: KopiaIdentity): { username: string; hostname: string } {
  return { username: identity.username, hostname: identity.hostname };
}

/** The RD's identity and restore point: its own identity, or where its restore reads from. */
function destinationRestoreFields(target: BackupTarget): Record<string, unknown> {
  const restore = target.restore;
  if (restore === undefined) return identityFields(target.identity);
  return {
    // Without both fields VolSync derives the identity from the RD's name: the automatic one.
    ...(restore.source.fields === "explicit" ? identityFields(restore.source.identity) : {}),
    restoreAsOf: restore.point.restoreAsOf,
    ...(restore.point.previous > 0 ? { previous: restore.point.previous } : {}),
  };
}

function destinationMeta(target: BackupTarget): ObjectMeta {
  const meta = generatedObjectMeta(target, target.names.replicationDestination);
  const restore = target.restore;
  if (restore === undefined) return meta;
  meta.annotations = {
    ...meta.annotations,
    [ANNOTATION_RESTORE_SNAPSHOT_ID]: restore.snapshotId,
    ...(restore.snapshotStats === undefined ? {} : { [ANNOTATION_RESTORE_SNAPSHOT_STATS]: formatPinnedSnapshotStats(restore.snapshotStats) }),
  };
  return meta;
}

/**
 * `paused` is true on the fresh path: no restore Job and no full-size temporary PVC for a volume
 * that has nothing to restore; unpausing it restores on demand.
 */
export function desiredReplicationDestination(
  target: BackupTarget,
  policy: Pick<Policy, "resources" | "nfs">,
  options: { paused: boolean },
): ReplicationDestinationObject {
  return {
    apiVersion: VOLSYNC_API_VERSION,
    kind: KIND_REPLICATION_DESTINATION,
    metadata: destinationMeta(target),
    spec: {
      trigger: { manual: RESTORE_ONCE_TRIGGER },
      paused: options.paused,
      kopia: {
        ...sharedKopiaFields(target, policy),
        ...destinationRestoreFields(target),
        accessModes: [target.accessMode],
        ...(target.capacity === undefined ? {} : { capacity: target.capacity }),
      },
    },
  };
}

export function desiredReplicationSource(
  target: BackupTarget,
  policy: Pick<Policy, "resources" | "nfs">,
  backup: { schedule: string; retain: Retention },
): ReplicationSourceObject {
  return {
    apiVersion: VOLSYNC_API_VERSION,
    kind: KIND_REPLICATION_SOURCE,
    metadata: generatedObjectMeta(target, target.names.replicationSource),
    spec: {
      sourcePVC: target.pvcName,
      trigger: { schedule: backup.schedule },
      kopia: {
        ...sharedKopiaFields(target, policy),
        ...identityFields(target.identity),
        compression: policy.resources.compression,
        parallelism: policy.resources.parallelism,
        retain: { ...backup.retain },
      },
    },
  };
}

/**
 * Whether a Bound PVC has waited long enough for its first backup. VolSync starts the first sync
 * as soon as a ReplicationSource exists; too early, it backs up an empty or half-restored volume
 * over good history. Derived from the PVC, so the wait survives restarts.
 */
export function isDueForFirstBackup(boundAtMs: number | undefined, nowMs: number, firstBackupDelayMs: number): boolean {
  return boundAtMs !== undefined && nowMs - boundAtMs >= firstBackupDelayMs;
}
