// A throwaway certificate authority for tests that serve HTTPS: made with certs/pki.ts in a
// temporary directory, issuing serving certificates for localhost and 127.0.0.1.

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority, type IssuedCertificate } from "../../certs/pki.ts";

export type TestPki = {
  dir: string;
  ca: CertificateAuthority;
  issue(name: string): Promise<IssuedCertificate>;
  /** Issues a serving certificate and writes its pair as `<dir>/<name>/tls.crt` and `tls.key`, as a Secret volume holds them. */
  issueServingPair(name: string): Promise<ServingPair>;
  cleanup(): Promise<void>;
};

export type ServingPair = { certPath: string; keyPath: string; certPem: string };

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-server-"));
  const ca = await createCertificateAuthority(path.join(dir, "ca"), { commonName: "pvc-guardian test CA" });
  const issue = (name: string) =>
    issueServerCertificate(ca, path.join(dir, "issued"), { name, commonName: "pvc-guardian", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  return {
    dir,
    ca,
    issue,
    async issueServingPair(name) {
      const issued = await issue(name);
      const servingDir = path.join(dir, name);
      await mkdir(servingDir);
      const pair = { certPath: path.join(servingDir, "tls.crt"), keyPath: path.join(servingDir, "tls.key"), certPem: issued.certPem };
      await writeFile(pair.certPath, issued.certPem);
      await writeFile(pair.keyPath, await readFile(issued.keyPath));
      return pair;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Serial numbers compared without case or leading zeros, which printers disagree on. */
export function normaliseSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+/, "");
}
