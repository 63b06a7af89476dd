import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { loadKubeCredentials } from "../../../webhook/kube/kube-credentials.ts";

type User = Record<string, unknown>;

function kubeconfig(
  user: User,
  cluster: Record<string, unknown> = { server: "https://127.0.0.1:6443/", "certificate-authority-data": Buffer.from("CA PEM").toString("base64") },
) {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "test",
    contexts: [
      { name: "other", context: { cluster: "other", user: "other" } },
      { name: "test", context: { cluster: "test", user: "test" } },
    ],
    clusters: [
      { name: "other", cluster: { server: "https://other.invalid" } },
      { name: "test", cluster },
    ],
    users: [
      { name: "other", user: { token: "other-token" } },
      { name: "test", user },
    ],
  });
}

describe("loadKubeCredentials", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-credentials-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeKubeconfig(name: string, user: User, cluster?: Record<string, unknown>): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, kubeconfig(user, cluster));
    return file;
  }

  it("reads the ServiceAccount token at each call and the cluster CA in a pod", async () => {
    const saDir = path.join(dir, "serviceaccount");
    await mkdir(saDir);
    await writeFile(path.join(saDir, "ca.crt"), "CLUSTER CA");
    await writeFile(path.join(saDir, "token"), "first-token\n");
    const credentials = loadKubeCredentials({ serviceAccountDir: saDir, env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" } });
    assert.equal(credentials.server, "https://10.96.0.1:443");
    const first = await credentials.current();
    assert.deepEqual(first.headers, { authorization: "Bearer first-token" });
    assert.equal(String(first.tls.ca), "CLUSTER CA");
    await writeFile(path.join(saDir, "token"), "rotated-token\n");
    assert.deepEqual((await credentials.current()).headers, { authorization: "Bearer rotated-token" });
  });

  it("brackets an IPv6 service host", async () => {
    const saDir = path.join(dir, "serviceaccount-v6");
    await mkdir(saDir);
    await writeFile(path.join(saDir, "ca.crt"), "CA");
    const credentials = loadKubeCredentials({ serviceAccountDir: saDir, env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" } });
    assert.equal(credentials.server, "https://[fd00::1]:443");
  });

  it("refuses to start in-cluster outside a cluster", () => {
    assert.throws(() => loadKubeCredentials({ serviceAccountDir: dir, env: {} }), /KUBERNETES_SERVICE_HOST/);
  });

  it("takes the current context's cluster and user token from a kubeconfig", async () => {
    const credentials = loadKubeCredentials({ kubeconfigPath: await writeKubeconfig("token.yaml", { token: "admin-token" }) });
    assert.equal(credentials.server, "https://127.0.0.1:6443");
    const current = await credentials.current();
    assert.deepEqual(current.headers, { authorization: "Bearer admin-token" });
    assert.equal(String(current.tls.ca), "CA PEM");
  });

  it("reads files named relative to the kubeconfig, and client certificates", async () => {
    await writeFile(path.join(dir, "token-file"), "file-token\n");
    await writeFile(path.join(dir, "ca.pem"), "CA FROM FILE");
    await writeFile(path.join(dir, "client.key"), "KEY");
    const file = await writeKubeconfig(
      "files.yaml",
      { tokenFile: "token-file", "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key": "client.key" },
      { server: "https://api.example:6443", "certificate-authority": "ca.pem", "tls-server-name": "kubernetes" },
    );
    const current = await loadKubeCredentials({ kubeconfigPath: file }).current();
    assert.deepEqual(current.headers, { authorization: "Bearer file-token" });
    assert.equal(String(current.tls.ca), "CA FROM FILE");
    assert.equal(String(current.tls.cert), "CERT");
    assert.equal(String(current.tls.key), "KEY");
    assert.equal(current.tls.servername, "kubernetes");
    assert.equal(current.tls.rejectUnauthorized, undefined);
  });

  it("sends basic auth and honours insecure-skip-tls-verify", async () => {
    const file = await writeKubeconfig("basic.yaml", { username: "u", password: "p" }, { server: "https://api.example", "insecure-skip-tls-verify": true });
    const current = await loadKubeCredentials({ kubeconfigPath: file }).current();
    assert.deepEqual(current.headers, { authorization: `Basic ${Buffer.from("u:p").toString("base64")}` });
    assert.equal(current.tls.rejectUnauthorized, false);
  });

  it("hands an exec-plugin user to @kubernetes/client-node", async () => {
    const plugin = path.join(dir, "exec-plugin.mjs");
    await writeFile(
      plugin,
      `process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "exec-token" } }));\n`,
    );
    const file = await writeKubeconfig("exec.yaml", {
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: [plugin], interactiveMode: "Never" },
    });
    const credentials = loadKubeCredentials({ kubeconfigPath: file });
    assert.equal(credentials.server, "https://127.0.0.1:6443");
    const current = await credentials.current();
    assert.equal(current.headers["Authorization"] ?? current.headers["authorization"], "Bearer exec-token");
    assert.equal(String(current.tls.ca), "CA PEM");
  });

  it("names what is missing in a kubeconfig without a current context", async () => {
    const file = path.join(dir, "empty.yaml");
    await writeFile(file, stringify({ apiVersion: "v1", kind: "Config", contexts: [], clusters: [], users: [] }));
    assert.throws(() => loadKubeCredentials({ kubeconfigPath: file }), /no current context/);
  });
});
