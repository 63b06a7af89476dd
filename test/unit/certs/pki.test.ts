import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, request } from "node:https";
import type { Server } from "node:https";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  createCertificateAuthority,
  issueClientCertificate,
  issueServerCertificate,
  type CertificateAuthority,
  type IssuedCertificate,
} from "../../../certs/pki.ts";

type Outcome = { ok: true; status: number; body: string } | { ok: false; code: string };

function fetchOverTls(port: number, options: { ca: string; servername?: string; cert?: string; key?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/", method: "GET", ca: options.ca, cert: options.cert, key: options.key, servername: options.servername },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => resolve({ ok: false, code: error.code ?? error.message }));
    req.end();
  });
}

describe("certs/pki", () => {
  let dir: string;
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let serving: IssuedCertificate;
  let server: Server;
  let port: number;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "pki-test-"));
    ca = await createCertificateAuthority(path.join(dir, "ca"), { commonName: "test CA" });
    // Same subject as the real CA: trust must come from the key, not the name.
    otherCa = await createCertificateAuthority(path.join(dir, "other"), { commonName: "test CA" });
    serving = await issueServerCertificate(ca, path.join(dir, "server"), {
      commonName: "pvc-guardian",
      dnsNames: ["localhost", "pvc-guardian.pvc-guardian.svc"],
      ipAddresses: ["127.0.0.1"],
    });
    server = createServer(
      { cert: await readFile(serving.certPath), key: await readFile(serving.keyPath), ca: ca.certPem, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as import("node:tls").TLSSocket;
        const peer = socket.getPeerCertificate();
        const who = socket.authorized ? `client ${peer.subject?.CN} of ${String(peer.subject?.O)}` : "anonymous";
        res.end(who);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    port = address.port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it("issues a server certificate that a client trusting only the CA accepts over HTTPS", async () => {
    const outcome = await fetchOverTls(port, { ca: ca.certPem });
    assert.deepEqual(outcome, { ok: true, status: 200, body: "anonymous" });
  });

  it("verifies the certificate for its DNS name as well as its IP address", async () => {
    const outcome = await fetchOverTls(port, { ca: ca.certPem, servername: "pvc-guardian.pvc-guardian.svc" });
    assert.equal(outcome.ok, true);
  });

  it("is rejected by a client that trusts a different CA with the same name", async () => {
    const outcome = await fetchOverTls(port, { ca: otherCa.certPem });
    // OpenSSL finds the look-alike CA by name, then fails its signature check on the leaf.
    assert.equal(outcome.ok, false);
    assert.ok(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_SIGNATURE_FAILURE"].includes(outcome.code), outcome.code);
  });

  it("is rejected for a host name the certificate does not list", async () => {
    const outcome = await fetchOverTls(port, { ca: ca.certPem, servername: "elsewhere.example" });
    assert.deepEqual(outcome, { ok: false, code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  it("writes the SANs, server EKU and a non-CA leaf signed by the CA", () => {
    const cert = new X509Certificate(serving.certPem);
    assert.equal(cert.subjectAltName, "DNS:localhost, DNS:pvc-guardian.pvc-guardian.svc, IP Address:127.0.0.1");
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    assert.equal(cert.ca, false);
    assert.equal(cert.checkIssued(new X509Certificate(ca.certPem)), true);
    assert.equal(cert.verify(new X509Certificate(ca.certPem).publicKey), true);
    assert.equal(cert.publicKey.asymmetricKeyType, "ec");
    assert.equal(new X509Certificate(ca.certPem).ca, true);
  });

  it("writes private keys readable by the owner only", async () => {
    for (const keyPath of [ca.keyPath, serving.keyPath]) {
      assert.equal((await stat(keyPath)).mode & 0o777, 0o600, keyPath);
    }
  });

  it("issues client certificates with groups as organizations that the server authenticates", async () => {
    const client = await issueClientCertificate(ca, path.join(dir, "client"), {
      commonName: "admin",
      organizations: ["system:masters", "team a"],
    });
    const cert = new X509Certificate(client.certPem);
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
    assert.equal(cert.subject, "O=system:masters\nO=team a\nCN=admin");
    const outcome = await fetchOverTls(port, { ca: ca.certPem, cert: client.certPem, key: await readFile(client.keyPath, "utf8") });
    assert.deepEqual(outcome, { ok: true, status: 200, body: "client admin of system:masters,team a" });
  });

  it("issues RSA keys when asked", async () => {
    const rsa = await issueServerCertificate(ca, path.join(dir, "rsa"), {
      commonName: "rsa",
      dnsNames: ["rsa.local"],
      keyAlgorithm: "rsa-2048",
    });
    const cert = new X509Certificate(rsa.certPem);
    assert.equal(cert.publicKey.asymmetricKeyType, "rsa");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  it("refuses a server certificate without any name or address", async () => {
    await assert.rejects(issueServerCertificate(ca, path.join(dir, "none"), { commonName: "nothing" }), /at least one DNS name or IP address/);
  });
});
