import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from 'jose';
import { createBearerAuth, createServiceAccountTokenVerifier, type ServiceAccountKeySource, type TokenVerifier } from '../../../webhook/server/bearer-auth.ts';

const issuer = 'https://kubernetes.default.svc.cluster.local';
const subject = 'system:serviceaccount:ops:reader';

async function signingKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const sign = (claims: { aud?: string; sub?: string; iss?: string; expInSeconds?: number } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(claims.iss ?? issuer)
      .setSubject(claims.sub ?? subject)
      .setAudience(claims.aud ?? 'pvc-guardian')
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

test('verifies a token of the cluster key, audience and issuer, and reads the keys once', async () => {
  const key = await signingKey('a');
  const { state, keys } = keySource({ keys: [key.jwk] });
  const verifier = createServiceAccountTokenVerifier({ keys, audience: 'pvc-guardian' });
  assert.deepEqual((await verifier.verify(await key.sign())).ok, true);
  assert.equal((await verifier.verify(await key.sign())).ok, true);
  assert.equal(state.fetches, 1);
});

test('refuses another issuer, another audience and an expired token, each with its reason', async () => {
  const key = await signingKey('a');
  const verifier = createServiceAccountTokenVerifier({ keys: keySource({ keys: [key.jwk] }).keys, audience: 'pvc-guardian' });
  assert.deepEqual(await verifier.verify(await key.sign({ iss: 'https://elsewhere' })).then((r) => !r.ok && r.reason), 'invalid');
  assert.deepEqual(await verifier.verify(await key.sign({ aud: 'vault' })).then((r) => !r.ok && r.reason), 'wrong-audience');
  assert.deepEqual(await verifier.verify(await key.sign({ expInSeconds: -120 })).then((r) => !r.ok && r.reason), 'expired');
});

test('re-reads the keys on an unknown kid, but not more often than the minimum interval', async () => {
  const first = await signingKey('a');
  const second = await signingKey('b');
  const { state, keys } = keySource({ keys: [first.jwk] });
  const verifier = createServiceAccountTokenVerifier({ keys, audience: 'pvc-guardian', minRefreshIntervalMs: 60_000 });
  assert.equal((await verifier.verify(await first.sign())).ok, true);
  state.jwks = { keys: [second.jwk] };
  // Within the interval the unknown kid is refused without asking the API server again.
  const refused = await verifier.verify(await second.sign());
  assert.equal(refused.ok, false);
  assert.equal(state.fetches, 1);

  const eager = createServiceAccountTokenVerifier({ keys, audience: 'pvc-guardian', minRefreshIntervalMs: 0 });
  state.jwks = { keys: [first.jwk] };
  assert.equal((await eager.verify(await first.sign())).ok, true);
  state.jwks = { keys: [second.jwk] };
  assert.equal((await eager.verify(await second.sign())).ok, true);
  assert.equal(state.fetches, 3);
});

function appWith(verifier: TokenVerifier, allowed: string[]) {
  const app = new Hono<{ Variables: { caller: { subject: string } } }>();
  app.use('*', createBearerAuth({ verifier, allowedServiceAccounts: allowed }));
  app.get('/v1/x', (c) => c.json({ caller: c.get('caller').subject }));
  return app;
}

test('answers 401, 403, 503 and 200 with JSON bodies', async () => {
  const fixed = (result: Awaited<ReturnType<TokenVerifier['verify']>>): TokenVerifier => ({ verify: async () => result });
  const ok = fixed({ ok: true, subject, expiresAtMs: undefined });
  const noToken = await appWith(ok, [subject]).request('/v1/x');
  assert.equal(noToken.status, 401);
  assert.equal(((await noToken.json()) as { reason: string }).reason, 'missing-token');
  const basic = await appWith(ok, [subject]).request('/v1/x', { headers: { authorization: 'Basic abc' } });
  assert.equal(basic.status, 401);
  const allowed = await appWith(ok, [subject]).request('/v1/x', { headers: { authorization: 'Bearer t' } });
  assert.deepEqual(await allowed.json(), { caller: subject });
  const forbidden = await appWith(ok, ['system:serviceaccount:ops:other']).request('/v1/x', { headers: { authorization: 'Bearer t' } });
  assert.equal(forbidden.status, 403);
  const expired = await appWith(fixed({ ok: false, reason: 'expired', message: 'the token has expired' }), [subject]).request('/v1/x', { headers: { authorization: 'Bearer t' } });
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  const unverifiable = await appWith(fixed({ ok: false, reason: 'unverifiable', message: 'keys unreadable' }), [subject]).request('/v1/x', { headers: { authorization: 'Bearer t' } });
  assert.equal(unverifiable.status, 503);
});
