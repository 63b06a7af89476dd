// A PVC CREATE AdmissionReview as the API server sends it, for tests that post reviews over the
// wire. Fixture files in test/fixtures/admission/ cover the full catalogue of cases; this builds
// the common one with a chosen name, namespace, labels and spec.

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
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid,
      kind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      resource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      name,
      namespace,
      operation: "CREATE",
      dryRun: options.dryRun ?? false,
      userInfo: { username: "system:serviceaccount:flux-system:kustomize-controller" },
      object: {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name, namespace, labels: options.labels ?? { backup: "hourly" }, ...(options.annotations ? { annotations: options.annotations } : {}) },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } }, storageClassName: "longhorn", ...options.spec },
      },
    },
  };
}
