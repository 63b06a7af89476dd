import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createCertificateAuthority, issueServerCertificate } from "../../../certs/pki.ts";
import { createApiServerConnection, type ApiServerConnection, type KubeRequestRecord, type KubeVerb } from "../../../webhook/kube/api-server-connection.ts";
import { KubeApiError } from "../../../webhook/kube/kube-objects.ts";

// The one request function of the kube adapter against a small HTTPS server on 127.0.0.1 that
// plays the API server: it answers by path, and the suite closes it and its sockets at the end.

const TOKEN = "test-token";

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => resolve(text));
  });
}

async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "https://127.0.0.1");
  const body = await readBody(req);
  const json = (status: number, value: unknown) => void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
  switch (url.pathname) {
    case "/echo":
      return json(201, {
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        accept: req.headers.accept,
        contentType: req.headers["content-type"] ?? null,
        contentLength: req.headers["content-length"] ?? null,
        body,
      });
    case "/missing":
      return json(404, { kind: "Status", reason: "NotFound", message: 'thing "x" not found' });
    case "/plain":
      return void res.writeHead(200, { "content-type": "text/plain" }).end("not json");
    case "/empty":
      return void res.writeHead(200).end();
    case "/hang":
      return; // Never answers; the suite's end closes the socket.
    case "/stream":
      // A line split across writes, a blank line and a line that is not JSON.
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"n":1}\n{"n"');
      setTimeout(() => res.end(':2}\n\nnot json\n{"unterminated":'), 20);
      return;
    case "/stream-slow":
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"n":1}\n');
      setTimeout(() => res.end('{"n":2}\n'), 400);
      return;
    case "/stream-open":
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"n":1}\n');
      return; // Stays open; the suite's end closes the socket.
    default:
      return json(410, { kind: "Status", reason: "Expired", message: `no ${url.pathname}` });
  }
}

describe("createApiServerConnection", () => {
  let dir: string;
  let server: Server;
  let serverUrl: string;
  let caPem: string;
  const connections: ApiServerConnection[] = [];

  /** A connection to the test server, and the requests it reported. */
  function connect(requestTimeoutMs = 2_000): { connection: ApiServerConnection; records: KubeRequestRecord[] } {
    const records: KubeRequestRecord[] = [];
    const connection = createApiServerConnection(
      { server: serverUrl, current: async () => ({ headers: { authorization: `Bearer ${TOKEN}` }, tls: { ca: caPem } }) },
      { requestTimeoutMs, credentialRefreshMs: 60_000, onRequest: (record) => records.push(record) },
    );
    connections.push(connection);
    return { connection, records };
  }

  const verbsAndCodes = (records: KubeRequestRecord[]) => records.map(({ verb, code, path }) => ({ verb, code, path }));

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-api-server-connection-"));
    const ca = await createCertificateAuthority(path.join(dir, "ca"), { commonName: "test CA" });
    const issued = await issueServerCertificate(ca, path.join(dir, "server"), { commonName: "kube-apiserver", ipAddresses: ["127.0.0.1"] });
    caPem = ca.certPem;
    server = createServer({ cert: await readFile(issued.certPath), key: await readFile(issued.keyPath) }, (req, res) => void answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    serverUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const connection of connections) connection.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("sends the credentials, the query without undefined parameters and a JSON body, and answers with the parsed body", async () => {
    const { connection, records } = connect();
    const answer = await connection.request({ verb: "create", path: "/echo", query: { a: "1", skipped: undefined, b: "x y" }, body: { name: "wörld" } });
    assert.equal(answer.status, 201);
    assert.deepEqual(answer.body, {
      method: "POST",
      url: "/echo?a=1&b=x+y",
      authorization: `Bearer ${TOKEN}`,
      accept: "application/json",
      contentType: "application/json",
      contentLength: String(Buffer.byteLength('{"name":"wörld"}')),
      body: '{"name":"wörld"}',
    });
    assert.deepEqual(JSON.parse(answer.text), answer.body);
    assert.deepEqual(verbsAndCodes(records), [{ verb: "create", code: "201", path: "/echo" }]);
    assert.ok(records[0]!.durationMs >= 0);
  });

  it("reuses read credentials for as long as told, and reads them for every request when told to", async () => {
    /** The Authorization headers two requests send when every read of the credentials gives a new token. */
    const authorizationsSent = async (options: { credentialRefreshMs: number }) => {
      let reads = 0;
      const connection = createApiServerConnection(
        { server: serverUrl, current: async () => ({ headers: { authorization: `Bearer token-${++reads}` }, tls: { ca: caPem } }) },
        { requestTimeoutMs: 5_000, ...options },
      );
      connections.push(connection);
      const answers = [await connection.request({ verb: "get", path: "/echo" }), await connection.request({ verb: "get", path: "/echo" })];
      return answers.map((answer) => (answer.body as { authorization: string }).authorization);
    };
    assert.deepEqual(await authorizationsSent({ credentialRefreshMs: 60_000 }), ["Bearer token-1", "Bearer token-1"]);
    assert.deepEqual(await authorizationsSent({ credentialRefreshMs: 0 }), ["Bearer token-1", "Bearer token-2"]);
  });

  const methods: [KubeVerb, string][] = [
    ["get", "GET"],
    ["list", "GET"],
    ["update", "PUT"],
    ["patch", "PATCH"],
    ["delete", "DELETE"],
  ];
  for (const [verb, method] of methods) {
    it(`sends ${verb} as ${method} and reports it as ${verb}`, async () => {
      const { connection, records } = connect();
      const answer = await connection.request({ verb, path: "/echo" });
      assert.equal((answer.body as { method: string }).method, method);
      assert.equal((answer.body as { contentType: string | null }).contentType, null);
      assert.deepEqual(verbsAndCodes(records), [{ verb, code: "201", path: "/echo" }]);
    });
  }

  it("sends a chosen body media type and Accept header", async () => {
    const { connection } = connect();
    const answer = await connection.request({
      verb: "patch",
      path: "/echo",
      body: {},
      contentType: "application/apply-patch+yaml",
      accept: "application/jwk-set+json",
    });
    assert.equal((answer.body as { contentType: string }).contentType, "application/apply-patch+yaml");
    assert.equal((answer.body as { accept: string }).accept, "application/jwk-set+json");
  });

  it("answers a failure status without throwing, with the Status body parsed", async () => {
    const { connection, records } = connect();
    const answer = await connection.request({ verb: "get", path: "/missing" });
    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, { kind: "Status", reason: "NotFound", message: 'thing "x" not found' });
    assert.deepEqual(verbsAndCodes(records), [{ verb: "get", code: "404", path: "/missing" }]);
  });

  it("gives the text as the body when the answer is not JSON, and no body when it is empty", async () => {
    const { connection } = connect();
    assert.deepEqual(await connection.request({ verb: "get", path: "/plain" }), { status: 200, body: "not json", text: "not json" });
    assert.deepEqual(await connection.request({ verb: "get", path: "/empty" }), { status: 200, body: undefined, text: "" });
  });

  it("rejects with an Unreachable KubeApiError of status 0 when nothing answers, and reports the code error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const records: KubeRequestRecord[] = [];
    const connection = createApiServerConnection(
      { server: `https://127.0.0.1:${port}`, current: async () => ({ headers: {}, tls: { ca: caPem } }) },
      { requestTimeoutMs: 5_000, credentialRefreshMs: 60_000, onRequest: (record) => records.push(record) },
    );
    connections.push(connection);
    await assert.rejects(connection.request({ verb: "list", path: "/api/v1/pods" }), (error: unknown) => {
      assert.ok(error instanceof KubeApiError);
      assert.equal(error.status, 0);
      assert.equal(error.reason, "Unreachable");
      assert.match(error.message, /^GET \/api\/v1\/pods: /);
      return true;
    });
    assert.deepEqual(verbsAndCodes(records), [{ verb: "list", code: "error", path: "/api/v1/pods" }]);
  });

  it("ends a request at the request timeout, with the timeout as the reason", async () => {
    const { connection, records } = connect(100);
    await assert.rejects(connection.request({ verb: "get", path: "/hang" }), { name: "TimeoutError" });
    assert.deepEqual(verbsAndCodes(records), [{ verb: "get", code: "error", path: "/hang" }]);
  });

  it("ends a request when the caller's signal aborts, with the caller's reason", async () => {
    const { connection, records } = connect();
    const controller = new AbortController();
    const pending = connection.request({ verb: "get", path: "/hang", signal: controller.signal });
    setTimeout(() => controller.abort(new Error("admission deadline")), 50);
    await assert.rejects(pending, /admission deadline/);
    assert.deepEqual(verbsAndCodes(records), [{ verb: "get", code: "error", path: "/hang" }]);
  });

  it("streams a 2xx answer as JSON lines, reported once when it opens", async () => {
    const { connection, records } = connect();
    const values: unknown[] = [];
    const answer = await connection.request({ verb: "watch", path: "/stream", onJsonLine: (value) => values.push(value) });
    assert.deepEqual(values, [{ n: 1 }, { n: 2 }, "not json"]);
    assert.deepEqual(answer, { status: 200, body: undefined, text: "" });
    assert.deepEqual(verbsAndCodes(records), [{ verb: "watch", code: "200", path: "/stream" }]);
  });

  it("lets a stream outlast the request timeout", async () => {
    const { connection } = connect(100);
    const values: unknown[] = [];
    await connection.request({ verb: "watch", path: "/stream-slow", onJsonLine: (value) => values.push(value) });
    assert.deepEqual(values, [{ n: 1 }, { n: 2 }]);
  });

  it("stops a stream when its reader throws, and rejects with that error", async () => {
    const { connection, records } = connect();
    const stop = new KubeApiError(410, "Expired", "too old resource version");
    await assert.rejects(
      connection.request({
        verb: "watch",
        path: "/stream-open",
        onJsonLine: () => {
          throw stop;
        },
      }),
      (error: unknown) => error === stop,
    );
    assert.deepEqual(verbsAndCodes(records), [{ verb: "watch", code: "200", path: "/stream-open" }]);
  });

  it("ends a stream at the caller's signal", async () => {
    const { connection } = connect();
    const controller = new AbortController();
    const pending = connection.request({
      verb: "watch",
      path: "/stream-open",
      signal: controller.signal,
      onJsonLine: () => controller.abort(new Error("stopping")),
    });
    await assert.rejects(pending, /stopping/);
  });

  it("collects a failed answer to a streamed request like any other", async () => {
    const { connection, records } = connect();
    const answer = await connection.request({ verb: "watch", path: "/expired", onJsonLine: () => assert.fail("a failure is not streamed") });
    assert.equal(answer.status, 410);
    assert.deepEqual(answer.body, { kind: "Status", reason: "Expired", message: "no /expired" });
    assert.deepEqual(verbsAndCodes(records), [{ verb: "watch", code: "410", path: "/expired" }]);
  });
});
