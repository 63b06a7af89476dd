// The sockets under the Hono apps: @hono/node-server over node:https for the webhook port (and
// node:http for the operations port), with every transport bound set: TLS 1.2+ with AEAD suites
// only and no client-initiated renegotiation, a handshake, header and request timeout, an idle
// timeout and a connection cap. The certificate is swapped in place when the reloader finds a new
// pair (new connections get it; established ones keep theirs), with the same TLS options as at
// start, and a shutdown lets in-flight reviews finish.

import { createAdaptorServer, type HttpBindings } from "@hono/node-server";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../domain/logger.ts";
import { secureContextOptions, type TlsReloader } from "./tls-reloader.ts";

export type FetchHandler = (request: Request, env: HttpBindings) => Response | Promise<Response>;

/** Bounds on what a connection may hold; their values come from config.ts, explained there. */
export type TransportLimits = {
  /** A TCP connection that has not finished the TLS handshake by then is closed. */
  handshakeTimeoutMs: number;
  /** The request line and headers must arrive within this long of the request's start. */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this long. */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this long. */
  keepAliveTimeoutMs: number;
  /** Connections beyond this many are closed as they arrive. */
  maxConnections: number;
};

export type HttpsListenerOptions = {
  fetch: FetchHandler;
  tls: TlsReloader;
  host: string;
  /** 0 picks a free port (tests, the benchmark). */
  port: number;
  log: Logger;
  limits: TransportLimits;
  /**
   * The CA that signs the clients allowed to authenticate with a certificate, read at start and at
   * each certificate swap. When set, the listener asks for a client certificate and verifies it,
   * but does not refuse the handshake without one: the kubelet's probes, the self-probe and the
   * read API present none. The admission routes check `socket.authorized` themselves.
   */
  clientCaPem?: () => string;
};

export type HttpsListener = {
  readonly port: number;
  /** True from the moment close() is called. */
  readonly isClosing: boolean;
  /**
   * Stops accepting connections, closes idle keep-alive sockets, lets in-flight requests finish
   * (their responses carry `Connection: close`), and resolves when every connection has ended or
   * after `graceMs`, when the remaining connections are cut.
   */
  close(graceMs: number): Promise<void>;
};

export async function startHttpsListener(options: HttpsListenerOptions): Promise<HttpsListener> {
  const { tls, log, limits } = options;
  const clientCa = options.clientCaPem;
  const server = createAdaptorServer({
    // Only node:https is used here, so the bindings are always the HTTP/1 pair.
    fetch: (request, env) => options.fetch(request, env as HttpBindings),
    createServer: createHttpsServer,
    serverOptions: {
      ...secureContextOptions(tls.current(), clientCa?.()),
      handshakeTimeout: limits.handshakeTimeoutMs,
      ...(clientCa !== undefined ? { requestCert: true, rejectUnauthorized: false } : {}),
      ...connectionCheckOptions(limits),
    },
  }) as HttpsServer;
  applyLimits(server, limits);

  server.on("secureConnection", (socket: TLSSocket) => {
    // TLS 1.2 renegotiation started by the client costs the server a full handshake per request
    // of it, and nothing we serve needs it. (TLS 1.3 has none.)
    socket.disableRenegotiation();
  });
  server.on("tlsClientError", (error, socket) => {
    log.debug({ err: error, remoteAddress: socket.remoteAddress }, "tls handshake failed");
  });

  const unsubscribe = tls.subscribe((pair) => {
    try {
      server.setSecureContext(secureContextOptions(pair, clientCa?.()));
    } catch (error) {
      log.error({ err: error }, "the new serving certificate could not be put in use; keeping the previous one");
    }
  });
  return listen(server, options.host, options.port, log, "https", unsubscribe);
}

export type HttpListenerOptions = {
  fetch: FetchHandler;
  host: string;
  port: number;
  log: Logger;
  limits: TransportLimits;
};

/** Plain HTTP, for the operations port: the same limits, no TLS. */
export async function startHttpListener(options: HttpListenerOptions): Promise<HttpsListener> {
  const { limits } = options;
  const server = createAdaptorServer({
    fetch: (request, env) => options.fetch(request, env as HttpBindings),
    createServer: createHttpServer,
    serverOptions: connectionCheckOptions(limits),
  }) as HttpServer;
  applyLimits(server, limits);
  return listen(server, options.host, options.port, options.log, "http", () => {});
}

/**
 * Node checks the header and request timeouts on a timer (every 30 s by default, so a 10 s
 * timeout could take 40 s to act); check often enough that they act close to their value.
 */
function connectionCheckOptions(limits: TransportLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

function applyLimits(server: HttpServer | HttpsServer, limits: TransportLimits): void {
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // A socket with no traffic at all for longer than any phase allows (a client that stops reading
  // our answer, say) is cut too; longer than keep-alive so idle connections stay the client's to
  // close.
  server.timeout = limits.keepAliveTimeoutMs + limits.requestTimeoutMs;
}

async function listen(
  server: HttpServer | HttpsServer,
  host: string,
  requestedPort: number,
  log: Logger,
  scheme: string,
  onClose: () => void,
): Promise<HttpsListener> {
  let isClosing = false;
  // Prepended so it runs before the adaptor can write the head of a synchronous response.
  server.prependListener("request", (_req, res) => {
    if (isClosing) res.setHeader("Connection", "close");
  });
  server.on("drop", (data) => {
    log.debug({ remoteAddress: data?.remoteAddress }, "connection refused: at the connection limit");
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(requestedPort, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host, port, scheme }, `${scheme} listener started`);

  let closed: Promise<void> | undefined;
  return {
    port,
    get isClosing() {
      return isClosing;
    },
    close(graceMs) {
      closed ??= new Promise<void>((resolve) => {
        isClosing = true;
        onClose();
        const forceTimer = setTimeout(() => {
          log.warn({ port, graceMs }, "connections still open after the grace period; closing them");
          server.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearTimeout(forceTimer);
          log.info({ port, scheme }, `${scheme} listener closed`);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
