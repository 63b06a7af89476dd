import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import path from "node:path";
import { parse as parseYaml } from "yaml";

// Where the API server is and how to authenticate to it: the pod's ServiceAccount (in-cluster) or
// a kubeconfig file. The two forms a replica and a developer use (a ServiceAccount token file; a
// kubeconfig with a CA, a token or a client certificate) are read here directly. A kubeconfig user
// that needs more (an exec plugin, an auth provider, impersonation) is handed to
// @kubernetes/client-node's KubeConfig, imported only then: importing it builds every generated
// API model, which roughly doubled the resident memory of a replica that only needs a token file.

/** The in-cluster ServiceAccount mount, as the kubelet projects it. */
export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

export type TlsMaterial = {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
};

export type RequestCredentials = {
  /** Authorization and any other headers every request carries. */
  headers: Record<string, string>;
  tls: TlsMaterial;
};

export type KubeCredentials = {
  /** The API server URL, without a trailing slash. */
  server: string;
  /** Reads the credentials again (token files rotate); the caller decides how often. */
  current(): Promise<RequestCredentials>;
};

export type KubeCredentialOptions = {
  /** A kubeconfig file; without it the in-cluster ServiceAccount is used. */
  kubeconfigPath?: string;
  /** In-cluster only: where the token and CA are (tests). */
  serviceAccountDir?: string;
  /** In-cluster only: the environment, for the variables the kubelet sets in every container. */
  env?: Readonly<Record<string, string | undefined>>;
};

export function loadKubeCredentials(options: KubeCredentialOptions = {}): KubeCredentials {
  return options.kubeconfigPath !== undefined ? fromKubeconfig(options.kubeconfigPath) : inCluster(options);
}

function inCluster(options: KubeCredentialOptions): KubeCredentials {
  const env = options.env ?? {};
  const dir = options.serviceAccountDir ?? serviceAccountDir;
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"];
  if (!host || !port) throw new Error("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  const ca = readFileSync(path.join(dir, "ca.crt"));
  const tokenPath = path.join(dir, "token");
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    async current() {
      // The kubelet rotates the projected token in place; read it at use time.
      const token = readFileSync(tokenPath, "utf8").trim();
      return { headers: { authorization: `Bearer ${token}` }, tls: { ca } };
    },
  };
}

type NamedEntry<T> = { name?: unknown } & Partial<Record<"cluster" | "user" | "context", T>>;
type ClusterEntry = Record<string, unknown>;
type UserEntry = Record<string, unknown>;

/** The user fields read here; any other field hands the user to @kubernetes/client-node. */
const directUserFields = new Set([
  "token",
  "tokenFile",
  "client-certificate",
  "client-certificate-data",
  "client-key",
  "client-key-data",
  "username",
  "password",
]);

function fromKubeconfig(kubeconfigPath: string): KubeCredentials {
  const document = parseYaml(readFileSync(kubeconfigPath, "utf8")) as Record<string, unknown> | null;
  if (typeof document !== "object" || document === null) throw new Error(`${kubeconfigPath} is not a kubeconfig`);
  const baseDir = path.dirname(path.resolve(kubeconfigPath));
  const contextName = document["current-context"];
  const context = findNamed<Record<string, unknown>>(document["contexts"], "context", contextName);
  if (!context) throw new Error("the kubeconfig names no current context");
  const cluster = findNamed<ClusterEntry>(document["clusters"], "cluster", context["cluster"]);
  if (!cluster || typeof cluster["server"] !== "string") throw new Error("the kubeconfig names no current cluster");
  const user = findNamed<UserEntry>(document["users"], "user", context["user"]) ?? {};
  const server = cluster["server"].replace(/\/+$/, "");

  const isDirect = Object.keys(user).every((field) => directUserFields.has(field));
  if (!isDirect) {
    // One KubeConfig for the process, so an exec plugin's cached credential is reused.
    let loaded: Promise<() => Promise<RequestCredentials>> | undefined;
    return {
      server,
      current: async () => {
        loaded ??= import("./client-node-credentials.ts").then(({ loadClientNodeCredentials }) => loadClientNodeCredentials(kubeconfigPath));
        return (await loaded)();
      },
    };
  }

  const tls: TlsMaterial = {
    ...fileOrData(baseDir, cluster, "certificate-authority", "ca"),
    ...(cluster["insecure-skip-tls-verify"] === true ? { rejectUnauthorized: false } : {}),
    ...(typeof cluster["tls-server-name"] === "string" ? { servername: cluster["tls-server-name"] } : {}),
    ...fileOrData(baseDir, user, "client-certificate", "cert"),
    ...fileOrData(baseDir, user, "client-key", "key"),
  };
  return {
    server,
    async current() {
      const headers: Record<string, string> = {};
      if (typeof user["token"] === "string" && user["token"] !== "") headers["authorization"] = `Bearer ${user["token"]}`;
      else if (typeof user["tokenFile"] === "string")
        headers["authorization"] = `Bearer ${readFileSync(path.resolve(baseDir, user["tokenFile"]), "utf8").trim()}`;
      else if (typeof user["username"] === "string" && typeof user["password"] === "string") {
        headers["authorization"] = `Basic ${Buffer.from(`${user["username"]}:${user["password"]}`).toString("base64")}`;
      }
      return { headers, tls };
    },
  };
}

function findNamed<T>(list: unknown, field: "cluster" | "user" | "context", name: unknown): T | undefined {
  if (!Array.isArray(list) || typeof name !== "string") return undefined;
  const entry = (list as NamedEntry<T>[]).find((item) => typeof item === "object" && item !== null && item.name === name);
  return entry?.[field];
}

/** `<field>-data` (base64) or `<field>` (a file path, relative to the kubeconfig). */
function fileOrData(baseDir: string, entry: Record<string, unknown>, field: string, as: keyof TlsMaterial): TlsMaterial {
  const data = entry[`${field}-data`];
  if (typeof data === "string" && data !== "") return { [as]: Buffer.from(data, "base64") };
  const file = entry[field];
  if (typeof file === "string" && file !== "") return { [as]: readFileSync(path.resolve(baseDir, file)) };
  return {};
}
