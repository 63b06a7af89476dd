import { KIND_REPLICATION_DESTINATION, KIND_REPLICATION_SOURCE, VOLSYNC_API_VERSION } from "../domain/wire-names.ts";

// The port the reconciler, the sweeper, leader election and the admission generator depend on:
// a handful of verbs over plain JSON objects. The real implementation (kube-client.ts) talks to
// the API server; unit tests use a small in-memory one with the same semantics that matter here
// (resourceVersions, uids, label selectors, delete preconditions, field ownership on apply).

export type ObjectMetadata = {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  managedFields?: ManagedFieldsEntry[];
  [field: string]: unknown;
};

export type ManagedFieldsEntry = {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
  time?: string;
};

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: ObjectMetadata;
  [field: string]: unknown;
};

/**
 * `object` as a list keeps it: only the managedFields entries written by `fieldManager`. Nothing
 * here reads another manager's entries (drift-plan.ts looks at ours alone), and on a cluster of
 * thousands of PVCs the other managers' entries are a large part of what a reconcile pass holds.
 */
export function withOwnManagedFields(object: KubeObject, fieldManager: string): KubeObject {
  const entries = object.metadata.managedFields;
  if (entries === undefined) return object;
  const own = entries.filter((entry) => entry.manager === fieldManager);
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata: own.length > 0 ? { ...metadata, managedFields: own } : metadata };
}

/** Where a kind lives on the API server. */
export type ResourceKind = {
  apiVersion: string;
  kind: string;
  /** The lowercase plural in the URL path. */
  plural: string;
  namespaced: boolean;
};

export const PERSISTENT_VOLUME_CLAIMS: ResourceKind = { apiVersion: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true };
export const SECRETS: ResourceKind = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };
export const CONFIG_MAPS: ResourceKind = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };
export const REPLICATION_SOURCES: ResourceKind = {
  apiVersion: VOLSYNC_API_VERSION,
  kind: KIND_REPLICATION_SOURCE,
  plural: "replicationsources",
  namespaced: true,
};
export const REPLICATION_DESTINATIONS: ResourceKind = {
  apiVersion: VOLSYNC_API_VERSION,
  kind: KIND_REPLICATION_DESTINATION,
  plural: "replicationdestinations",
  namespaced: true,
};
export const LEASES: ResourceKind = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true };
export const EVENTS: ResourceKind = { apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true };
/** Read only: namespace labels choose a namespace's repository when the policy selects by them. */
export const NAMESPACES: ResourceKind = { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false };
/** Read only: which VolSync features the installed CRDs carry. */
export const CUSTOM_RESOURCE_DEFINITIONS: ResourceKind = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  plural: "customresourcedefinitions",
  namespaced: false,
};

export function resourceKindOf(object: Pick<KubeObject, "apiVersion" | "kind">): ResourceKind {
  for (const kind of [PERSISTENT_VOLUME_CLAIMS, SECRETS, CONFIG_MAPS, REPLICATION_SOURCES, REPLICATION_DESTINATIONS, LEASES, EVENTS]) {
    if (kind.apiVersion === object.apiVersion && kind.kind === object.kind) return kind;
  }
  throw new Error(`unsupported kind ${object.apiVersion}/${object.kind}`);
}

/** A failed API call, with the HTTP status (0 when no answer came back) and the Status reason. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof KubeApiError && error.status === 404;
export const isAlreadyExists = (error: unknown): boolean => error instanceof KubeApiError && error.status === 409 && error.reason === "AlreadyExists";
export const isConflict = (error: unknown): boolean => error instanceof KubeApiError && error.status === 409;

export type ListOptions = {
  /** Omit for every namespace. */
  namespace?: string;
  labelSelector?: string;
  /** e.g. `metadata.name=replicationsources.volsync.backube`, to list or watch one object. */
  fieldSelector?: string;
  /** Items per page; pages are followed with `continue` until the list is whole. */
  pageSize?: number;
};

/**
 * A list is only trusted when every page arrived: `complete: false` carries whatever came back
 * and the reason, so a caller that deletes things can refuse to act on a partial view.
 */
export type ListResult = { complete: true; items: KubeObject[]; resourceVersion: string } | { complete: false; items: KubeObject[]; error: string };

export type DeletePreconditions = { uid: string; resourceVersion?: string };

export type DeleteOutcome =
  | "deleted"
  /** Already gone: nothing to do. */
  | "not-found"
  /** The object was replaced or changed since it was read: left alone. */
  | "precondition-failed";

export type WatchEvent = { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; object: KubeObject };

export type WatchOptions = ListOptions & { resourceVersion?: string };

export interface KubeObjects {
  /** The object, or undefined when it does not exist. */
  get(kind: ResourceKind, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<KubeObject | undefined>;
  list(kind: ResourceKind, options: ListOptions, signal?: AbortSignal): Promise<ListResult>;
  /** POST: fails with AlreadyExists (409) when the name is taken, so it never takes over an object. */
  create(object: KubeObject, signal?: AbortSignal): Promise<KubeObject>;
  /** PUT with the object's resourceVersion: a Conflict (409) when it changed since it was read. */
  replace(object: KubeObject, signal?: AbortSignal): Promise<KubeObject>;
  /** Server-side apply with pvc-guardian's field manager; `force` takes the fields from others. */
  apply(object: KubeObject, options: { force: boolean }, signal?: AbortSignal): Promise<KubeObject>;
  /** Deletes only the object with this uid (and resourceVersion, when given). */
  delete(kind: ResourceKind, namespace: string | undefined, name: string, preconditions: DeletePreconditions, signal?: AbortSignal): Promise<DeleteOutcome>;
  /**
   * Streams changes until the signal aborts or the server ends the watch; resolves then (the
   * caller re-lists and re-watches). Rejects when the watch cannot start.
   */
  watch(kind: ResourceKind, options: WatchOptions, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
}
