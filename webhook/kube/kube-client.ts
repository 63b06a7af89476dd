import { FIELD_MANAGER } from "../domain/wire-names.ts";
import { createApiServerConnection, describeCall, type ApiServerCall, type ApiServerConnection, type KubeRequestRecord } from "./api-server-connection.ts";
import {
  KubeApiError,
  isConflict,
  isNotFound,
  resourceKindOf,
  type KubeObject,
  type KubeObjects,
  type ResourceKind,
  withOwnManagedFields,
} from "./kube-objects.ts";
import { loadKubeCredentials } from "./kube-credentials.ts";
import { withRetry, type RetryCurve } from "./request-retry.ts";
import { errorMessage } from "../domain/error-message.ts";

// The Kubernetes adapter: the object verbs of kube-objects.ts, each a request (or a few: retries,
// list pages) on one API server connection (api-server-connection.ts). kube-credentials.ts loads
// the credentials: a kubeconfig or the in-cluster ServiceAccount, whose token file is re-read as
// it rotates.

export type { KubeRequestRecord, KubeVerb } from "./api-server-connection.ts";

export type KubeClientOptions = {
  /** A kubeconfig file; without it the in-cluster ServiceAccount is used. */
  kubeconfigPath?: string;
  /** In-cluster: the process environment (KUBERNETES_SERVICE_HOST and _PORT). */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Called once per HTTP request (each retry and each list page is one) with its Kubernetes verb
   * (get, list, watch, create, update, patch, delete) and its code: the HTTP status as text, or
   * "error" when no whole answer came back. For request counting and metrics.
   */
  onRequest?: (record: KubeRequestRecord) => void;
  /** Upper bound for one request (a watch excepted), whether or not the caller gives a signal. */
  requestTimeoutMs: number;
  /** How long read credentials are reused before they are read again (token files rotate). */
  credentialRefreshMs: number;
  /** Items per list page, unless a list asks for its own. */
  listPageSize: number;
  /** How failed requests that are safe to repeat are tried again. */
  retry: RetryCurve;
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

const APPLY_TYPE = "application/apply-patch+yaml";
/**
 * Sent on every write. The apiserver's default drops a field the installed CRD does not know and
 * answers 201 (an NFS mover volume on a CRD without one is stored as `volumeSource: {}`, and every
 * mover Job then fails); Strict makes that write an error the caller sees.
 */
const WRITE_QUERY = { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" } as const;
/** The API server ends a watch after this long; the caller then re-lists and re-watches. */
const WATCH_TIMEOUT_SECONDS = "300";

export function createKubeClients(options: KubeClientOptions): KubeClients {
  const connection = createApiServerConnection(
    loadKubeCredentials(options.kubeconfigPath !== undefined ? { kubeconfigPath: options.kubeconfigPath } : { env: options.env ?? {} }),
    {
      requestTimeoutMs: options.requestTimeoutMs,
      credentialRefreshMs: options.credentialRefreshMs,
      ...(options.onRequest === undefined ? {} : { onRequest: options.onRequest }),
    },
  );
  return {
    objects: createKubeObjects(connection, { listPageSize: options.listPageSize, retry: options.retry }),
    server: connection.server,
    async getRaw(path, accept, signal) {
      const { status, text } = await connection.request({ verb: "get", path, accept, signal });
      return { status, text };
    },
    close: connection.close,
  };
}

/** The object verbs as requests on `connection`. */
export function createKubeObjects(connection: Pick<ApiServerConnection, "request">, options: { listPageSize: number; retry: RetryCurve }): KubeObjects {
  const { listPageSize } = options;

  /**
   * A call that must succeed: its answer's body, or a KubeApiError; retried on the curve, and on
   * 409 Conflict too when `retryConflict` (calls that re-send their whole intent).
   */
  function send(call: ApiServerCall, retryConflict = false): Promise<unknown> {
    return withRetry(
      async () => {
        const { status, body } = await connection.request(call);
        if (!isSuccess(status)) throw apiErrorOf(status, body, describeCall(call));
        return body;
      },
      call.signal,
      { ...options.retry, retryConflict },
    );
  }

  return {
    async get(kind, namespace, name, signal) {
      try {
        return (await send({ verb: "get", path: objectPath(kind, namespace, name), signal }, true)) as KubeObject;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },

    async list(kind, listOptions, signal) {
      const items: KubeObject[] = [];
      let continueToken: string | undefined;
      let resourceVersion = "";
      try {
        do {
          const query = {
            labelSelector: listOptions.labelSelector,
            fieldSelector: listOptions.fieldSelector,
            limit: String(listOptions.pageSize ?? listPageSize),
            continue: continueToken,
          };
          const page = (await send({ verb: "list", path: collectionPath(kind, listOptions.namespace), query, signal })) as {
            metadata?: { continue?: string; resourceVersion?: string };
            items?: KubeObject[];
          };
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
    },

    async create(object, signal) {
      const path = collectionPath(resourceKindOf(object), object.metadata.namespace);
      return (await send({ verb: "create", path, query: WRITE_QUERY, body: object, signal })) as KubeObject;
    },

    async replace(object, signal) {
      return (await send({ verb: "update", path: pathOf(object), query: WRITE_QUERY, body: object, signal })) as KubeObject;
    },

    async apply(object, applyOptions, signal) {
      const query = { ...WRITE_QUERY, ...(applyOptions.force ? { force: "true" } : {}) };
      // JSON is YAML, so the apply content type takes it as it is.
      const call: ApiServerCall = { verb: "patch", path: pathOf(object), query, body: object, contentType: APPLY_TYPE, signal };
      return (await send(call, applyOptions.force)) as KubeObject;
    },

    async delete(kind, namespace, name, preconditions, signal) {
      const body = { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", preconditions };
      try {
        await send({ verb: "delete", path: objectPath(kind, namespace, name), body, signal });
        return "deleted";
      } catch (error) {
        if (isNotFound(error)) return "not-found";
        if (isConflict(error)) return "precondition-failed";
        throw error;
      }
    },

    async watch(kind, watchOptions, onEvent, signal) {
      const call: ApiServerCall = {
        verb: "watch",
        path: collectionPath(kind, watchOptions.namespace),
        query: {
          watch: "true",
          allowWatchBookmarks: "true",
          timeoutSeconds: WATCH_TIMEOUT_SECONDS,
          labelSelector: watchOptions.labelSelector || undefined,
          fieldSelector: watchOptions.fieldSelector || undefined,
          resourceVersion: watchOptions.resourceVersion || undefined,
        },
        signal,
        onJsonLine: (value) => {
          const event = value as { type?: string; object?: KubeObject } | undefined;
          if (event?.type === "ERROR") {
            throw apiErrorOf((event.object as unknown as { code?: number })?.code ?? 500, event.object, describeCall(call));
          }
          if (event?.object && (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED" || event.type === "BOOKMARK")) {
            onEvent({ type: event.type, object: { ...event.object, apiVersion: kind.apiVersion, kind: kind.kind } });
          }
        },
      };
      let answer;
      try {
        answer = await connection.request(call);
      } catch (error) {
        // The caller ended the watch: that is how a watch is meant to end, not a failure.
        if (signal.aborted) return;
        throw error;
      }
      if (!isSuccess(answer.status)) throw apiErrorOf(answer.status, answer.body, describeCall(call));
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

function pathOf(object: KubeObject): string {
  return objectPath(resourceKindOf(object), object.metadata.namespace, object.metadata.name);
}

const isSuccess = (status: number): boolean => status >= 200 && status <= 299;

function apiErrorOf(status: number, body: unknown, what: string): KubeApiError {
  const statusBody = typeof body === "object" && body !== null ? (body as { reason?: string; message?: string }) : {};
  const message = statusBody.message ?? (typeof body === "string" ? body.slice(0, 300) : "");
  return new KubeApiError(status, statusBody.reason ?? "Unknown", `${what}: ${status} ${message}`.trim());
}
