import { kopiaIdentity } from "./kopia-identity.ts";
import type { Policy, Retention } from "./policy.ts";
import type { PersistentVolumeClaim } from "./pvc.ts";
import { generatedNames, type GeneratedNames } from "./resource-names.ts";
import {
  ANNOTATION_PVC_NAME,
  LABEL_MANAGED_BY,
  LABEL_PVC,
  MANAGED_BY_GUARDIAN,
  RESTORE_ONCE_TRIGGER,
  VOLSYNC_API_VERSION,
  KIND_REPLICATION_DESTINATION,
  KIND_REPLICATION_SOURCE,
} from "./wire-names.ts";

// The objects generated for a protected PVC, exactly as product.md section 3 describes them.
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

/** What generation needs to know about one protected PVC. */
export type BackupTarget = {
  pvcName: string;
  namespace: string;
  names: GeneratedNames;
  accessMode: string;
  /** `spec.resources.requests.storage`, when the PVC has one. */
  capacity?: string;
  restoreAsOf?: string;
};

export function backupTargetOf(pvc: PersistentVolumeClaim, pvcName: string, namespace: string, restoreAsOf?: string): BackupTarget {
  const storage = pvc.spec?.resources?.requests?.["storage"];
  return {
    pvcName,
    namespace,
    names: generatedNames(pvcName),
    accessMode: pvc.spec?.accessModes?.[0] ?? "ReadWriteOnce",
    ...(storage === undefined ? {} : { capacity: String(storage) }),
    ...(restoreAsOf === undefined ? {} : { restoreAsOf }),
  };
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
  const identity = kopiaIdentity(target.names.replicationDestination, target.namespace);
  return {
    repository: target.names.secret,
    copyMethod: resources.copyMethod,
    storageClassName: resources.storageClassName,
    volumeSnapshotClassName: resources.volumeSnapshotClassName,
    cacheCapacity: resources.cacheCapacity,
    moverSecurityContext: { ...resources.moverSecurityContext },
    username: identity.username,
    hostname: identity.hostname,
    ...moverVolumes(policy),
  };
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
    metadata: generatedObjectMeta(target, target.names.replicationDestination),
    spec: {
      trigger: { manual: RESTORE_ONCE_TRIGGER },
      paused: options.paused,
      kopia: {
        ...sharedKopiaFields(target, policy),
        accessModes: [target.accessMode],
        ...(target.capacity === undefined ? {} : { capacity: target.capacity }),
        ...(target.restoreAsOf === undefined ? {} : { restoreAsOf: target.restoreAsOf }),
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
