// An ApiServerGet with a chosen bearer token, for tests that read the API server's signing keys
// as a particular ServiceAccount. pvc-guardian itself gets its ApiServerGet from the kube
// adapter (KubeClients.getRaw); this builds one on the same connection code, with a token and CA
// given directly instead of a kubeconfig.

import { createApiServerConnection } from "../../webhook/kube/api-server-connection.ts";
import type { ApiServerGet } from "../../webhook/server/bearer-auth.ts";

export type HttpsApiServerGetOptions = {
  /** `https://host:port` of the API server. */
  server: string;
  /** The CA that signed the API server's certificate (PEM). */
  caPem: string;
  /** The bearer token to send, read for every request so a new or rotated token is picked up. */
  token: () => string | Promise<string>;
  timeoutMs?: number;
};

export function createHttpsApiServerGet(options: HttpsApiServerGetOptions): ApiServerGet {
  const connection = createApiServerConnection(
    {
      server: options.server,
      current: async () => ({ headers: { authorization: `Bearer ${(await options.token()).trim()}` }, tls: { ca: options.caPem } }),
    },
    { requestTimeoutMs: options.timeoutMs ?? 5_000, credentialRefreshMs: 0 },
  );
  return async (path, accept, signal) => {
    const { status, text } = await connection.request({ verb: "get", path, accept, signal });
    return { status, text };
  };
}
