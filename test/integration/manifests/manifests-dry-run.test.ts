// `kustomize build manifests/` with the real, pinned kustomize, then every object through the real
// kube-apiserver with server-side dry-run, with VolSync's, the snapshot and cert-manager's CRDs
// installed: the schemas, RBAC rules, CEL matchConditions and webhook fields are checked by the
// code that will check them in a cluster.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { requireBinary, requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { manifestsDir } from "../../support/manifest-files.ts";

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [field: string]: unknown };
type ApiResource = { name: string; kind: string; namespaced: boolean };

function kustomizeBuild(dir: string): Promise<Manifest[]> {
  return new Promise((resolve, reject) => {
    execFile(requireBinary("kustomize"), ["build", dir], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`kustomize build ${dir} failed: ${stderr || error.message}`));
      resolve(
        parseAllDocuments(stdout)
          .map((d) => d.toJS() as Manifest)
          .filter((o) => o !== null),
      );
    });
  });
}

describe("the kustomize base on a real apiserver", { skip: requireOrSkip(["etcd", "kube-apiserver", "kustomize"]) }, () => {
  let cluster: TestCluster;
  let rendered: Manifest[];
  const resources = new Map<string, ApiResource>();

  /** The URL path of an object, from the apiserver's discovery (plural and scope). */
  async function objectPath(object: Manifest): Promise<string> {
    const key = `${object.apiVersion}/${object.kind}`;
    if (!resources.has(key)) {
      const groupPath = object.apiVersion.includes("/") ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
      const discovery = await requestJson<{ resources: ApiResource[] }>(cluster, "GET", groupPath);
      assert.equal(discovery.status, 200, `discovery of ${groupPath}`);
      for (const r of discovery.body!.resources) if (!r.name.includes("/")) resources.set(`${object.apiVersion}/${r.kind}`, r);
    }
    const resource = resources.get(key);
    assert.ok(resource, `the apiserver serves ${key}`);
    const base = object.apiVersion.includes("/") ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
    const scope = resource.namespaced ? `/namespaces/${object.metadata.namespace}` : "";
    return `${base}${scope}/${resource.name}/${object.metadata.name}`;
  }

  async function dryRunApply(object: Manifest): Promise<{ status: number; message?: string }> {
    const response = await requestJson<{ message?: string }>(
      cluster,
      "PATCH",
      `${await objectPath(object)}?dryRun=All&fieldManager=pvc-guardian-manifests-test&fieldValidation=Strict`,
      { body: object, contentType: "application/apply-patch+yaml" },
    );
    return { status: response.status, ...(response.body?.message === undefined ? {} : { message: response.body.message }) };
  }

  before(async () => {
    rendered = await kustomizeBuild(manifestsDir);
    cluster = await startTestCluster();
    const crds = await installCrds(cluster);
    assert.equal(crds.certManagerSkipReason, undefined, "cert-manager CRDs are installed");
    // Prerequisites an operator has before installing: VolSync's namespace (the source Secret's
    // Role lives there) and, since namespaced objects need an existing namespace even for a dry
    // run, pvc-guardian's own.
    await createNamespace(cluster, "volsync-system");
    await createNamespace(cluster, "pvc-guardian");
  });

  after(async () => {
    await cluster?.stop();
  });

  it("renders one object per concern, in the pvc-guardian namespace except cluster-scoped ones and the source Secret Role", () => {
    const kinds = rendered.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      "Certificate/pvc-guardian-ca",
      "Certificate/pvc-guardian-serving",
      "ClusterRole/pvc-guardian",
      "ClusterRoleBinding/pvc-guardian",
      "ConfigMap/pvc-guardian-policy",
      "Deployment/pvc-guardian",
      "Issuer/pvc-guardian-ca",
      "Issuer/pvc-guardian-selfsigned",
      "MutatingWebhookConfiguration/pvc-guardian",
      "Namespace/pvc-guardian",
      "NetworkPolicy/pvc-guardian",
      "PodDisruptionBudget/pvc-guardian",
      "Role/pvc-guardian",
      "Role/pvc-guardian-source-secret",
      "RoleBinding/pvc-guardian",
      "RoleBinding/pvc-guardian-source-secret",
      "Service/pvc-guardian",
      "ServiceAccount/pvc-guardian",
      "ValidatingWebhookConfiguration/pvc-guardian",
    ]);
    for (const object of rendered) {
      const labels = (object.metadata as { labels?: Record<string, string> }).labels;
      assert.equal(labels?.["app.kubernetes.io/part-of"], "pvc-guardian", `${object.kind}/${object.metadata.name} carries the part-of label`);
    }
  });

  it("has every object accepted by the apiserver with server-side dry-run and strict field validation", async () => {
    const refused: string[] = [];
    for (const object of rendered) {
      const result = await dryRunApply(object);
      if (result.status !== 200 && result.status !== 201) refused.push(`${object.kind}/${object.metadata.name}: HTTP ${result.status} ${result.message ?? ""}`);
    }
    assert.deepEqual(refused, []);
  });

  it("would refuse a webhook whose matchCondition does not compile, so the dry run checks the CEL", async () => {
    const validating = rendered.find((o) => o.kind === "ValidatingWebhookConfiguration")!;
    const broken = structuredClone(validating) as Manifest & { webhooks: { matchConditions: { name: string; expression: string }[] }[] };
    broken.webhooks[0]!.matchConditions[0]!.expression = "object.metadata.labels['backup'] in ";
    const result = await dryRunApply(broken);
    assert.equal(result.status, 422);
    assert.match(result.message ?? "", /matchConditions/);
  });

  it("builds with the monitoring component added by an overlay", async () => {
    const overlay = await mkdtemp(path.join(tmpdir(), "pvc-guardian-overlay-"));
    try {
      // kustomize only takes relative paths to bases and components.
      const base = path.relative(overlay, manifestsDir);
      await writeFile(
        path.join(overlay, "kustomization.yaml"),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${base}]\ncomponents: [${path.join(base, "components", "monitoring")}]\n`,
      );
      const withMonitoring = await kustomizeBuild(overlay);
      assert.equal(withMonitoring.length, rendered.length + 2);
      assert.deepEqual(
        withMonitoring
          .filter((o) => o.apiVersion === "monitoring.coreos.com/v1")
          .map((o) => o.kind)
          .sort(),
        ["PodMonitor", "PrometheusRule"],
      );
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });
});
