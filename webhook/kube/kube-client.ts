import { Agent, request as httpsRequest } from "node:https";
import { FIELD_MANAGER } from "../domain/wire-names.ts";
import {
  KubeApiError,
  resourceKindOf,
  type DeleteOutcome,
  type DeletePreconditions,
  type KubeObject,
  type KubeObjects,
  type ListOptions,
  type ListResult,
  type ResourceKind,
  type WatchEvent,
  type WatchOptions,
  withOwnManagedFields,
} from "./kube-objects.ts";
import { loadKubeCredentials } from "./kube-credentials.ts";
import { withRetry } from "./request-retry.ts";
import { errorMessage } from "../domain/error-message.ts";

// The Kubernetes adapter. kube-credentials.ts loads the credentials (kubeconfig or the in-cluster
// ServiceAccount, whose token file is re-read as it rotates); the requests themselves
// go out on one keep-alive HTTPS agent as plain JSON. That keeps three things exact that the
// generated clients blur: every call ends with the caller's AbortSignal (admission deadlines),
// every request is counted (the reconcile benchmark), and objects stay wire JSON (no Date
// conversion of timestamps, no defaulting), which is what server-side apply compares against.

export type KubeRequestRecord = { verb: string; path: string; status: number; durationMs: number };

export type KubeClientOptions = {
  /** A kubeconfig file; without it the in-cluster ServiceAccount is used. */
  kubeconfigPath?: string;
  /** In-cluster: the process environment (KUBERNETES_SERVICE_HOST and _PORT). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Called once per HTTP request, after it ends: request counting and metrics. */
  onRequest?: (record: KubeRequestRecord) => void;
  /** Upper bound for one request when the caller gives no signal. */
  requestTimeoutMs?: number;
  /** Items per list page. */
  defaultPageSize?: number;
};

export type KubeClients = {
  objects: KubeObjects;
  /**
   * A GET of any API server path with our credentials and a chosen Accept header, for the few
   * non-object endpoints (the service-account signing keys are served only as
   * application/jwk-set+json). Never throws for an HTTP status: the caller reads it.
   */
  getRaw(path: string, accept: string, signal?: AbortSignal): Promise<{ status: number; text: string }>;
  /** The API server URL, for logs. */
  server: string;
  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void;
};

type Credentials = { headers: Record<string, string>; agent: Agent; fetchedAtMs: number };

const CREDENTIAL_REFRESH_MS = 60_000;
const JSON_TYPE = "application/json";
const APPLY_TYPE = "application/apply-patch+yaml";
/**
 * Sent on every write. The apiserver's default drops a field the installed CRD does not know and
 * answers 201 (an NFS mover volume on a CRD without one is stored as `volumeSource: {}`, and every
 * mover Job then fails); Strict makes that write an error the caller sees.
 */
const WRITE_QUERY = { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" } as const;

export function createKubeClients(options: KubeClientOptions = {}): KubeClients {
  const source = loadKubeCredentials(options.kubeconfigPath !== undefined ? { kubeconfigPath: options.kubeconfigPath } : { env: options.env ?? {} });
  const server = source.server;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const defaultPageSize = options.defaultPageSize ?? 500;
  let credentials: Credentials | undefined;

  async function currentCredentials(): Promise<Credentials> {
    if (credentials && Date.now() - credentials.fetchedAtMs < CREDENTIAL_REFRESH_MS) return credentials;
    const { headers, tls: opts } = await source.current();
    // The agent is built once from the TLS material and kept: a new agent per request would
    // defeat keep-alive, and a pass makes many requests.
    const agent =
      credentials?.agent ??
      new Agent({
        keepAlive: true,
        maxSockets: 16,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.cert === undefined ? {} : { cert: opts.cert }),
        ...(opts.key === undefined ? {} : { key: opts.key }),
        ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
        ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      });
    credentials = { headers, agent, fetchedAtMs: Date.now() };
    return credentials;
  }

  type Call = {
    method: string;
    path: string;
    query?: Record<string, string | undefined>;
    body?: unknown;
    contentType?: string;
    signal?: AbortSignal | undefined;
  };

  async function send(call: Call): Promise<{ status: number; body: unknown }> {
    const { headers, agent } = await currentCredentials();
    const url = new URL(server + call.path);
    for (const [key, value] of Object.entries(call.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const signal = call.signal ? AbortSignal.any([call.signal, AbortSignal.timeout(requestTimeoutMs)]) : AbortSignal.timeout(requestTimeoutMs);
    const startedMs = performance.now();
    let status = 0;
    try {
      const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpsRequest(
          url,
          {
            method: call.method,
            agent,
            signal,
            headers: {
              ...headers,
              accept: JSON_TYPE,
              ...(payload === undefined ? {} : { "content-type": call.contentType ?? JSON_TYPE, "content-length": Buffer.byteLength(payload) }),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(payload);
      }).catch((error: unknown) => {
        if (signal.aborted) throw signal.reason ?? error;
        throw new KubeApiError(0, "Unreachable", `${call.method} ${call.path}: ${errorMessage(error)}`);
      });
      status = response.status;
      const body = response.text === "" ? undefined : parseJson(response.text);
      if (status < 200 || status > 299) throw apiErrorOf(status, body, `${call.method} ${call.path}`);
      return { status, body };
    } finally {
      options.onRequest?.({ verb: call.method, path: call.path, status, durationMs: performance.now() - startedMs });
    }
  }

  const objects: KubeObjects = {
    async get(kind, namespace, name, signal) {
      try {
        const { body } = await withRetry(() => send({ method: "GET", path: objectPath(kind, namespace, name), signal }), signal, { retryConflict: true });
        return body as KubeObject;
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return undefined;
        throw error;
      }
    },

    async list(kind, listOptions, signal) {
      return listAll(kind, listOptions, signal);
    },

    async create(object, signal) {
      const kind = resourceKindOf(object);
      const { body } = await withRetry(
        () => send({ method: "POST", path: collectionPath(kind, object.metadata.namespace), query: WRITE_QUERY, body: object, signal }),
        signal,
      );
      return body as KubeObject;
    },

    async replace(object, signal) {
      const kind = resourceKindOf(object);
      const { body } = await withRetry(
        () =>
          send({
            method: "PUT",
            path: objectPath(kind, object.metadata.namespace, object.metadata.name),
            query: WRITE_QUERY,
            body: object,
            signal,
          }),
        signal,
      );
      return body as KubeObject;
    },

    async apply(object, applyOptions, signal) {
      const kind = resourceKindOf(object);
      const { body } = await withRetry(
        () =>
          send({
            method: "PATCH",
            path: objectPath(kind, object.metadata.namespace, object.metadata.name),
            query: { ...WRITE_QUERY, ...(applyOptions.force ? { force: "true" } : {}) },
            // JSON is YAML, so the apply content type takes it as it is.
            body: object,
            contentType: APPLY_TYPE,
            signal,
          }),
        signal,
        { retryConflict: applyOptions.force },
      );
      return body as KubeObject;
    },

    async delete(kind, namespace, name, preconditions, signal) {
      return deleteWithPreconditions(kind, namespace, name, preconditions, signal);
    },

    async watch(kind, watchOptions, onEvent, signal) {
      await watchStream(kind, watchOptions, onEvent, signal);
    },
  };

  async function listAll(kind: ResourceKind, listOptions: ListOptions, signal: AbortSignal | undefined): Promise<ListResult> {
    const items: KubeObject[] = [];
    let continueToken: string | undefined;
    let resourceVersion = "";
    try {
      do {
        const { body } = await withRetry(
          () =>
            send({
              method: "GET",
              path: collectionPath(kind, listOptions.namespace),
              query: {
                labelSelector: listOptions.labelSelector,
                fieldSelector: listOptions.fieldSelector,
                limit: String(listOptions.pageSize ?? defaultPageSize),
                continue: continueToken,
              },
              signal,
            }),
          signal,
        );
        const page = body as { metadata?: { continue?: string; resourceVersion?: string }; items?: KubeObject[] };
        for (const item of page.items ?? []) {
          // List items carry no apiVersion/kind; restore them so they can be handled like any object.
          items.push(withOwnManagedFields({ ...item, apiVersion: kind.apiVersion, kind: kind.kind }, FIELD_MANAGER));
        }
        continueToken = page.metadata?.continue || undefined;
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      } while (continueToken !== undefined);
      return { complete: true, items, resourceVersion };
    } catch (error) {
      return { complete: false, items, error: `list ${kind.plural}: ${errorMessage(error)}` };
    }
  }

  async function deleteWithPreconditions(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    preconditions: DeletePreconditions,
    signal: AbortSignal | undefined,
  ): Promise<DeleteOutcome> {
    try {
      await withRetry(
        () =>
          send({
            method: "DELETE",
            path: objectPath(kind, namespace, name),
            body: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", preconditions },
            signal,
          }),
        signal,
      );
      return "deleted";
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return "not-found";
      if (error instanceof KubeApiError && error.status === 409) return "precondition-failed";
      throw error;
    }
  }

  async function watchStream(kind: ResourceKind, watchOptions: WatchOptions, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const { headers, agent } = await currentCredentials();
    const url = new URL(server + collectionPath(kind, watchOptions.namespace));
    url.searchParams.set("watch", "true");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("timeoutSeconds", "300");
    if (watchOptions.labelSelector) url.searchParams.set("labelSelector", watchOptions.labelSelector);
    if (watchOptions.fieldSelector) url.searchParams.set("fieldSelector", watchOptions.fieldSelector);
    if (watchOptions.resourceVersion) url.searchParams.set("resourceVersion", watchOptions.resourceVersion);
    const startedMs = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = httpsRequest(url, { method: "GET", agent, signal, headers: { ...headers, accept: JSON_TYPE } }, (res) => {
        options.onRequest?.({ verb: "WATCH", path: url.pathname, status: res.statusCode ?? 0, durationMs: performance.now() - startedMs });
        if ((res.statusCode ?? 0) !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => reject(apiErrorOf(res.statusCode ?? 0, parseJson(Buffer.concat(chunks).toString("utf8")), `WATCH ${url.pathname}`)));
          return;
        }
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line === "") continue;
            const event = parseJson(line) as { type?: string; object?: KubeObject } | undefined;
            if (event?.type === "ERROR") {
              req.destroy();
              reject(apiErrorOf((event.object as unknown as { code?: number })?.code ?? 500, event.object, `WATCH ${url.pathname}`));
              return;
            }
            if (event?.object && (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED" || event.type === "BOOKMARK")) {
              onEvent({ type: event.type, object: { ...event.object, apiVersion: kind.apiVersion, kind: kind.kind } });
            }
          }
        });
        res.on("end", () => resolve());
        res.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
      });
      req.on("error", (error) => (signal.aborted ? resolve() : reject(new KubeApiError(0, "Unreachable", `WATCH ${url.pathname}: ${error.message}`))));
      req.end();
    });
  }

  async function getRaw(path: string, accept: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const { headers, agent } = await currentCredentials();
    const bounded = signal ? AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]) : AbortSignal.timeout(requestTimeoutMs);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(server + path), { method: "GET", agent, signal: bounded, headers: { ...headers, accept } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  }

  return {
    objects,
    server,
    getRaw,
    close() {
      credentials?.agent.destroy();
    },
  };
}

function collectionPath(kind: ResourceKind, namespace: string | undefined): string {
  const root = kind.apiVersion.includes("/") ? `/apis/${kind.apiVersion}` : `/api/${kind.apiVersion}`;
  return kind.namespaced && namespace !== undefined ? `${root}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}` : `${root}/${kind.plural}`;
}

function objectPath(kind: ResourceKind, namespace: string | undefined, name: string): string {
  if (kind.namespaced && namespace === undefined) throw new Error(`a ${kind.kind} needs a namespace`);
  return `${collectionPath(kind, namespace)}/${encodeURIComponent(name)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function apiErrorOf(status: number, body: unknown, what: string): KubeApiError {
  const statusBody = typeof body === "object" && body !== null ? (body as { reason?: string; message?: string }) : {};
  const message = statusBody.message ?? (typeof body === "string" ? body.slice(0, 300) : "");
  return new KubeApiError(status, statusBody.reason ?? "Unknown", `${what}: ${status} ${message}`.trim());
}
