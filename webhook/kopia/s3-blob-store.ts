// A Kopia repository in an S3-compatible bucket as a BlobStore. Kopia stores each blob as the
// object `<prefix><blob ID>` (no suffix, no sharding) and lists with ListObjectsV2 over
// `<prefix><blob prefix>`; this store does the same, read-only: GET bucket listings and GET objects
// (ranged for pack reads), signed with SigV4. Every failure is a RepositoryError that names the
// cause, so a catalog that cannot read the bucket answers "unknown", never "no snapshots".

import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import type { BlobMetadata, BlobStore } from "./blob-store.ts";
import { RepositoryError, type RepositoryErrorKind } from "./repository-error.ts";
import { listAllObjects, parseListObjectsPage } from "./s3-object-listing.ts";
import { type S3Credentials, signS3Request } from "./s3-request-signer.ts";
import { errorMessage } from "../domain/error-message.ts";

export type S3Addressing = "path" | "virtual-hosted";

export type S3BlobStoreDeps = {
  bucket: string;
  /** Prepended to every blob ID, exactly as kopia's `--prefix` (usually ending in `/`, or empty). */
  prefix: string;
  /** `host` or `host:port`, without a scheme. */
  endpoint: string;
  /** TLS unless the repository is configured with TLS off (kopia's `--disable-tls`). */
  useTls: boolean;
  region: string;
  addressing: S3Addressing;
  /** Read at every request, so rotated keys take effect without a restart. */
  readCredentials: () => Promise<S3Credentials>;
  /** PEM certificates trusted for a private endpoint, in addition to nothing else when given. */
  caBundle?: () => Promise<string | undefined>;
  /** Each HTTP request (headers and body) must finish within this. */
  requestTimeoutMs: number;
  /** Resolves host names (tests point `bucket.localhost` at 127.0.0.1 with it). */
  lookup?: LookupFunction;
  /** Aborts every request in flight and all later ones. */
  signal?: AbortSignal;
};

type S3Response = { statusCode: number; headers: http.IncomingHttpHeaders; body: Buffer };

/** S3 object keys are encoded per segment: `/` stays, everything but unreserved characters is escaped. */
export function encodeS3Key(key: string): string {
  return key
    .split("/")
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
}

/** The host and path of an object (or of the bucket, for an empty key) for an addressing style. */
export function s3RequestTarget(deps: Pick<S3BlobStoreDeps, "bucket" | "endpoint" | "addressing">, key: string): { host: string; path: string } {
  if (deps.addressing === "virtual-hosted") return { host: `${deps.bucket}.${deps.endpoint}`, path: `/${encodeS3Key(key)}` };
  return { host: deps.endpoint, path: `/${encodeS3Key(deps.bucket)}/${encodeS3Key(key)}` };
}

function errorCodeOf(body: Buffer): { code: string; message: string } {
  const text = body.toString("utf8", 0, Math.min(body.length, 4096));
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "";
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
  return { code, message };
}

/**
 * Throttling (503 SlowDown, 429) or a 500 is tried twice more, 200 ms and then 400 ms later, as S3
 * asks clients to back off. A read that still fails fails the refresh, and the catalog retries
 * the refresh soon after (snapshot-catalog.ts), so more attempts here would only hold it longer.
 */
const THROTTLE_RETRIES = 2;
const THROTTLE_RETRY_FIRST_DELAY_MS = 200;

const throttlingCodes = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "ServiceUnavailable"]);

export function createS3BlobStore(deps: S3BlobStoreDeps): BlobStore {
  const { requestTimeoutMs } = deps;
  const scheme = deps.useTls ? "https" : "http";
  const location = `s3://${deps.bucket}/${deps.prefix} at ${scheme}://${deps.endpoint}`;
  let agent: { ca: string | undefined; agent: http.Agent } | undefined;

  async function agentFor(): Promise<http.Agent> {
    const ca = deps.useTls ? await deps.caBundle?.() : undefined;
    if (agent === undefined || agent.ca !== ca) {
      agent?.agent.destroy();
      const options = { keepAlive: true, maxSockets: 16, ...(deps.lookup ? { lookup: deps.lookup } : {}) };
      agent = { ca, agent: deps.useTls ? new https.Agent({ ...options, ...(ca ? { ca } : {}) }) : new http.Agent(options) };
    }
    return agent.agent;
  }

  function send(method: "GET", host: string, path: string, query: Record<string, string>, headers: Record<string, string>, what: string): Promise<S3Response> {
    return new Promise((resolve, reject) => {
      if (deps.signal?.aborted) {
        reject(new RepositoryError("io", `${what}: the S3 read was aborted`));
        return;
      }
      void agentFor().then(
        (httpAgent) => {
          const search = new URLSearchParams(query).toString().replace(/\+/g, "%20");
          const url = `${scheme}://${host}${path}${search ? `?${search}` : ""}`;
          const request = (deps.useTls ? https : http).request(url, { method, headers, agent: httpAgent, ...(deps.lookup ? { lookup: deps.lookup } : {}) });
          let settled = false;
          const fail = (error: RepositoryError) => {
            if (settled) return;
            settled = true;
            request.destroy();
            reject(error);
          };
          const timer = setTimeout(
            () => fail(new RepositoryError("io", `${what}: the S3 endpoint ${deps.endpoint} did not answer within ${requestTimeoutMs} ms`)),
            requestTimeoutMs,
          );
          const onAbort = () => fail(new RepositoryError("io", `${what}: the S3 read was aborted`));
          deps.signal?.addEventListener("abort", onAbort, { once: true });
          const cleanUp = () => {
            clearTimeout(timer);
            deps.signal?.removeEventListener("abort", onAbort);
          };
          request.on("error", (error: NodeJS.ErrnoException) => {
            cleanUp();
            fail(new RepositoryError("io", `${what}: ${describeNetworkError(error, deps.endpoint)}`, { cause: error }));
          });
          request.on("response", (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("error", (error) => {
              cleanUp();
              fail(new RepositoryError("io", `${what}: the S3 response was cut: ${error.message}`, { cause: error }));
            });
            response.on("aborted", () => {
              cleanUp();
              fail(new RepositoryError("io", `${what}: the S3 response was cut before its end`));
            });
            response.on("end", () => {
              cleanUp();
              if (settled) return;
              const body = Buffer.concat(chunks);
              const declared = response.headers["content-length"];
              if (declared !== undefined && Number(declared) !== body.length) {
                fail(new RepositoryError("io", `${what}: the S3 response was cut: ${body.length} of ${declared} bytes arrived`));
                return;
              }
              settled = true;
              resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body });
            });
          });
          request.end();
        },
        (error: unknown) => reject(new RepositoryError("io", `${what}: cannot set up the TLS client: ${errorMessage(error)}`, { cause: error })),
      );
    });
  }

  /** A signed GET, retried on throttling; any answer but 2xx becomes a RepositoryError. */
  async function get(key: string, query: Record<string, string>, headers: Record<string, string>, what: string): Promise<S3Response> {
    const { host, path } = s3RequestTarget(deps, key);
    for (let attempt = 0; ; attempt++) {
      const credentials = await deps.readCredentials();
      const signed = await signS3Request({ method: "GET", protocol: `${scheme}:`, host, path, query, headers }, credentials, deps.region);
      const response = await send("GET", host, path, query, signed, what);
      if (response.statusCode >= 200 && response.statusCode < 300) return response;
      const failure = describeFailure(response, what);
      if (failure.retryable && attempt < THROTTLE_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, THROTTLE_RETRY_FIRST_DELAY_MS * 2 ** attempt));
        continue;
      }
      throw new RepositoryError(failure.kind, failure.message);
    }
  }

  function describeFailure(response: S3Response, what: string): { kind: RepositoryErrorKind; message: string; retryable: boolean } {
    const { code, message } = errorCodeOf(response.body);
    const detail = `${response.statusCode}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`;
    const status = response.statusCode;
    if (status === 403 || status === 401) {
      return {
        kind: "permission-denied",
        message: `${what}: S3 refused the request (${detail}); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION`,
        retryable: false,
      };
    }
    if (status === 404 && code === "NoSuchBucket") {
      return { kind: "not-found", message: `${what}: the bucket ${deps.bucket} does not exist at ${deps.endpoint} (${detail})`, retryable: false };
    }
    if (status === 404) return { kind: "not-found", message: `${what} does not exist (${detail})`, retryable: false };
    if (status === 416) return { kind: "corrupt", message: `${what}: the requested range is beyond the object (${detail})`, retryable: false };
    if (status === 503 || status === 429 || throttlingCodes.has(code)) {
      return { kind: "io", message: `${what}: S3 is throttling requests (${detail}); giving up after ${THROTTLE_RETRIES + 1} attempts`, retryable: true };
    }
    if (status >= 500) return { kind: "io", message: `${what}: the S3 server failed (${detail}) after ${THROTTLE_RETRIES + 1} attempts`, retryable: true };
    return { kind: "io", message: `${what}: unexpected S3 answer ${detail}`, retryable: false };
  }

  return {
    location,

    async list(prefix) {
      const fullPrefix = deps.prefix + prefix;
      const what = `listing ${location} for prefix ${JSON.stringify(prefix)}`;
      const objects = await listAllObjects(async (continuationToken) => {
        const query: Record<string, string> = {
          "list-type": "2",
          prefix: fullPrefix,
          ...(continuationToken ? { "continuation-token": continuationToken } : {}),
        };
        const response = await get("", query, {}, what);
        return parseListObjectsPage(response.body.toString("utf8"), what);
      }, what);
      const out: BlobMetadata[] = [];
      for (const object of objects) {
        if (!object.key.startsWith(fullPrefix)) throw new RepositoryError("corrupt", `${what}: the S3 listing returned ${object.key}, outside the prefix`);
        const id = object.key.slice(deps.prefix.length);
        // Kopia's blob IDs never contain a `/`: a deeper key belongs to something else in the bucket.
        if (id === "" || id.includes("/")) continue;
        out.push({ id, lengthBytes: object.sizeBytes });
      }
      out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return out;
    },

    async read(id) {
      const response = await get(deps.prefix + id, {}, {}, `blob ${id} in ${location}`);
      return response.body;
    },

    async readRange(id, offset, length) {
      const what = `blob ${id} in ${location}`;
      if (length === 0) return Buffer.alloc(0);
      const response = await get(deps.prefix + id, {}, { range: `bytes=${offset}-${offset + length - 1}` }, what);
      if (response.statusCode === 200 && response.body.length >= offset + length) {
        // A server that ignores Range sends the whole object.
        return response.body.subarray(offset, offset + length);
      }
      if (response.body.length !== length) {
        throw new RepositoryError("corrupt", `${what} is truncated: wanted ${length} bytes at offset ${offset}, got ${response.body.length}`);
      }
      return response.body;
    },
  };
}

function describeNetworkError(error: NodeJS.ErrnoException, endpoint: string): string {
  switch (error.code) {
    case "ECONNREFUSED":
      return `the S3 endpoint ${endpoint} refused the connection (is it running?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the S3 endpoint host ${endpoint} does not resolve`;
    case "ECONNRESET":
    case "EPIPE":
      return `the S3 endpoint ${endpoint} closed the connection mid-request`;
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `the S3 endpoint ${endpoint} is unreachable (${error.code})`;
    default:
      // Node's certificate verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN,
      // ERR_TLS_CERT_ALTNAME_INVALID, …) and OpenSSL's handshake errors (ERR_SSL_…).
      if (/CERT|SIGNATURE|ISSUER|TLS|SSL/.test(error.code ?? "")) {
        return `TLS to the S3 endpoint ${endpoint} failed: ${error.message} (set the CA bundle for a private endpoint)`;
      }
      return `the S3 request to ${endpoint} failed: ${error.message}`;
  }
}
