// Creates the certificates `npm start` serves with: a local CA and a serving certificate for
// localhost and 127.0.0.1. Existing files are kept, so a CA a developer already trusts survives.
// Usage: node certs/generate-dev-certs.ts [dir]   (default: certs/dev, which git ignores)

import { access } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createCertificateAuthority, issueServerCertificate } from "./pki.ts";

const certsDir = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(process.argv[2] ?? path.join(certsDir, "dev"));
const wanted = ["ca.crt", "tls.crt", "tls.key"].map((f) => path.join(dir, f));

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

const present = await Promise.all(wanted.map(exists));
if (present.every(Boolean)) {
  console.log(`dev certificates already present in ${dir}`);
} else {
  const ca = await createCertificateAuthority(dir, { commonName: "pvc-guardian dev CA" });
  await issueServerCertificate(ca, dir, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  console.log(`wrote ${wanted.join(", ")} (CA key: ${ca.keyPath})`);
}
