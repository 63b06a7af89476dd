// Who may call the read API: a Kubernetes ServiceAccount token, verified locally with `jose`
// against the cluster's own signing keys (its JWKS), bound to pvc-guardian's audience, from a
// ServiceAccount on the allow-list. Nothing else is accepted: no anonymous reads, no static
// tokens. Verification is local so the read API does not put a TokenReview on the API server per
// call; the cost is that a token bound to a deleted Pod stays valid until it expires (at most its
// expirationSeconds, which Kubernetes caps for projected tokens).

import type { MiddlewareHandler } from "hono";
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from "jose";
import type { Logger } from "../domain/logger.ts";
import { READ_API_REALM } from "../domain/wire-names.ts";

/** What the verifier needs from the API server: its OIDC issuer and its current JWKS. */
export type ServiceAccountKeySource = {
  /** The `issuer` of the API server's /.well-known/openid-configuration. */
  fetchIssuer(signal?: AbortSignal): Promise<string>;
  /** The API server's /openid/v1/jwks. */
  fetchJwks(signal?: AbortSignal): Promise<JSONWebKeySet>;
};

/** A GET against the API server with pvc-guardian's own credentials; the kube adapter provides it. */
export type ApiServerGet = (path: string, accept: string, signal?: AbortSignal) => Promise<{ status: number; text: string }>;

export const openIdConfigurationPath = "/.well-known/openid-configuration";
export const jwksPath = "/openid/v1/jwks";

/**
 * The keys through the API server itself rather than the discovery document's jwks_uri: that URI
 * is the issuer's public address, which the pod often cannot reach or verify (it may be a bucket
 * or a load balancer outside the cluster), while the API server serves the same JWKS to any
 * ServiceAccount (system:service-account-issuer-discovery is bound to all of them by default).
 */
export function createApiServerKeySource(get: ApiServerGet): ServiceAccountKeySource {
  async function getJson(path: string, accept: string, signal?: AbortSignal): Promise<unknown> {
    const response = await get(path, accept, signal);
    if (response.status !== 200) throw new Error(`GET ${path} answered HTTP ${response.status}`);
    return JSON.parse(response.text) as unknown;
  }
  return {
    async fetchIssuer(signal) {
      const document = (await getJson(openIdConfigurationPath, "application/json", signal)) as { issuer?: unknown };
      if (typeof document.issuer !== "string" || document.issuer === "") throw new Error(`${openIdConfigurationPath} names no issuer`);
      return document.issuer;
    },
    async fetchJwks(signal) {
      // The API server answers this path only for this media type.
      const jwks = (await getJson(jwksPath, "application/jwk-set+json", signal)) as JSONWebKeySet;
      if (!Array.isArray(jwks.keys)) throw new Error(`${jwksPath} holds no keys`);
      return jwks;
    },
  };
}

export type TokenVerification =
  | { ok: true; subject: string; expiresAtMs: number | undefined }
  | { ok: false; reason: "invalid" | "expired" | "wrong-audience" | "unverifiable"; message: string };

export type TokenVerifier = { verify(token: string): Promise<TokenVerification> };

export type TokenVerifierDeps = {
  keys: ServiceAccountKeySource;
  audience: string;
  /** The clock tokens are checked against; tests move it to see expiry without waiting. */
  now?: () => number;
  /** Keys are re-read after this long even when every kid is known, so removed keys go away. */
  maxKeyAgeMs: number;
  /** An unknown kid re-reads the keys at most this often, so forged kids cannot flood the API server. */
  minRefreshIntervalMs: number;
  clockToleranceSeconds?: number;
  /**
   * After a failed read of the keys, no new read for a while: 1 s, doubling per failure up to
   * 60 s, each wait drawn between half and all of that (so replicas do not retry in step). Any
   * bearer value sent to the read API triggers a read when there are no keys, so without this a
   * failing API server is asked again for every request.
   */
  backoff: { initialMs: number; maxMs: number };
  /** The wall clock that paces key reads (not tokens); tests move it. */
  clock?: () => number;
  /** Draws the jitter, in [0, 1). */
  random?: () => number;
  log?: Logger;
};

/** The keys were not read: a read failed, or the last failure's backoff has not passed. */
export class SigningKeysUnavailableError extends Error {
  override name = "SigningKeysUnavailableError";
}

type KeyState = { issuer: string; keySet: ReturnType<typeof createLocalJWKSet>; fetchedAtMs: number };

export function createServiceAccountTokenVerifier(deps: TokenVerifierDeps): TokenVerifier {
  const now = deps.now ?? Date.now;
  const { maxKeyAgeMs, minRefreshIntervalMs, backoff } = deps;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  let state: KeyState | undefined;
  let inFlight: Promise<KeyState> | undefined;
  // Wall-clock of the last fetch, independent of the token clock `now`.
  let lastFetchMs = Number.NEGATIVE_INFINITY;
  let failures = 0;
  let retryAtMs = Number.NEGATIVE_INFINITY;

  function fetchKeys(): Promise<KeyState> {
    if (inFlight !== undefined) return inFlight;
    if (clock() < retryAtMs) return Promise.reject(new SigningKeysUnavailableError("backing off after a failed read"));
    inFlight = (async () => {
      try {
        lastFetchMs = clock();
        const [issuer, jwks] = await Promise.all([deps.keys.fetchIssuer(), deps.keys.fetchJwks()]);
        state = { issuer, keySet: createLocalJWKSet(jwks), fetchedAtMs: clock() };
        failures = 0;
        retryAtMs = Number.NEGATIVE_INFINITY;
        return state;
      } catch (error) {
        failures += 1;
        const ceilingMs = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 1));
        const waitMs = Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
        retryAtMs = clock() + waitMs;
        try {
          deps.log?.warn(
            { err: error instanceof Error ? error.message : String(error), failures, retryInMs: waitMs },
            "the cluster's ServiceAccount signing keys could not be read",
          );
        } catch {
          // Logging must not change the answer.
        }
        throw new SigningKeysUnavailableError("the read failed", { cause: error });
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  async function currentKeys(): Promise<KeyState> {
    if (state === undefined || clock() - state.fetchedAtMs > maxKeyAgeMs) return fetchKeys();
    return state;
  }

  async function verifyWith(keys: KeyState, token: string) {
    return jwtVerify(token, keys.keySet, {
      issuer: keys.issuer,
      audience: deps.audience,
      algorithms: ["RS256", "ES256", "ES384", "ES512", "PS256"],
      currentDate: new Date(now()),
      requiredClaims: ["sub", "exp"],
      ...(deps.clockToleranceSeconds === undefined ? {} : { clockTolerance: deps.clockToleranceSeconds }),
    });
  }

  return {
    async verify(token) {
      let keys: KeyState;
      try {
        keys = await currentKeys();
      } catch {
        return { ok: false, reason: "unverifiable", message: keysUnavailableMessage };
      }
      try {
        let result;
        try {
          result = await verifyWith(keys, token);
        } catch (error) {
          // A kid we have not seen: the API server may have rotated its signing key since we
          // read the keys. Read them again (rate-limited) and retry once.
          if (!(error instanceof joseErrors.JWKSNoMatchingKey) || clock() - lastFetchMs < minRefreshIntervalMs) throw error;
          result = await verifyWith(await fetchKeys(), token);
        }
        const subject = result.payload.sub!;
        return { ok: true, subject, expiresAtMs: result.payload.exp === undefined ? undefined : result.payload.exp * 1000 };
      } catch (error) {
        return describeFailure(error, deps.audience);
      }
    },
  };
}

const keysUnavailableMessage = "the cluster's ServiceAccount signing keys could not be read; retry later";

/** Claims jose names in its errors: the only part of an error that may go into an answer. */
const knownClaims = new Set(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "typ"]);

/**
 * A fixed sentence per kind of failure. jose's own messages quote parts of the token's header
 * (an unrecognised `crit` parameter, say), which is the caller's text: it must not reach a header
 * (CR/LF or non-Latin-1 text there makes setting it throw) or be echoed back at all.
 */
function describeFailure(error: unknown, audience: string): TokenVerification {
  if (error instanceof SigningKeysUnavailableError) return { ok: false, reason: "unverifiable", message: keysUnavailableMessage };
  if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: "expired", message: "the token has expired; request a new one" };
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === "aud") {
    return {
      ok: false,
      reason: "wrong-audience",
      message: `the token is not for audience "${audience}"; request one with that audience (kubectl create token <sa> --audience ${audience})`,
    };
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return { ok: false, reason: "invalid", message: "the token is not signed by any of the cluster's current ServiceAccount keys" };
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return { ok: false, reason: "invalid", message: "the token signature does not verify" };
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = knownClaims.has(error.claim) ? `${error.claim} claim` : "claims";
    return {
      ok: false,
      reason: "invalid",
      message: `the token's ${claim} are not acceptable for a ServiceAccount token of this cluster`.replace("claim are", "claim is"),
    };
  }
  if (error instanceof joseErrors.JOSEError) return { ok: false, reason: "invalid", message: "the token is not a valid ServiceAccount token" };
  return { ok: false, reason: "invalid", message: "the token could not be read as a ServiceAccount token" };
}

export type BearerAuthDeps = {
  verifier: TokenVerifier;
  /** `system:serviceaccount:<namespace>:<name>` entries from the policy's readApi. */
  allowedServiceAccounts: readonly string[];
  log?: Logger;
};

/** The caller, set on the Hono context by the middleware for handlers and logs. */
export type ReadApiCaller = { subject: string };

const SERVICE_ACCOUNT_SUBJECT = /^system:serviceaccount:[^:]+:[^:]+$/;

/**
 * 401 when there is no usable token (missing, malformed, not ours, expired, wrong audience),
 * 403 when the token is valid but its ServiceAccount is not on the allow-list. Both as JSON with
 * a sentence saying what to do, and a WWW-Authenticate header on 401 (RFC 6750).
 */
export function createBearerAuth(deps: BearerAuthDeps): MiddlewareHandler<{ Variables: { caller: ReadApiCaller } }> {
  const allowed = new Set(deps.allowedServiceAccounts);
  return async (c, next) => {
    const header = c.req.header("authorization");
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      c.header("WWW-Authenticate", `Bearer realm="${READ_API_REALM}"`);
      return c.json(
        { error: "unauthorized", reason: "missing-token", message: "This API needs a Kubernetes ServiceAccount token in an Authorization: Bearer header." },
        401,
      );
    }
    const verification = await deps.verifier.verify(match[1]!);
    if (!verification.ok) {
      try {
        deps.log?.debug({ reason: verification.reason }, "read api token refused");
      } catch {
        // Logging must not change the answer.
      }
      if (verification.reason === "unverifiable") {
        // Our failure, not the caller's: a 503 says "retry", a 401 would say "your token is bad".
        return c.json({ error: "unavailable", reason: verification.reason, message: verification.message }, 503);
      }
      c.header("WWW-Authenticate", `Bearer realm="${READ_API_REALM}", error="invalid_token", error_description="${verification.message.replaceAll('"', "'")}"`);
      return c.json({ error: "unauthorized", reason: verification.reason, message: verification.message }, 401);
    }
    if (!SERVICE_ACCOUNT_SUBJECT.test(verification.subject) || !allowed.has(verification.subject)) {
      return c.json(
        {
          error: "forbidden",
          reason: "not-allowed",
          subject: verification.subject,
          message: `${verification.subject} may not read pvc-guardian's backups; add it to readApi.allowedServiceAccounts in the policy to allow it.`,
        },
        403,
      );
    }
    c.set("caller", { subject: verification.subject });
    await next();
  };
}
