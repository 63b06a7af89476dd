// What tests do to a test cluster's objects: namespaces, server-side apply, and the status and
// finalizer work a controller-manager would do in a real cluster (none runs here).

import { request as httpsRequest } from "node:https";
import { randomBytes } from "node:crypto";
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
  type V1Namespace,
  type V1PersistentVolumeClaim,
} from "@kubernetes/client-node";

/** The part of a TestCluster these helpers need. */
export interface ClusterAccess {
  server: string;
  caPem: string;
  adminToken: string;
  kubeConfig(): KubeConfig;
}

export const testFieldManager = "pvc-guardian-test";

export function createObjectApi(cluster: ClusterAccess): KubernetesObjectApi {
  return KubernetesObjectApi.makeApiClient(cluster.kubeConfig());
}

/**
 * Server-side apply as the test field manager, forcing ownership of conflicting fields.
 * Beware: for kinds client-node knows (core, apps, apiextensions...) it serializes through typed
 * models that drop keys with no model property (e.g. `x-kubernetes-*` in CRD schemas); custom
 * resources such as ReplicationSource pass through untouched.
 */
export async function applyObject<T extends KubernetesObject>(cluster: ClusterAccess, object: T): Promise<T> {
  const api = createObjectApi(cluster);
  // Apply needs no server-assigned fields; dropping them lets tests re-apply objects they read.
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = object.metadata ?? {};
  return api.patch({ ...object, metadata } as T, undefined, undefined, testFieldManager, true, PatchStrategy.ServerSideApply);
}

/** Creates a namespace; a unique `test-<random>` name unless one is given. Returns its name. */
export async function createNamespace(
  cluster: ClusterAccess,
  name: string = `test-${randomBytes(4).toString("hex")}`,
  labels: Record<string, string> = {},
): Promise<string> {
  const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await api.createNamespace({ body: { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } } });
  return name;
}

/**
 * Deletes a namespace and completes the deletion the namespace controller would have done, so the
 * name is gone at once. Objects inside stay in etcd (nothing deletes them here): give each test
 * its own namespace name rather than reusing one.
 */
export async function deleteNamespace(cluster: ClusterAccess, name: string): Promise<void> {
  const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
  try {
    await api.deleteNamespace({ name });
  } catch (error) {
    if (statusCodeOf(error) === 404) return;
    throw error;
  }
  const current = await readOrUndefined(() => api.readNamespace({ name }));
  if (current === undefined) return;
  const finalized: V1Namespace = { ...current, spec: { ...current.spec, finalizers: [] } };
  await readOrUndefined(() => api.replaceNamespaceFinalize({ name, body: finalized }));
}

/** Sets `status.phase` (Bound by default) through the status subresource, as the PV controller would. */
export async function setPvcPhase(
  cluster: ClusterAccess,
  namespace: string,
  name: string,
  phase: "Pending" | "Bound" | "Lost" = "Bound",
): Promise<V1PersistentVolumeClaim> {
  const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
  for (let attempt = 0; ; attempt++) {
    const pvc = await api.readNamespacedPersistentVolumeClaim({ name, namespace });
    const capacity = pvc.spec?.resources?.requests?.storage;
    const status = {
      ...pvc.status,
      phase,
      ...(phase === "Bound" ? { accessModes: pvc.spec?.accessModes, ...(capacity === undefined ? {} : { capacity: { storage: capacity } }) } : {}),
    };
    try {
      return await api.replaceNamespacedPersistentVolumeClaimStatus({ name, namespace, body: { ...pvc, status } });
    } catch (error) {
      if (statusCodeOf(error) !== 409 || attempt >= 5) throw error;
    }
  }
}

/**
 * Writes a ReplicationDestination's status through the status subresource as VolSync's controller
 * does when a mover finishes: `lastSyncTime` (now, to the second), `latestMoverStatus`, and any
 * other status fields given.
 */
export async function finishMover(
  cluster: ClusterAccess,
  namespace: string,
  name: string,
  latestMoverStatus: { result: string; logs?: string },
  otherStatus: Record<string, unknown> = {},
): Promise<void> {
  const apiPath = `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/replicationdestinations/${name}`;
  const live = await requestJson<Record<string, unknown>>(cluster, "GET", apiPath);
  if (live.status !== 200) throw new Error(`reading ReplicationDestination ${namespace}/${name}: HTTP ${live.status} ${JSON.stringify(live.body)}`);
  const status = { lastSyncTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"), ...otherStatus, latestMoverStatus };
  const written = await requestJson(cluster, "PUT", `${apiPath}/status`, { body: { ...live.body, status } });
  if (written.status !== 200) {
    throw new Error(`writing the status of ReplicationDestination ${namespace}/${name}: HTTP ${written.status} ${JSON.stringify(written.body)}`);
  }
}

/**
 * Deletes a PVC and removes its finalizers (kubernetes.io/pvc-protection, added at create by the
 * StorageObjectInUseProtection admission plugin), which the pvc-protection controller would lift
 * once no Pod uses the claim. Returns when the PVC is gone.
 */
export async function deletePvc(cluster: ClusterAccess, namespace: string, name: string): Promise<void> {
  const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
  try {
    await api.deleteNamespacedPersistentVolumeClaim({ name, namespace });
  } catch (error) {
    if (statusCodeOf(error) === 404) return;
    throw error;
  }
  const patched = await requestJson(cluster, "PATCH", `/api/v1/namespaces/${namespace}/persistentvolumeclaims/${name}`, {
    body: { metadata: { finalizers: null } },
    contentType: "application/merge-patch+json",
  });
  if (patched.status !== 200 && patched.status !== 404) {
    throw new Error(`removing finalizers of PVC ${namespace}/${name}: HTTP ${patched.status} ${JSON.stringify(patched.body)}`);
  }
}

export interface JsonResponse<T> {
  status: number;
  body: T | undefined;
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  /** Bearer token; the admin's by default, null for an anonymous request. */
  token?: string | null;
  /** Default application/json; /openid/v1/jwks answers only application/jwk-set+json. */
  accept?: string;
}

/** A request as the admin, for paths the typed clients do not cover (discovery, OIDC, subresources). */
export function requestJson<T = unknown>(
  cluster: Pick<ClusterAccess, "server" | "caPem" | "adminToken">,
  method: string,
  apiPath: string,
  options: RequestOptions = {},
): Promise<JsonResponse<T>> {
  const token = options.token === undefined ? cluster.adminToken : options.token;
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: options.accept ?? "application/json" };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) headers["content-type"] = options.contentType ?? "application/json";
    const req = httpsRequest(new URL(apiPath, cluster.server), { method, ca: cluster.caPem, headers, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        let parsed: T | undefined;
        try {
          parsed = text === "" ? undefined : (JSON.parse(text) as T);
        } catch {
          parsed = text as T;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${apiPath}: timeout`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** The HTTP status of a client-node ApiException, or undefined for other errors. */
export function statusCodeOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The Kubernetes Status message inside a client-node ApiException (what kubectl would print). */
export function apiErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    if (typeof body === "string") {
      try {
        const status = JSON.parse(body) as { message?: string };
        if (typeof status.message === "string") return status.message;
      } catch {
        return body;
      }
      return body;
    }
    if (typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string") {
      return (body as { message: string }).message;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

async function readOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (statusCodeOf(error) === 404) return undefined;
    throw error;
  }
}
