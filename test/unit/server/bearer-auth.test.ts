import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from "jose";
import { createBearerAuth, createServiceAccountTokenVerifier, type ServiceAccountKeySource, type TokenVerifier } from "../../../webhook/server/bearer-auth.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { signingKeyReadSettings } from "../../support/default-settings.ts";

const issuer = "https://kubernetes.default.svc.cluster.local";
const subject = "system:serviceaccount:ops:reader";

async function signingKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const sign = (claims: { aud?: string; sub?: string; iss?: string; expInSeconds?: number } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(claims.iss ?? issuer)
      .setSubject(claims.sub ?? subject)
      .setAudience(claims.aud ?? "pvc-guardian")
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.expInSeconds ?? 600))
      .sign(privateKey);
  return { jwk, sign };
}

function keySource(initial: JSONWebKeySet) {
  const state = { jwks: initial, fetches: 0 };
  const keys: ServiceAccountKeySource = {
    fetchIssuer: async () => issuer,
    fetchJwks: async () => {
      state.fetches++;
      return state.jwks;
    },
  };
  return { state, keys };
}

test("verifies a token of the cluster key, audience and issuer, and reads the keys once", async () => {
  const key = await signingKey("a");
  const { state, keys } = keySource({ keys: [key.jwk] });
  const verifier = createServiceAccountTokenVerifier({ ...signingKeyReadSettings, keys, audience: "pvc-guardian" });
  assert.deepEqual((await verifier.verify(await key.sign())).ok, true);
  assert.equal((await verifier.verify(await key.sign())).ok, true);
  assert.equal(state.fetches, 1);
});

test("refuses another issuer, another audience and an expired token, each with its reason", async () => {
  const key = await signingKey("a");
  const verifier = createServiceAccountTokenVerifier({ ...signingKeyReadSettings, keys: keySource({ keys: [key.jwk] }).keys, audience: "pvc-guardian" });
  assert.deepEqual(await verifier.verify(await key.sign({ iss: "https://elsewhere" })).then((r) => !r.ok && r.reason), "invalid");
  assert.deepEqual(await verifier.verify(await key.sign({ aud: "vault" })).then((r) => !r.ok && r.reason), "wrong-audience");
  assert.deepEqual(await verifier.verify(await key.sign({ expInSeconds: -120 })).then((r) => !r.ok && r.reason), "expired");
});

test("re-reads the keys on an unknown kid, but not more often than the minimum interval", async () => {
  const first = await signingKey("a");
  const second = await signingKey("b");
  const { state, keys } = keySource({ keys: [first.jwk] });
  const verifier = createServiceAccountTokenVerifier({ ...signingKeyReadSettings, keys, audience: "pvc-guardian", minRefreshIntervalMs: 60_000 });
  assert.equal((await verifier.verify(await first.sign())).ok, true);
  state.jwks = { keys: [second.jwk] };
  // Within the interval the unknown kid is refused without asking the API server again.
  const refused = await verifier.verify(await second.sign());
  assert.equal(refused.ok, false);
  assert.equal(state.fetches, 1);

  const eager = createServiceAccountTokenVerifier({ ...signingKeyReadSettings, keys, audience: "pvc-guardian", minRefreshIntervalMs: 0 });
  state.jwks = { keys: [first.jwk] };
  assert.equal((await eager.verify(await first.sign())).ok, true);
  state.jwks = { keys: [second.jwk] };
  assert.equal((await eager.verify(await second.sign())).ok, true);
  assert.equal(state.fetches, 3);
});

function appWith(verifier: TokenVerifier, allowed: string[]) {
  const app = new Hono<{ Variables: { caller: { subject: string } } }>();
  app.use("*", createBearerAuth({ verifier, allowedServiceAccounts: allowed }));
  app.get("/v1/x", (c) => c.json({ caller: c.get("caller").subject }));
  return app;
}

test("answers 401, 403, 503 and 200 with JSON bodies", async () => {
  const fixed = (result: Awaited<ReturnType<TokenVerifier["verify"]>>): TokenVerifier => ({ verify: async () => result });
  const ok = fixed({ ok: true, subject, expiresAtMs: undefined });
  const noToken = await appWith(ok, [subject]).request("/v1/x");
  assert.equal(noToken.status, 401);
  assert.equal(((await noToken.json()) as { reason: string }).reason, "missing-token");
  const basic = await appWith(ok, [subject]).request("/v1/x", { headers: { authorization: "Basic abc" } });
  assert.equal(basic.status, 401);
  const allowed = await appWith(ok, [subject]).request("/v1/x", { headers: { authorization: "Bearer t" } });
  assert.deepEqual(await allowed.json(), { caller: subject });
  const forbidden = await appWith(ok, ["system:serviceaccount:ops:other"]).request("/v1/x", { headers: { authorization: "Bearer t" } });
  assert.equal(forbidden.status, 403);
  const expired = await appWith(fixed({ ok: false, reason: "expired", message: "the token has expired" }), [subject]).request("/v1/x", {
    headers: { authorization: "Bearer t" },
  });
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  const unverifiable = await appWith(fixed({ ok: false, reason: "unverifiable", message: "keys unreadable" }), [subject]).request("/v1/x", {
    headers: { authorization: "Bearer t" },
  });
  assert.equal(unverifiable.status, 503);
});

test("backs off after a failed key read: one read in flight, then 1 s, 2 s, 4 s … up to the maximum, with jitter", async () => {
  let fetches = 0;
  const failing: ServiceAccountKeySource = {
    fetchIssuer: async () => {
      fetches += 1;
      throw new Error("discovery answered HTTP 500");
    },
    fetchJwks: async () => {
      throw new Error("jwks answered HTTP 500");
    },
  };
  let clockMs = 1_000_000;
  const warnings: object[] = [];
  const verifier = createServiceAccountTokenVerifier({
    ...signingKeyReadSettings,
    keys: failing,
    audience: "pvc-guardian",
    clock: () => clockMs,
    // The top of each jitter range, so the waits are exact.
    random: () => 1,
    backoff: { initialMs: 1_000, maxMs: 4_000 },
    log: { ...createSilentLogger(), warn: (fields) => void warnings.push(fields) },
  });
  // 300 requests at once, then 300 more one by one: one read.
  const concurrent = await Promise.all(Array.from({ length: 300 }, () => verifier.verify("any.bearer.value")));
  for (let i = 0; i < 300; i += 1) concurrent.push(await verifier.verify("any.bearer.value"));
  assert.equal(fetches, 1);
  for (const answer of concurrent) {
    assert.deepEqual(answer, { ok: false, reason: "unverifiable", message: "the cluster's ServiceAccount signing keys could not be read; retry later" });
  }
  const readsAfter = async (advanceMs: number) => {
    clockMs += advanceMs;
    await verifier.verify("t");
    return fetches;
  };
  assert.equal(await readsAfter(999), 1, "still within the first 1 s");
  assert.equal(await readsAfter(1), 2, "after 1 s");
  assert.equal(await readsAfter(1_999), 2, "within the next 2 s");
  assert.equal(await readsAfter(1), 3, "after 2 s more");
  assert.equal(await readsAfter(4_000), 4, "after 4 s");
  assert.equal(await readsAfter(3_999), 4, "capped at 4 s, not 8");
  assert.equal(await readsAfter(1), 5);
  assert.equal(warnings.length, 5);
  assert.deepEqual(warnings[0], { err: "discovery answered HTTP 500", failures: 1, retryInMs: 1_000 });
});

test("draws each wait between half and all of its ceiling, and reads at once again after a success", async () => {
  let fetches = 0;
  let isFailing = true;
  const key = await signingKey("a");
  const keys: ServiceAccountKeySource = {
    fetchIssuer: async () => {
      fetches += 1;
      if (isFailing) throw new Error("down");
      return issuer;
    },
    fetchJwks: async () => ({ keys: [key.jwk] }),
  };
  let clockMs = 0;
  const verifier = createServiceAccountTokenVerifier({
    ...signingKeyReadSettings,
    keys,
    audience: "pvc-guardian",
    clock: () => clockMs,
    random: () => 0,
    backoff: { initialMs: 1_000, maxMs: 60_000 },
  });
  await verifier.verify("t");
  clockMs += 499;
  await verifier.verify("t");
  assert.equal(fetches, 1);
  clockMs += 1;
  isFailing = false;
  assert.equal((await verifier.verify(await key.sign())).ok, true, "half the ceiling with the lowest draw");
  assert.equal(fetches, 2);
});
