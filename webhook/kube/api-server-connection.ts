import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import { errorMessage } from "../domain/error-message.ts";
import type { KubeCredentials } from "./kube-credentials.ts";
import { KubeApiError } from "./kube-objects.ts";

// One request to the API server, and nothing about objects (kube-client.ts builds those on it).
// The requests go out on one keep-alive HTTPS agent as plain JSON. That keeps three things exact
// that the generated clients blur: every call ends with the caller's AbortSignal (admission
// deadlines), every request is reported (metrics, the reconcile benchmark), and objects stay wire
// JSON (no Date conversion of timestamps, no defaulting), which is what server-side apply
// compares against.

/** What a request does, as Kubernetes names it (audit logs, RBAC, apiserver metrics). */
export type KubeVerb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

const METHOD_OF_VERB: Readonly<Record<KubeVerb, string>> = {
  get: "GET",
  list: "GET",
  watch: "GET",
  create: "POST",
  update: "PUT",
  patch: "PATCH",
  delete: "DELETE",
};

/**
 * One request, reported once. `code` is the HTTP status as text ("200", "404"), or "error" when no
 * whole answer came back: refused, reset, timed out, or aborted by the caller. An ordinary request
 * is reported when its answer has been read; a streamed one (a watch) when its stream opens.
 */
export type KubeRequestRecord = { verb: KubeVerb; code: string; path: string; durationMs: number };

export type ApiServerCall = {
  verb: KubeVerb;
  /** The path on the API server, already escaped, without the query. */
  path: string;
  /** Parameters left undefined are not sent. */
  query?: Readonly<Record<string, string | undefined>>;
  /** Sent as JSON. */
  body?: unknown;
  /** The body's media type, when not plain JSON (server-side apply). */
  contentType?: string;
  /** application/json unless given. */
  accept?: string;
  signal?: AbortSignal | undefined;
  /**
   * Reads a 2xx answer as it arrives, one JSON value a line (a watch's events), instead of
   * collecting it; a line that is not JSON comes as its text, blank lines not at all. Such a
   * request runs until the server ends it or the caller's signal aborts; every other one is also
   * bounded by the connection's request timeout. A throw stops the request and rejects it with
   * that error.
   */
  onJsonLine?: (value: unknown) => void;
};

export type ApiServerAnswer = {
  status: number;
  /** The answer as JSON; its text when that is not JSON; undefined when empty or streamed. */
  body: unknown;
  /** The answer as it came, for the few callers that read a non-object endpoint themselves. */
  text: string;
};

export type ApiServerConnectionOptions = {
  /** Upper bound for one request that is not streamed, with or without the caller's signal. */
  requestTimeoutMs: number;
  /** Called once per HTTP request (each retry is one): request counting and metrics. */
  onRequest?: (record: KubeRequestRecord) => void;
  /** How long credentials are reused before they are read again (token files rotate); 0 reads them for every request. */
  credentialRefreshMs: number;
};

export type ApiServerConnection = {
  /** The API server URL, for logs. */
  server: string;
  /**
   * Sends one request and reads its answer. Never throws for an HTTP status: the caller reads it.
   * Rejects with the signal's reason when the signal ends the request, and with a KubeApiError of
   * status 0 ("Unreachable") when no answer came back.
   */
  request(call: ApiServerCall): Promise<ApiServerAnswer>;
  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void;
};

const JSON_TYPE = "application/json";

type Credentials = { headers: Record<string, string>; agent: Agent; fetchedAtMs: number };

/** The request, as error messages name it: `GET /api/v1/...`, and `WATCH ...` for a watch. */
export function describeCall(call: Pick<ApiServerCall, "verb" | "path">): string {
  return `${call.verb === "watch" ? "WATCH" : METHOD_OF_VERB[call.verb]} ${call.path}`;
}

export function createApiServerConnection(source: KubeCredentials, options: ApiServerConnectionOptions): ApiServerConnection {
  const { requestTimeoutMs, credentialRefreshMs } = options;
  let credentials: Credentials | undefined;

  async function currentCredentials(): Promise<Credentials> {
    if (credentials && Date.now() - credentials.fetchedAtMs < credentialRefreshMs) return credentials;
    const { headers, tls } = await source.current();
    // The agent is built once from the TLS material and kept: a new agent per request would
    // defeat keep-alive, and a pass makes many requests.
    const agent =
      credentials?.agent ??
      new Agent({
        keepAlive: true,
        maxSockets: 16,
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: tls.key }),
        ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
        ...(tls.servername === undefined ? {} : { servername: tls.servername }),
      });
    credentials = { headers, agent, fetchedAtMs: Date.now() };
    return credentials;
  }

  async function request(call: ApiServerCall): Promise<ApiServerAnswer> {
    const { headers, agent } = await currentCredentials();
    const url = new URL(source.server + call.path);
    for (const [key, value] of Object.entries(call.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const timeout = call.onJsonLine === undefined ? AbortSignal.timeout(requestTimeoutMs) : undefined;
    const signal = call.signal && timeout ? AbortSignal.any([call.signal, timeout]) : (call.signal ?? timeout);
    const startedMs = performance.now();
    let isReported = false;
    const report = (code: string) => {
      if (isReported) return;
      isReported = true;
      options.onRequest?.({ verb: call.verb, code, path: call.path, durationMs: performance.now() - startedMs });
    };
    // A throw from onJsonLine is the caller's own answer (a watch's ERROR event): passed on as it is.
    let stoppedBy: { error: unknown } | undefined;
    try {
      const { status, text } = await exchange(
        url,
        {
          method: METHOD_OF_VERB[call.verb],
          agent,
          ...(signal === undefined ? {} : { signal }),
          headers: {
            ...headers,
            accept: call.accept ?? JSON_TYPE,
            ...(payload === undefined ? {} : { "content-type": call.contentType ?? JSON_TYPE, "content-length": Buffer.byteLength(payload) }),
          },
        },
        payload,
        call.onJsonLine && {
          onOpen: (status) => report(String(status)),
          onLine: (line) => {
            if (line.trim() === "") return;
            try {
              call.onJsonLine!(parseJson(line));
            } catch (error) {
              stoppedBy = { error };
              throw error;
            }
          },
        },
      );
      report(String(status));
      return { status, body: text === "" ? undefined : parseJson(text), text };
    } catch (error) {
      report("error");
      if (stoppedBy !== undefined) throw stoppedBy.error;
      if (signal?.aborted) throw signal.reason ?? error;
      throw new KubeApiError(0, "Unreachable", `${describeCall(call)}: ${errorMessage(error)}`);
    }
  }

  return {
    server: source.server,
    request,
    close() {
      credentials?.agent.destroy();
    },
  };
}

type Stream = {
  /** The status of a 2xx answer, before its first line. */
  onOpen(status: number): void;
  /** A throw stops the request and rejects the exchange with that error. */
  onLine(line: string): void;
};

/**
 * One HTTPS request and its answer: the body collected as text, or, for a 2xx answer when
 * `stream` is given, handed over line by line (a last line without a newline is dropped: the
 * API server ends every watch event with one).
 */
function exchange(
  url: URL,
  requestOptions: RequestOptions,
  payload: string | undefined,
  stream: Stream | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, requestOptions, (res) => {
      const status = res.statusCode ?? 0;
      res.on("error", reject);
      if (stream === undefined || status < 200 || status > 299) {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status, text: Buffer.concat(chunks).toString("utf8") }));
        return;
      }
      stream.onOpen(status);
      let buffered = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          try {
            stream.onLine(line);
          } catch (error) {
            req.destroy();
            reject(error);
            return;
          }
        }
      });
      res.on("end", () => resolve({ status, text: "" }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
