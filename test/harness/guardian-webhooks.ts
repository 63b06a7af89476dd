// The shipped webhook configurations, registered on a test API server with each webhook pointed
// at a pvc-guardian process on loopback by URL, trusting the test CA: how end-to-end suites make
// the real API server call the real server.

import { setTimeout as sleep } from 'node:timers/promises';
import { findObject, manifestsDir, readObjects } from '../unit/manifests/manifest-files.ts';
import { requestJson, type ClusterAccess } from './kube-objects.ts';

type Webhook = { name: string; clientConfig: Record<string, unknown> };
type WebhookConfiguration = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; webhooks: Webhook[] };

export async function registerGuardianWebhooks(cluster: ClusterAccess, port: number, caPem: string): Promise<void> {
  const objects = readObjects(manifestsDir);
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    const shipped = findObject<WebhookConfiguration>(objects, kind, 'pvc-guardian');
    const configuration = structuredClone(shipped);
    delete configuration.metadata.annotations;
    for (const webhook of configuration.webhooks) {
      const service = webhook.clientConfig['service'] as { path: string };
      webhook.clientConfig = { url: `https://127.0.0.1:${port}${service.path}`, caBundle: Buffer.from(caPem).toString('base64') };
    }
    const plural = kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations';
    const applied = await requestJson(cluster, 'PATCH', `/apis/admissionregistration.k8s.io/v1/${plural}/pvc-guardian?fieldManager=tests&force=true`, {
      body: configuration,
      contentType: 'application/apply-patch+yaml',
    });
    if (applied.status !== 200 && applied.status !== 201) throw new Error(`registering ${kind}: ${applied.status} ${JSON.stringify(applied.body)}`);
  }
  // The API server picks webhook configurations up asynchronously.
  await sleep(1_500);
}
