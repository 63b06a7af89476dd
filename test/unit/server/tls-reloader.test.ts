import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCertificateAuthority, issueServerCertificate, type IssuedCertificate } from "../../../certs/pki.ts";
import { createTlsReloader, parsePair, type TlsPair } from "../../../webhook/server/tls-reloader.ts";
import { recordingLog } from "../../support/recording-log.ts";

async function setup(t: TestContext) {
  const dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-reloader-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCertificateAuthority(path.join(dir, "ca"), { commonName: "reloader test CA" });
  const issue = (name: string) => issueServerCertificate(ca, path.join(dir, "issued"), { name, commonName: "pvc-guardian", dnsNames: ["localhost"] });
  const certPath = path.join(dir, "tls.crt");
  const keyPath = path.join(dir, "tls.key");
  const install = async (issued: IssuedCertificate) => {
    await writeFile(keyPath, await readFile(issued.keyPath));
    await writeFile(certPath, issued.certPem);
  };
  return { dir, ca, issue, certPath, keyPath, install };
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

test("parsePair accepts a matching pair and reads serial, fingerprint and notAfter", async (t) => {
  const s = await setup(t);
  const issued = await s.issue("one");
  const pair = parsePair(issued.certPem, await readFile(issued.keyPath, "utf8"));
  const x509 = new X509Certificate(issued.certPem);
  assert.equal(pair.serialNumber, x509.serialNumber);
  assert.equal(pair.fingerprint256, x509.fingerprint256);
  assert.equal(pair.notAfterMs, Date.parse(x509.validTo));
});

test("parsePair reads the leaf from a file that carries the chain after it", async (t) => {
  const s = await setup(t);
  const issued = await s.issue("chained");
  const pair = parsePair(`${issued.certPem}${s.ca.certPem}`, await readFile(issued.keyPath, "utf8"));
  assert.equal(pair.serialNumber, serialOf(issued.certPem));
});

test("parsePair rejects a key of another certificate, a garbage key and a file without a certificate", async (t) => {
  const s = await setup(t);
  const one = await s.issue("one");
  const two = await s.issue("two");
  assert.throws(() => parsePair(one.certPem, readFileSync(two.keyPath, "utf8")), /does not match/);
  assert.throws(() => parsePair(one.certPem, "garbage"), /no usable private key/);
  assert.throws(() => parsePair("not a certificate", readFileSync(one.keyPath, "utf8")), /no PEM certificate/);
});

test("refuses to start without a valid pair", async (t) => {
  const s = await setup(t);
  const one = await s.issue("one");
  const two = await s.issue("two");
  await writeFile(s.certPath, one.certPem);
  await writeFile(s.keyPath, await readFile(two.keyPath));
  await assert.rejects(createTlsReloader({ certPath: s.certPath, keyPath: s.keyPath, pollIntervalMs: 60_000, log: recordingLog() }), /does not match/);
  await assert.rejects(
    createTlsReloader({ certPath: path.join(s.dir, "missing.crt"), keyPath: s.keyPath, pollIntervalMs: 60_000, log: recordingLog() }),
    /ENOENT/,
  );
});

test("swaps to a changed valid pair and tells its listeners", async (t) => {
  const s = await setup(t);
  const one = await s.issue("one");
  const two = await s.issue("two");
  await s.install(one);
  const log = recordingLog();
  const reloaded: TlsPair[] = [];
  const heard: string[] = [];
  const reloader = await createTlsReloader({ certPath: s.certPath, keyPath: s.keyPath, pollIntervalMs: 60_000, log, onReload: (pair) => reloaded.push(pair) });
  t.after(() => reloader.stop());
  reloader.subscribe((pair) => heard.push(pair.serialNumber));
  const firstContext = reloader.secureContext();
  assert.equal(reloader.current().serialNumber, serialOf(one.certPem));
  assert.equal(await reloader.checkNow(), false, "nothing changed yet");

  await s.install(two);
  assert.equal(await reloader.checkNow(), true);
  assert.equal(reloader.current().serialNumber, serialOf(two.certPem));
  assert.notEqual(reloader.secureContext(), firstContext);
  assert.equal(reloader.notAfterMs, Date.parse(new X509Certificate(two.certPem).validTo));
  assert.deepEqual(heard, [serialOf(two.certPem)]);
  assert.equal(reloaded.length, 1);
  const loadedLine = log.entries.find((e) => e.message === "serving certificate reloaded");
  assert.equal(loadedLine?.fields["notAfter"], new Date(reloader.notAfterMs).toISOString());
});

test("keeps the last good pair on garbage and reports each broken state once", async (t) => {
  const s = await setup(t);
  const one = await s.issue("one");
  const two = await s.issue("two");
  await s.install(one);
  const failures: string[] = [];
  const reloader = await createTlsReloader({
    certPath: s.certPath,
    keyPath: s.keyPath,
    pollIntervalMs: 60_000,
    log: recordingLog(),
    onReloadFailure: (error) => failures.push(error.message),
  });
  t.after(() => reloader.stop());

  await writeFile(s.keyPath, "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n");
  assert.equal(await reloader.checkNow(), false);
  assert.equal(await reloader.checkNow(), false);
  assert.equal(reloader.current().serialNumber, serialOf(one.certPem));
  assert.equal(failures.length, 1, "the same broken files are reported once");

  // Half of a rotation: the certificate changed, the key is still the old one.
  await writeFile(s.keyPath, await readFile(one.keyPath));
  await writeFile(s.certPath, two.certPem);
  assert.equal(await reloader.checkNow(), false);
  assert.equal(reloader.current().serialNumber, serialOf(one.certPem));
  assert.equal(failures.length, 2);

  await writeFile(s.keyPath, await readFile(two.keyPath));
  assert.equal(await reloader.checkNow(), true);
  assert.equal(reloader.current().serialNumber, serialOf(two.certPem));
});

test("a touched file with the same content is not a reload", async (t) => {
  const s = await setup(t);
  const one = await s.issue("one");
  await s.install(one);
  const reloaded: TlsPair[] = [];
  const reloader = await createTlsReloader({
    certPath: s.certPath,
    keyPath: s.keyPath,
    pollIntervalMs: 60_000,
    log: recordingLog(),
    onReload: (pair) => reloaded.push(pair),
  });
  t.after(() => reloader.stop());
  const later = new Date(Date.now() + 5_000);
  await utimes(s.certPath, later, later);
  assert.equal(await reloader.checkNow(), false);
  assert.equal(reloaded.length, 0);
});
