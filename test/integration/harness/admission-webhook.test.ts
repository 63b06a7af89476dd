import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { AdmissionregistrationV1Api, CoreV1Api, type V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority } from "../../../certs/pki.ts";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { apiErrorMessage, createNamespace } from "../../harness/kube-objects.ts";
import { eventually } from "../../support/eventually.ts";

type AdmissionReview = {
  apiVersion: string;
  kind: string;
  request: { uid: string; operation: string; kind: { kind: string }; namespace: string; object: V1PersistentVolumeClaim };
};

const denialMessage = 'PersistentVolumeClaim "deny-me" is blocked by the harness test webhook: its name asks for a denial. Rename it to create it.';

function pvc(name: string): V1PersistentVolumeClaim {
  return { metadata: { name }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } };
}

/** A real HTTPS admission endpoint: denies PVCs named deny-me, allows the rest, records each review. */
async function startWebhookServer(certDir: string, ca: CertificateAuthority): Promise<{ server: Server; port: number; reviews: AdmissionReview[] }> {
  const serving = await issueServerCertificate(ca, certDir, { commonName: "harness-webhook", ipAddresses: ["127.0.0.1"] });
  const reviews: AdmissionReview[] = [];
  const server = createServer({ cert: await readFile(serving.certPath), key: await readFile(serving.keyPath) }, (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      const review = JSON.parse(body) as AdmissionReview;
      reviews.push(review);
      const denied = review.request.object.metadata?.name === "deny-me";
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: {
            uid: review.request.uid,
            allowed: !denied,
            ...(denied ? { status: { code: 403, reason: "Forbidden", message: denialMessage } } : {}),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { server, port: address.port, reviews };
}

describe("admission webhooks called by the real apiserver", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;
  let certDir: string;
  let webhook: Awaited<ReturnType<typeof startWebhookServer>>;
  let webhookCa: CertificateAuthority;
  let unrelatedCa: CertificateAuthority;

  before(async () => {
    certDir = await mkdtemp(path.join(tmpdir(), "webhook-certs-"));
    webhookCa = await createCertificateAuthority(path.join(certDir, "ca"), { commonName: "webhook CA" });
    unrelatedCa = await createCertificateAuthority(path.join(certDir, "unrelated"), { commonName: "unrelated CA" });
    webhook = await startWebhookServer(path.join(certDir, "serving"), webhookCa);
    cluster = await startTestCluster();
  });

  after(async () => {
    await cluster?.stop();
    await new Promise<void>((resolve) => (webhook ? webhook.server.close(() => resolve()) : resolve()));
    await rm(certDir, { recursive: true, force: true });
  });

  /** Registers a webhook for PVC creates in namespaces labelled for it, trusting `ca`. */
  async function registerWebhook(name: string, ca: CertificateAuthority, selectorValue: string): Promise<void> {
    const admission = cluster.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name },
        webhooks: [
          {
            name: `${name}.harness.test`,
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Fail",
            timeoutSeconds: 5,
            clientConfig: { url: `https://127.0.0.1:${webhook.port}/validate-pvc`, caBundle: Buffer.from(ca.certPem).toString("base64") },
            namespaceSelector: { matchLabels: { "harness-webhook": selectorValue } },
            rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["persistentvolumeclaims"], scope: "Namespaced" }],
          },
        ],
      },
    });
  }

  /**
   * The apiserver learns about new webhook configurations from an informer; a dry-run create
   * (webhooks with sideEffects None are called for dry runs) shows when it has.
   */
  async function createPvcOnceWebhookActive(namespace: string, probe: (message: string | undefined) => boolean): Promise<string | undefined> {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    let last: string | undefined;
    const answer = await eventually(
      () => `the webhook to take effect; last answer: ${last ?? "allowed"}`,
      async () => {
        try {
          await core.createNamespacedPersistentVolumeClaim({ namespace, body: pvc("deny-me"), dryRun: "All" });
          last = undefined;
        } catch (error) {
          last = apiErrorMessage(error);
        }
        return probe(last) ? { message: last } : undefined;
      },
      { timeoutMs: 15_000 },
    );
    return answer.message;
  }

  it("calls the webhook over verified TLS on PVC create, and its denial reaches the client", async () => {
    await registerWebhook("pvc-denier", webhookCa, "trusted");
    const namespace = await createNamespace(cluster, undefined, { "harness-webhook": "trusted" });
    await createPvcOnceWebhookActive(namespace, (message) => message !== undefined);

    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const reviewsBefore = webhook.reviews.length;
    const rejection = await core.createNamespacedPersistentVolumeClaim({ namespace, body: pvc("deny-me") }).then(
      () => assert.fail("the apiserver created a PVC the webhook denied"),
      (error: unknown) => apiErrorMessage(error),
    );
    assert.equal(rejection, `admission webhook "pvc-denier.harness.test" denied the request: ${denialMessage}`);

    const created = await core.createNamespacedPersistentVolumeClaim({ namespace, body: pvc("allowed") });
    assert.ok(created.metadata?.uid);

    const seen = webhook.reviews.slice(reviewsBefore);
    assert.deepEqual(
      seen.map((r) => [r.request.operation, r.request.kind.kind, r.request.namespace, r.request.object.metadata?.name]),
      [
        ["CREATE", "PersistentVolumeClaim", namespace, "deny-me"],
        ["CREATE", "PersistentVolumeClaim", namespace, "allowed"],
      ],
    );
    await assert.rejects(core.readNamespacedPersistentVolumeClaim({ name: "deny-me", namespace }), (error: unknown) => {
      assert.match(apiErrorMessage(error), /not found/);
      return true;
    });
  });

  it("refuses the webhook when its caBundle names a different CA (failurePolicy Fail)", async () => {
    await registerWebhook("pvc-untrusted", unrelatedCa, "untrusted");
    const namespace = await createNamespace(cluster, undefined, { "harness-webhook": "untrusted" });
    const reviewsBefore = webhook.reviews.length;
    const message = await createPvcOnceWebhookActive(namespace, (m) => m !== undefined && m.includes("failed calling webhook"));
    assert.match(message ?? "", /failed calling webhook "pvc-untrusted\.harness\.test".*x509: certificate signed by unknown authority/);
    // The TLS handshake failed before any review was sent.
    assert.equal(webhook.reviews.length, reviewsBefore);
  });
});
