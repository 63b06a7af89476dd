import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";

type OpenIdConfiguration = { issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[] };

describe("ServiceAccount tokens from the real apiserver", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;
  let namespace: string;
  let core: CoreV1Api;

  before(async () => {
    cluster = await startTestCluster();
    namespace = await createNamespace(cluster);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "pvc-guardian" } } });
  });

  after(async () => {
    await cluster?.stop();
  });

  async function requestToken(audiences?: string[]): Promise<string> {
    const response = await core.createNamespacedServiceAccountToken({
      name: "pvc-guardian",
      namespace,
      body: { spec: { expirationSeconds: 600, ...(audiences === undefined ? {} : { audiences }) } },
    });
    const token = response.status?.token;
    assert.ok(token, "TokenRequest returned no token");
    return token;
  }

  it("serves the OIDC discovery document and a JWKS that verifies TokenRequest tokens", async () => {
    const discovery = await requestJson<OpenIdConfiguration>(cluster, "GET", "/.well-known/openid-configuration");
    assert.equal(discovery.status, 200);
    assert.equal(discovery.body?.issuer, cluster.serviceAccountIssuer);
    // Without --service-account-jwks-uri the apiserver points at its own external address.
    assert.equal(discovery.body?.jwks_uri, `${cluster.server}/openid/v1/jwks`);
    assert.deepEqual(discovery.body?.id_token_signing_alg_values_supported, ["RS256"]);

    const jwks = await requestJson<JSONWebKeySet>(cluster, "GET", "/openid/v1/jwks", { accept: "application/jwk-set+json" });
    assert.equal(jwks.status, 200);
    assert.equal(jwks.body?.keys.length, 1);

    const token = await requestToken(["pvc-guardian"]);
    assert.equal(decodeProtectedHeader(token).kid, jwks.body?.keys[0]?.kid);
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks.body!), {
      issuer: cluster.serviceAccountIssuer,
      audience: "pvc-guardian",
    });
    assert.equal(payload.sub, `system:serviceaccount:${namespace}:pvc-guardian`);
    const claims = payload["kubernetes.io"] as { namespace: string; serviceaccount: { name: string } };
    assert.equal(claims.namespace, namespace);
    assert.equal(claims.serviceaccount.name, "pvc-guardian");
    assert.ok(payload.exp !== undefined && payload.iat !== undefined);
    assert.equal(payload.exp - payload.iat, 600);

    // One changed payload byte and the signature no longer matches.
    const [header, body, signature] = token.split(".");
    const tampered = `${header}.${body!.slice(0, -2)}${body!.at(-2) === "A" ? "B" : "A"}${body!.at(-1)}.${signature}`;
    await assert.rejects(jwtVerify(tampered, createLocalJWKSet(jwks.body!)), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
  });

  it("authenticates a default-audience token as the ServiceAccount, and refuses a foreign-audience one", async () => {
    const apiToken = await requestToken();
    const review = await requestJson<{ status: { userInfo: { username: string; groups: string[] } } }>(
      cluster,
      "POST",
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }, token: apiToken },
    );
    assert.equal(review.status, 201);
    assert.equal(review.body?.status.userInfo.username, `system:serviceaccount:${namespace}:pvc-guardian`);
    assert.ok(review.body?.status.userInfo.groups.includes("system:serviceaccounts"));

    // RBAC is on: the ServiceAccount has no grants beyond discovery.
    const forbidden = await requestJson(cluster, "GET", `/api/v1/namespaces/${namespace}/persistentvolumeclaims`, { token: apiToken });
    assert.equal(forbidden.status, 403);

    const foreign = await requestToken(["pvc-guardian"]);
    const refused = await requestJson(cluster, "GET", "/api", { token: foreign });
    assert.equal(refused.status, 401);
  });
});
