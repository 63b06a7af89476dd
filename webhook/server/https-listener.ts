// The HTTPS socket under a Hono app: @hono/node-server over node:https, TLS 1.2 minimum, the
// certificate swapped in place when the reloader finds a new pair (new connections get it;
// established ones keep theirs), and a shutdown that lets in-flight reviews finish.

import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.ts';
import { minTlsVersion, type TlsReloader } from './tls-reloader.ts';

export type FetchHandler = (request: Request, env: HttpBindings) => Response | Promise<Response>;

export type HttpsListenerOptions = {
  fetch: FetchHandler;
  tls: TlsReloader;
  host: string;
  /** 0 picks a free port (tests, the benchmark). */
  port: number;
  log: Logger;
  /** Idle keep-alive sockets are closed after this long; Node's own default when absent. */
  keepAliveTimeoutMs?: number;
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
  const { tls, log } = options;
  const initial = tls.current();
  const server = createAdaptorServer({
    // Only node:https is used here, so the bindings are always the HTTP/1 pair.
    fetch: (request, env) => options.fetch(request, env as HttpBindings),
    createServer,
    serverOptions: { cert: initial.cert, key: initial.key, minVersion: minTlsVersion },
  }) as Server;
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;

  let isClosing = false;
  // Prepended so it runs before the adaptor can write the head of a synchronous response.
  server.prependListener('request', (_req, res) => {
    if (isClosing) res.setHeader('Connection', 'close');
  });
  server.on('tlsClientError', (error, socket) => {
    log.debug({ err: error.message, remoteAddress: socket.remoteAddress }, 'tls handshake failed');
  });

  const unsubscribe = tls.subscribe((pair) => {
    server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: minTlsVersion });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: options.host, port }, 'https listener started');

  let closed: Promise<void> | undefined;
  return {
    port,
    get isClosing() {
      return isClosing;
    },
    close(graceMs) {
      closed ??= new Promise<void>((resolve) => {
        isClosing = true;
        unsubscribe();
        const forceTimer = setTimeout(() => {
          log.warn({ port, graceMs }, 'connections still open after the grace period; closing them');
          server.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearTimeout(forceTimer);
          log.info({ port }, 'https listener closed');
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
