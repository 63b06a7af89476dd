// HTTPS (and plain HTTP) requests from tests to servers on loopback, trusting only the test CA
// given: never `rejectUnauthorized: false`. Each answer is read whole, with the serving
// certificate's serial number and whether the connection was reused.

import { request as httpRequest } from "node:http";
import { Agent, request } from "node:https";
import type { TLSSocket } from "node:tls";

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

/**
 * A POST with `content-type: application/json`: a string or Buffer is sent as it is (for bodies
 * that are malformed or oversized on purpose), anything else as its JSON text.
 */
export function postJson(
  ca: string,
  port: number,
  pathName: string,
  body: unknown,
  options: Pick<HttpsCall, "agent" | "isChunked"> = {},
): Promise<HttpsAnswer> {
  const payload = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return callHttps(ca, port, { ...options, method: "POST", path: pathName, body: payload, headers: { "content-type": "application/json" } });
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
