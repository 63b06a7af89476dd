// A real cluster set up the way pvc-guardian's Kubernetes side expects it: VolSync's CRDs, the
// real adapter pointed at the API server, a system namespace holding the source Secret, and the
// policy that names them. One per test file, for the reconciler's and the adapter's suites.

import { startTestCluster, type TestCluster } from "./cluster.ts";
import { installCrds, type VolSyncCrdVersion } from "./crds.ts";
import { createNamespace } from "./kube-objects.ts";
import { createKubeClients, type KubeClients } from "../../webhook/kube/kube-client.ts";
import { kubeClientSettings } from "../support/default-settings.ts";
import type { KubeObjects } from "../../webhook/kube/kube-objects.ts";
import { DEFAULT_POLICY, type Policy } from "../../webhook/domain/policy.ts";

export type KubeEnvironment = {
  cluster: TestCluster;
  kube: KubeClients;
  /** Requests the adapter made so far. */
  requests: () => number;
  systemNamespace: string;
  policy: Policy;
  stop(): Promise<void>;
};

/** The source Secret's data: the repository credentials every generated Secret is cloned from. */
export const SOURCE_DATA = {
  KOPIA_PASSWORD: Buffer.from("correct horse").toString("base64"),
  KOPIA_REPOSITORY: Buffer.from("filesystem:///repo").toString("base64"),
};

const sourceSecretName = "kopia-credentials";

/** Writes the source Secret into `namespace` and returns the policy fields that point at it. */
export async function createSourceSecret(objects: KubeObjects, namespace: string): Promise<Pick<Policy, "sourceSecret" | "excludedNamespaces">> {
  await objects.create({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: sourceSecretName, namespace },
    type: "Opaque",
    data: SOURCE_DATA,
  });
  return { sourceSecret: { namespace, name: sourceSecretName }, excludedNamespaces: ["kube-system", namespace] };
}

export async function startKubeEnvironment(options: { volSyncVersion?: VolSyncCrdVersion } = {}): Promise<KubeEnvironment> {
  const cluster = await startTestCluster();
  try {
    await installCrds(cluster, { certManager: false, ...(options.volSyncVersion === undefined ? {} : { volSyncVersion: options.volSyncVersion }) });
    let count = 0;
    const kube = createKubeClients({ ...kubeClientSettings, kubeconfigPath: cluster.kubeconfigPath, onRequest: () => void count++ });
    const systemNamespace = await createNamespace(cluster);
    const policy: Policy = { ...DEFAULT_POLICY, ...(await createSourceSecret(kube.objects, systemNamespace)) };
    return {
      cluster,
      kube,
      requests: () => count,
      systemNamespace,
      policy,
      async stop() {
        kube.close();
        await cluster.stop();
      },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
