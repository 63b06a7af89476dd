// Certificates and an HTTPS client for the server's integration tests: a throwaway CA from
// certs/pki.ts, serving certificates for 127.0.0.1, and requests that trust only that CA.

import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority, type IssuedCertificate } from "../../../certs/pki.ts";

export type TestPki = {
  dir: string;
  ca: CertificateAuthority;
  issue(name: string): Promise<IssuedCertificate>;
  cleanup(): Promise<void>;
};

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-server-"));
  const ca = await createCertificateAuthority(path.join(dir, "ca"), { commonName: "pvc-guardian test CA" });
  return {
    dir,
    ca,
    issue: (name) =>
      issueServerCertificate(ca, path.join(dir, "issued"), { name, commonName: "pvc-guardian", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export type HttpsAnswer = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  serialNumber: string;
  reusedSocket: boolean;
};

export type HttpsCall = {
  method?: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  agent?: Agent | false;
  /** Sends the body with chunked transfer encoding instead of a Content-Length. */
  isChunked?: boolean;
};

export function callHttps(ca: string, port: number, call: HttpsCall): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...call.headers };
    if (call.body !== undefined && !call.isChunked) headers["content-length"] = String(Buffer.byteLength(call.body));
    const req = request({ host: "127.0.0.1", port, method: call.method ?? "GET", path: call.path, headers, ca, agent: call.agent ?? false }, (res) => {
      // Read now: the socket is detached from the response once it ends.
      const serialNumber = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString("utf8"),
          serialNumber,
          reusedSocket: req.reusedSocket,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    if (call.body !== undefined) {
      if (call.isChunked) {
        // Several writes without a length: Node sends them chunked.
        const body = Buffer.from(call.body);
        const step = 64 * 1024;
        for (let offset = 0; offset < body.length; offset += step) req.write(body.subarray(offset, offset + step));
      } else {
        req.write(call.body);
      }
    }
    req.end();
  });
}

/** A GET over plain HTTP, for the operations port. */
export function callHttp(port: number, pathName: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: pathName, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Serial numbers compared without case or leading zeros, which printers disagree on. */
export function normaliseSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+/, "");
}
