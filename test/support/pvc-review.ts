// A PVC CREATE AdmissionReview as the API server sends it, for tests that post reviews over the
// wire or hand them to the handlers. Fixture files in test/fixtures/admission/ cover the full
// catalogue of cases; this builds the common one with a chosen name, namespace, labels and spec,
// or around a PVC object the test already has.

export type PvcReviewOptions = {
  uid: string;
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec?: Record<string, unknown>;
  dryRun?: boolean;
};

export function pvcCreateReview(options: PvcReviewOptions): Record<string, unknown> {
  const name = options.name ?? "data";
  const namespace = options.namespace ?? "media";
  const object = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace, labels: options.labels ?? { backup: "hourly" }, ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } }, storageClassName: "longhorn", ...options.spec },
  };
  return pvcCreateReviewOf(object, { uid: options.uid, dryRun: options.dryRun ?? false });
}

/** The CREATE review of `pvc` (its name and namespace from its metadata), sent by a GitOps controller. */
export function pvcCreateReviewOf(
  pvc: { metadata?: { name?: string; namespace?: string } },
  options: { uid: string; dryRun?: boolean },
): Record<string, unknown> {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid,
      kind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      resource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      name: pvc.metadata?.name,
      namespace: pvc.metadata?.namespace,
      operation: "CREATE",
      dryRun: options.dryRun ?? false,
      userInfo: { username: "system:serviceaccount:flux-system:kustomize-controller" },
      object: pvc,
    },
  };
}
