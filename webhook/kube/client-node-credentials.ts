import { KubeConfig } from "@kubernetes/client-node";
import type { RequestCredentials } from "./kube-credentials.ts";

// Kubeconfig users that need more than a file read (exec plugins, OIDC and cloud auth providers,
// impersonation), applied by @kubernetes/client-node as its own clients apply them. Imported by
// kube-credentials.ts only for such a user, and built as its own chunk, so a replica on a
// ServiceAccount token never loads the package.

type HttpsOptions = {
  headers?: Record<string, unknown>;
  auth?: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
};

/** One KubeConfig for the process, so an exec plugin's cached credential is reused. */
export function loadClientNodeCredentials(kubeconfigPath: string): () => Promise<RequestCredentials> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return async () => {
    const opts: HttpsOptions = { headers: {} };
    await kubeConfig.applyToHTTPSOptions(opts as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(opts.headers ?? {})) if (typeof value === "string") headers[key] = value;
    if (opts.auth) headers["authorization"] = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return {
      headers,
      tls: {
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.cert === undefined ? {} : { cert: opts.cert }),
        ...(opts.key === undefined ? {} : { key: opts.key }),
        ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
        ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      },
    };
  };
}
