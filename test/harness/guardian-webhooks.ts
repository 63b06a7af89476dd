// The shipped webhook configurations, registered on a test API server with each webhook pointed
// at a pvc-guardian process on loopback by URL, trusting the test CA: how end-to-end suites make
// the real API server call the real server.

import { setTimeout as sleep } from "node:timers/promises";
import { findObject, manifestsDir, readObjects } from "../support/manifest-files.ts";
import { requestJson, type ClusterAccess } from "./kube-objects.ts";

type Webhook = { name: string; clientConfig: Record<string, unknown> };
type WebhookConfiguration = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; webhooks: Webhook[] };

export async function registerGuardianWebhooks(cluster: ClusterAccess, port: number, caPem: string): Promise<void> {
  const objects = readObjects(manifestsDir);
  for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
    const shipped = findObject<WebhookConfiguration>(objects, kind, "pvc-guardian");
    const configuration = structuredClone(shipped);
    delete configuration.metadata.annotations;
    for (const webhook of configuration.webhooks) {
      const service = webhook.clientConfig["service"] as { path: string };
      webhook.clientConfig = { url: `https://127.0.0.1:${port}${service.path}`, caBundle: Buffer.from(caPem).toString("base64") };
    }
    const plural = kind === "MutatingWebhookConfiguration" ? "mutatingwebhookconfigurations" : "validatingwebhookconfigurations";
    const applied = await requestJson(cluster, "PATCH", `/apis/admissionregistration.k8s.io/v1/${plural}/pvc-guardian?fieldManager=tests&force=true`, {
      body: configuration,
      contentType: "application/apply-patch+yaml",
    });
    if (applied.status !== 200 && applied.status !== 201) throw new Error(`registering ${kind}: ${applied.status} ${JSON.stringify(applied.body)}`);
  }
  // The API server picks webhook configurations up asynchronously.
  await sleep(1_500);
}

/**
 * The environment of a pvc-guardian process serving a test API server on loopback: the policy
 * file, serving certificate, repository and kubeconfig given, free ports, its own namespace.
 */
export function guardianTestEnvironment(options: {
  policyFile: string;
  serving: { certPath: string; keyPath: string };
  repository: { rootPath: string; passwordFile: string };
  kubeconfigPath: string;
  podName: string;
}): Record<string, string> {
  return {
    PVC_GUARDIAN_POLICY_FILE: options.policyFile,
    PVC_GUARDIAN_TLS_CERT_FILE: options.serving.certPath,
    PVC_GUARDIAN_TLS_KEY_FILE: options.serving.keyPath,
    PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
    PVC_GUARDIAN_PORT: "0",
    PVC_GUARDIAN_OPS_PORT: "0",
    PVC_GUARDIAN_NAMESPACE: "pvc-guardian",
    PVC_GUARDIAN_POD_NAME: options.podName,
    PVC_GUARDIAN_REPOSITORY_PATH: options.repository.rootPath,
    PVC_GUARDIAN_PASSWORD_FILE: options.repository.passwordFile,
    PVC_GUARDIAN_KUBERNETES: "kubeconfig",
    PVC_GUARDIAN_KUBECONFIG: options.kubeconfigPath,
  };
}
