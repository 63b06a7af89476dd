// The audit's view of the cluster through the Kubernetes adapter's KubeObjects port: protected
// PVCs by label, and our generated objects by our managed-by label. Lists are whole or refused.

import { BACKUP_LABEL, LABEL_MANAGED_BY, MANAGED_BY_GUARDIAN } from "../domain/wire-names.ts";
import {
  PERSISTENT_VOLUME_CLAIMS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  SECRETS,
  type KubeObject,
  type KubeObjects,
  type ResourceKind,
} from "../kube/kube-objects.ts";
import type { InventoryObject } from "../domain/backup-audit.ts";
import type { AuditSource } from "./read-api-routes.ts";

function toInventoryObject(object: KubeObject): InventoryObject {
  const status = (object["status"] ?? {}) as { phase?: unknown; lastSyncTime?: unknown };
  const spec = (object["spec"] ?? {}) as { paused?: unknown };
  return {
    namespace: object.metadata.namespace ?? "",
    name: object.metadata.name,
    ...(object.metadata.labels ? { labels: object.metadata.labels } : {}),
    ...(object.metadata.annotations ? { annotations: object.metadata.annotations } : {}),
    ...(typeof status.phase === "string" ? { phase: status.phase } : {}),
    ...(typeof status.lastSyncTime === "string" ? { lastSyncTime: status.lastSyncTime } : {}),
    ...(typeof spec.paused === "boolean" ? { paused: spec.paused } : {}),
  };
}

export function createClusterAuditSource(objects: KubeObjects): AuditSource {
  async function listWhole(kind: ResourceKind, labelSelector: string, signal?: AbortSignal): Promise<InventoryObject[]> {
    const result = await objects.list(kind, { labelSelector }, signal);
    if (!result.complete) throw new Error(`listing ${kind.plural} was incomplete: ${result.error}`);
    // Secret values never leave this function: only names and labels are kept.
    return result.items.map(toInventoryObject);
  }
  const ours = `${LABEL_MANAGED_BY}=${MANAGED_BY_GUARDIAN}`;
  return {
    async inventory(signal) {
      const [pvcs, replicationSources, replicationDestinations, secrets] = await Promise.all([
        listWhole(PERSISTENT_VOLUME_CLAIMS, BACKUP_LABEL, signal),
        listWhole(REPLICATION_SOURCES, ours, signal),
        listWhole(REPLICATION_DESTINATIONS, ours, signal),
        listWhole(SECRETS, ours, signal),
      ]);
      return { pvcs, replicationSources, replicationDestinations, secrets };
    },
    async pvc(namespace, name, signal) {
      const object = await objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, name, signal);
      return object === undefined ? undefined : toInventoryObject(object);
    },
    async replicationDestination(namespace, name, signal) {
      const object = await objects.get(REPLICATION_DESTINATIONS, namespace, name, signal);
      // Someone else's RD of that name says nothing about our restores.
      if (object === undefined || object.metadata.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_GUARDIAN) return undefined;
      return toInventoryObject(object);
    },
  };
}
