// The AdmissionReviews the benchmark sends: what the API server posts for `kubectl apply` of a
// protected PVC (label backup=hourly), with the last-applied annotation, managedFields and the
// user's groups, about 2.5 KB like the real thing.

const pvcManifest = {
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name: "postgres-data", namespace: "media", labels: { app: "postgres", backup: "hourly" } },
  spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "20Gi" } }, storageClassName: "longhorn" },
};

function pvcObject() {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: "postgres-data",
      namespace: "media",
      labels: { app: "postgres", backup: "hourly", "app.kubernetes.io/managed-by": "kustomize-controller" },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": `${JSON.stringify(pvcManifest)}\n` },
      managedFields: [
        {
          manager: "kustomize-controller",
          operation: "Apply",
          apiVersion: "v1",
          time: "2026-01-12T09:30:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": { "f:labels": { "f:app": {}, "f:backup": {}, "f:app.kubernetes.io/managed-by": {} } },
            "f:spec": { "f:accessModes": {}, "f:resources": { "f:requests": { "f:storage": {} } }, "f:storageClassName": {} },
          },
        },
      ],
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "20Gi" } },
      storageClassName: "longhorn",
      volumeMode: "Filesystem",
    },
    status: { phase: "Pending" },
  };
}

export function pvcCreateReview(uid: string) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      resource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      requestKind: { group: "", version: "v1", kind: "PersistentVolumeClaim" },
      requestResource: { group: "", version: "v1", resource: "persistentvolumeclaims" },
      name: "postgres-data",
      namespace: "media",
      operation: "CREATE",
      userInfo: {
        username: "system:serviceaccount:flux-system:kustomize-controller",
        uid: "0b7b7a4e-9f53-4b49-9d1c-3b0f2d7c5e11",
        groups: ["system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"],
      },
      object: pvcObject(),
      oldObject: null,
      dryRun: false,
      options: { kind: "CreateOptions", apiVersion: "meta.k8s.io/v1", fieldManager: "kustomize-controller" },
    },
  };
}
