// A small HTTP proxy on loopback between the S3 client and the real S3 server, that passes
// requests through until told to misbehave: delay the answer, cut the body midway, throttle
// (503 SlowDown), drop the continuation token from a truncated listing page, or send a ranged
// body shorter than asked for.

import http from "node:http";
import type { AddressInfo } from "node:net";

export type S3Fault =
  | { kind: "none" }
  | { kind: "delay"; delayMs: number }
  | { kind: "cut-body" }
  | { kind: "throttle" }
  | { kind: "truncated-listing-without-token" }
  | { kind: "short-range-body" };

export type S3FaultProxy = {
  endpoint: string;
  setFault(fault: S3Fault): void;
  /** Requests seen, as `METHOD path?query`. */
  requests: string[];
  close(): Promise<void>;
};

export async function startS3FaultProxy(upstream: { host: string; port: number }): Promise<S3FaultProxy> {
  let fault: S3Fault = { kind: "none" };
  const requests: string[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const active = fault;
    if (active.kind === "throttle") {
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`;
      response.writeHead(503, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
      response.end(body);
      return;
    }
    const forward = () => {
      const upstreamRequest = http.request(
        { host: upstream.host, port: upstream.port, method: request.method, path: request.url, headers: request.headers },
        (upstreamResponse) => {
          const chunks: Buffer[] = [];
          upstreamResponse.on("data", (chunk: Buffer) => chunks.push(chunk));
          upstreamResponse.on("end", () => {
            let body = Buffer.concat(chunks);
            const headers = { ...upstreamResponse.headers };
            const isListing = request.url?.includes("list-type=2") ?? false;
            if (active.kind === "truncated-listing-without-token" && isListing) {
              body = Buffer.from(
                body
                  .toString("utf8")
                  .replace(/<IsTruncated>false<\/IsTruncated>/, "<IsTruncated>true</IsTruncated>")
                  .replace(/<NextContinuationToken>[^<]*<\/NextContinuationToken>/, ""),
              );
            }
            if (active.kind === "short-range-body" && request.headers.range !== undefined && upstreamResponse.statusCode === 206) {
              body = body.subarray(0, Math.max(0, body.length - 7));
            }
            headers["content-length"] = String(body.length);
            if (active.kind === "cut-body" && !isListing && body.length > 8) {
              // Promise the whole body, send half, then close the connection.
              response.writeHead(upstreamResponse.statusCode ?? 502, headers);
              response.write(body.subarray(0, Math.floor(body.length / 2)));
              response.socket?.destroy();
              return;
            }
            response.writeHead(upstreamResponse.statusCode ?? 502, headers);
            response.end(body);
          });
        },
      );
      upstreamRequest.on("error", () => response.socket?.destroy());
      request.pipe(upstreamRequest);
    };
    if (active.kind === "delay") {
      const timer = setTimeout(() => {
        timers.delete(timer);
        forward();
      }, active.delayMs);
      timers.add(timer);
    } else {
      forward();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `127.0.0.1:${port}`,
    setFault(next) {
      fault = next;
    },
    requests,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
