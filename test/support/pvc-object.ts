// A PersistentVolumeClaim as a client would create it, for tests that store PVCs or hand them to
// the reconciler and the admission generator.

import type { KubeObject } from "../../webhook/kube/kube-objects.ts";
import type { PersistentVolumeClaim } from "../../webhook/domain/pvc.ts";

export function pvcObject(
  namespace: string,
  name: string,
  labels: Record<string, string> = { backup: "hourly" },
  annotations?: Record<string, string>,
): KubeObject & PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace, labels, ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  } as KubeObject & PersistentVolumeClaim;
}
