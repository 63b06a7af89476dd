// A small certificate authority for development and tests, built on the `openssl` CLI (Debian's
// `openssl` package) so the certificates are the same kind a cluster operator would make by hand.
// Every call writes its own openssl config: the system's openssl.cnf defaults must not leak in.

import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { isIP } from "node:net";

/** EC P-256 unless a consumer needs RSA (some older TLS stacks and signers only take RSA). */
export type KeyAlgorithm = "ec-p256" | "rsa-2048";

export interface CertificateAuthority {
  certPath: string;
  keyPath: string;
  certPem: string;
}

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
}

export interface CertificateAuthorityOptions {
  commonName: string;
  /** File base name: `<name>.crt` and `<name>.key`. Defaults to `ca`. */
  name?: string;
  validDays?: number;
  keyAlgorithm?: KeyAlgorithm;
}

export interface ServerCertificateOptions {
  commonName: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** File base name: `<name>.crt` and `<name>.key`. Defaults to `tls`. */
  name?: string;
  validDays?: number;
  keyAlgorithm?: KeyAlgorithm;
}

export interface ClientCertificateOptions {
  commonName: string;
  /** Subject O= entries; Kubernetes reads them as the client's groups. */
  organizations?: readonly string[];
  /** File base name: `<name>.crt` and `<name>.key`. Defaults to `client`. */
  name?: string;
  validDays?: number;
  keyAlgorithm?: KeyAlgorithm;
}

const defaultCaValidDays = 3650;
const defaultLeafValidDays = 365;

/** Creates a self-signed CA certificate and its key in `dir`. */
export async function createCertificateAuthority(dir: string, options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true });
  const name = options.name ?? "ca";
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  await prepareKeyFile(keyPath);
  await withScratchDir(async (scratch) => {
    const configPath = path.join(scratch, "ca.cnf");
    await writeFile(
      configPath,
      [
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "x509_extensions = ca_ext",
        "[dn]",
        `CN = ${configValue(options.commonName)}`,
        "[ca_ext]",
        "basicConstraints = critical, CA:TRUE",
        "keyUsage = critical, keyCertSign, cRLSign, digitalSignature",
        "subjectKeyIdentifier = hash",
        "",
      ].join("\n"),
    );
    await runOpenssl([
      "req",
      "-x509",
      "-new",
      ...newKeyArgs(options.keyAlgorithm ?? "ec-p256"),
      "-nodes",
      "-sha256",
      "-config",
      configPath,
      "-days",
      String(options.validDays ?? defaultCaValidDays),
      "-set_serial",
      randomSerial(),
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ]);
  });
  return { certPath, keyPath, certPem: await readFile(certPath, "utf8") };
}

/** Issues a TLS server certificate (EKU serverAuth) for the given DNS names and IP addresses. */
export async function issueServerCertificate(ca: CertificateAuthority, dir: string, options: ServerCertificateOptions): Promise<IssuedCertificate> {
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new Error(`issueServerCertificate: ${ip} is not an IP address`);
  }
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    // Clients check the SAN only; a certificate without one matches no host.
    throw new Error("issueServerCertificate: give at least one DNS name or IP address");
  }
  const subjectAltNames = [...dnsNames.map((d) => `DNS:${d}`), ...ipAddresses.map((ip) => `IP:${ip}`)];
  return issueLeafCertificate(ca, dir, {
    name: options.name ?? "tls",
    subject: [["CN", options.commonName]],
    extendedKeyUsage: "serverAuth",
    subjectAltNames,
    validDays: options.validDays ?? defaultLeafValidDays,
    keyAlgorithm: options.keyAlgorithm ?? "ec-p256",
  });
}

/** Issues a TLS client certificate (EKU clientAuth); O= entries carry Kubernetes groups. */
export async function issueClientCertificate(ca: CertificateAuthority, dir: string, options: ClientCertificateOptions): Promise<IssuedCertificate> {
  return issueLeafCertificate(ca, dir, {
    name: options.name ?? "client",
    subject: [...(options.organizations ?? []).map((o): [string, string] => ["O", o]), ["CN", options.commonName]],
    extendedKeyUsage: "clientAuth",
    subjectAltNames: [],
    validDays: options.validDays ?? defaultLeafValidDays,
    keyAlgorithm: options.keyAlgorithm ?? "ec-p256",
  });
}

interface LeafRequest {
  name: string;
  subject: ReadonlyArray<readonly [string, string]>;
  extendedKeyUsage: "serverAuth" | "clientAuth";
  subjectAltNames: readonly string[];
  validDays: number;
  keyAlgorithm: KeyAlgorithm;
}

async function issueLeafCertificate(ca: CertificateAuthority, dir: string, request: LeafRequest): Promise<IssuedCertificate> {
  await mkdir(dir, { recursive: true });
  const certPath = path.join(dir, `${request.name}.crt`);
  const keyPath = path.join(dir, `${request.name}.key`);
  await prepareKeyFile(keyPath);
  await withScratchDir(async (scratch) => {
    const configPath = path.join(scratch, "leaf.cnf");
    const csrPath = path.join(scratch, "leaf.csr");
    // keyEncipherment only means something for RSA key exchange; EC keys sign.
    const keyUsage = request.keyAlgorithm === "rsa-2048" ? "digitalSignature, keyEncipherment" : "digitalSignature";
    // Repeated O= entries need distinct config keys; openssl strips the `N.` prefix.
    const subjectLines = request.subject.map(([field, value], i) => `${i}.${field} = ${configValue(value)}`);
    await writeFile(
      configPath,
      [
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "[dn]",
        ...subjectLines,
        "[leaf_ext]",
        "basicConstraints = critical, CA:FALSE",
        `keyUsage = critical, ${keyUsage}`,
        `extendedKeyUsage = ${request.extendedKeyUsage}`,
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        ...(request.subjectAltNames.length > 0 ? [`subjectAltName = ${request.subjectAltNames.join(", ")}`] : []),
        "",
      ].join("\n"),
    );
    await runOpenssl(["req", "-new", ...newKeyArgs(request.keyAlgorithm), "-nodes", "-config", configPath, "-keyout", keyPath, "-out", csrPath]);
    await runOpenssl([
      "x509",
      "-req",
      "-sha256",
      "-in",
      csrPath,
      "-CA",
      ca.certPath,
      "-CAkey",
      ca.keyPath,
      "-set_serial",
      randomSerial(),
      "-days",
      String(request.validDays),
      "-extfile",
      configPath,
      "-extensions",
      "leaf_ext",
      "-out",
      certPath,
    ]);
  });
  return { certPath, keyPath, certPem: await readFile(certPath, "utf8") };
}

/** openssl truncates an existing file and keeps its mode, so the key is never readable by others. */
async function prepareKeyFile(keyPath: string): Promise<void> {
  await writeFile(keyPath, "", { mode: 0o600 });
  await chmod(keyPath, 0o600);
}

function newKeyArgs(algorithm: KeyAlgorithm): string[] {
  return algorithm === "rsa-2048" ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
}

/** A positive 128-bit serial, so certificates from separate runs never collide in a client cache. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString("hex")}`;
}

function configValue(value: string): string {
  if (/[\n\r]/.test(value)) throw new Error(`certificate subject value contains a line break: ${JSON.stringify(value)}`);
  // openssl config values: `$` starts a variable reference, `#` a comment; quote both away.
  return value.replace(/[\\$#"]/g, (c) => `\\${c}`);
}

async function withScratchDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-pki-"));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runOpenssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("openssl", args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(new Error("openssl not found on PATH: install the openssl package (apt-get install openssl)"));
      }
      reject(new Error(`openssl ${args[0]} failed: ${stderr.trim() || error.message}`));
    });
  });
}
