// Serving certificate and key read from files and reloaded when they change, so a certificate
// rotated by cert-manager (or anything writing the Secret) is used without a restart. Kubernetes
// updates Secret volumes by swapping the `..data` symlink; stat() follows the links, so the swap
// shows up as a new inode and mtime on the files we watch. Polling instead of fs.watch: watches on
// symlinked Secret volumes miss the swap on some filesystems, and a poll every few seconds costs
// two stat calls.

import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { Logger } from "../domain/logger.ts";

export type TlsPair = {
  cert: string;
  key: string;
  serialNumber: string;
  fingerprint256: string;
  notAfterMs: number;
  /** The leaf certificate, for clients that pin it (the self-probe). */
  leafPem: string;
};

export type TlsReloaderOptions = {
  certPath: string;
  keyPath: string;
  pollIntervalMs: number;
  log: Logger;
  /** Called after a changed, valid pair has replaced the previous one (not for the first load). */
  onReload?: (pair: TlsPair) => void;
  /** Called when a changed pair was rejected; the previous pair stays in use. */
  onReloadFailure?: (error: Error) => void;
};

export type TlsReloader = {
  current(): TlsPair;
  secureContext(): SecureContext;
  /** Expiry of the certificate in use, for the notAfter gauge. */
  readonly notAfterMs: number;
  /** Registers a listener for swaps; returns a function that removes it. */
  subscribe(listener: (pair: TlsPair) => void): () => void;
  /** Checks the files now instead of waiting for the next poll; resolves true when it swapped. */
  checkNow(): Promise<boolean>;
  stop(): void;
};

export const minTlsVersion = "TLSv1.2";

/**
 * TLS 1.3's suites (all AEAD) and, for TLS 1.2, ECDHE key exchange with AES-GCM or
 * ChaCha20-Poly1305 only: no CBC (Lucky13-style padding oracles), no static RSA key exchange (no
 * forward secrecy). Every client Kubernetes ships (Go's crypto/tls) offers these.
 */
export const tlsCipherSuites = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * The secure-context options, the same at start and on every certificate swap (setSecureContext
 * replaces the whole context, so anything left out here would silently fall back to Node's
 * defaults after the first renewal).
 */
export function secureContextOptions(pair: Pick<TlsPair, "cert" | "key">, clientCaPem?: string): SecureContextOptions {
  return {
    cert: pair.cert,
    key: pair.key,
    minVersion: minTlsVersion,
    ciphers: tlsCipherSuites,
    honorCipherOrder: true,
    ...(clientCaPem !== undefined ? { ca: clientCaPem } : {}),
  };
}

/** Loads the pair (throwing when it is missing or invalid: no server without a certificate) and starts polling. */
export async function createTlsReloader(options: TlsReloaderOptions): Promise<TlsReloader> {
  const { certPath, keyPath, log } = options;
  const first = await readPair(certPath, keyPath);
  let pair = parsePair(first.cert, first.key);
  let context = createSecureContext(secureContextOptions(pair));
  let contentHash = first.hash;
  let seenSignature = first.signature;
  const listeners = new Set<(pair: TlsPair) => void>();
  logLoaded(log, "serving certificate loaded", pair, certPath);

  let checking: Promise<boolean> | undefined;
  async function check(): Promise<boolean> {
    const signature = await statSignature(certPath, keyPath).catch(() => undefined);
    // Unchanged files, or a missing file mid-swap: nothing to do until the next poll.
    if (signature === undefined || signature === seenSignature) return false;
    let read: Awaited<ReturnType<typeof readPair>>;
    try {
      read = await readPair(certPath, keyPath);
    } catch {
      return false;
    }
    // Record what we looked at so a broken pair is reported once, not on every poll.
    seenSignature = read.signature;
    if (read.hash === contentHash) return false;
    let next: TlsPair;
    let nextContext: SecureContext;
    try {
      next = parsePair(read.cert, read.key);
      nextContext = createSecureContext(secureContextOptions(next));
    } catch (error) {
      const reason = error instanceof Error ? error : new Error(String(error));
      log.warn({ certPath, keyPath, err: reason, serialNumber: pair.serialNumber }, "changed serving certificate rejected; keeping the one in use");
      options.onReloadFailure?.(reason);
      return false;
    }
    pair = next;
    context = nextContext;
    contentHash = read.hash;
    logLoaded(log, "serving certificate reloaded", pair, certPath);
    options.onReload?.(pair);
    for (const listener of listeners) listener(pair);
    return true;
  }

  function checkOnce(): Promise<boolean> {
    checking ??= check().finally(() => {
      checking = undefined;
    });
    return checking;
  }

  const timer = setInterval(() => {
    checkOnce().catch((error: unknown) => log.error({ err: error }, "serving certificate check failed"));
  }, options.pollIntervalMs);
  timer.unref();

  return {
    current: () => pair,
    secureContext: () => context,
    get notAfterMs() {
      return pair.notAfterMs;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    checkNow: checkOnce,
    stop() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}

/** Validates a PEM pair: a parseable certificate whose public key matches the private key. */
export function parsePair(cert: string, key: string): TlsPair {
  const leafPem = firstPemBlock(cert);
  if (leafPem === undefined) throw new Error("certificate file holds no PEM certificate");
  const x509 = new X509Certificate(leafPem);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new Error(`key file holds no usable private key: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error("private key does not match the certificate");
  return {
    cert,
    key,
    leafPem,
    serialNumber: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    notAfterMs: Date.parse(x509.validTo),
  };
}

async function readPair(certPath: string, keyPath: string) {
  // stat before reading: if the files change in between, the next poll sees a new signature and
  // reads again.
  const signature = await statSignature(certPath, keyPath);
  const [cert, key] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
  const hash = createHash("sha256").update(cert).update("\0").update(key).digest("hex");
  return { cert, key, hash, signature };
}

async function statSignature(certPath: string, keyPath: string): Promise<string> {
  const [certStat, keyStat] = await Promise.all([stat(certPath), stat(keyPath)]);
  return `${certStat.dev}:${certStat.ino}:${certStat.size}:${certStat.mtimeMs}|${keyStat.dev}:${keyStat.ino}:${keyStat.size}:${keyStat.mtimeMs}`;
}

function firstPemBlock(text: string): string | undefined {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  return match?.[0];
}

function logLoaded(log: Logger, message: string, pair: TlsPair, certPath: string): void {
  const level = pair.notAfterMs <= Date.now() ? "warn" : "info";
  log[level](
    { certPath, serialNumber: pair.serialNumber, notAfter: new Date(pair.notAfterMs).toISOString() },
    pair.notAfterMs <= Date.now() ? `${message}, but it has expired` : message,
  );
}
