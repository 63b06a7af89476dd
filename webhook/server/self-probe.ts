// Readiness check that the webhook port itself answers: a real TLS request to our own /healthz,
// the way the API server reaches us. It catches what in-process state cannot see (a listener that
// is not accepting, a handshake that fails with the certificate we think we serve, a blocked event
// loop). Instead of a CA bundle, which the server is not given, the probe pins the exact leaf it
// loaded: it trusts that certificate alone (a partial chain) and requires the peer to present the
// same fingerprint, so it is stricter than CA trust, with no disabled verification.

import { request } from "node:https";
import type { PeerCertificate } from "node:tls";
import type { ReadinessResult } from "./readiness.ts";
import type { TlsPair } from "./tls-reloader.ts";
import type { Logger } from "../domain/logger.ts";
import { healthzPath } from "./ops-routes.ts";

export type SelfProbeOptions = {
  /** Where the listener accepts; a wildcard host is probed on loopback. */
  host: string;
  port: () => number | undefined;
  /** The pair the listener serves now. */
  currentPair: () => Pick<TlsPair, "leafPem" | "fingerprint256">;
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
};

export type SelfProbe = {
  check(): ReadinessResult;
  /** Probes now and records the result. */
  probe(): Promise<ReadinessResult>;
  start(): void;
  stop(): void;
};

export function createSelfProbe(options: SelfProbeOptions): SelfProbe {
  let last: ReadinessResult = { ok: false, detail: "not probed yet" };
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<ReadinessResult> | undefined;

  async function probe(): Promise<ReadinessResult> {
    const port = options.port();
    if (port === undefined) return (last = { ok: false, detail: "listener not started" });
    const result = await probeOnce(loopbackFor(options.host), port, options.currentPair(), options.timeoutMs);
    if (last.ok !== result.ok) {
      if (result.ok) options.log.info({ port }, "webhook port answers its own probe");
      else options.log.warn({ port, detail: result.detail }, "webhook port does not answer its own probe");
    }
    last = result;
    return result;
  }

  function probeSerially(): Promise<ReadinessResult> {
    inFlight ??= probe().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    check: () => last,
    probe: probeSerially,
    start() {
      if (timer !== undefined) return;
      void probeSerially();
      timer = setInterval(() => void probeSerially(), options.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}

function loopbackFor(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

function probeOnce(host: string, port: number, pair: Pick<TlsPair, "leafPem" | "fingerprint256">, timeoutMs: number): Promise<ReadinessResult> {
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port,
        path: healthzPath,
        method: "GET",
        agent: false,
        ca: pair.leafPem,
        allowPartialTrustChain: true,
        // The chain check above proves possession of the pinned key; the name on it is irrelevant
        // for a loopback call, the fingerprint is what must match.
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          cert.fingerprint256 === pair.fingerprint256 ? undefined : new Error("peer presented a different certificate than the one loaded"),
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200 ? { ok: true } : { ok: false, detail: `${healthzPath} answered ${res.statusCode}` }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error) => resolve({ ok: false, detail: error.message }));
    req.end();
  });
}
