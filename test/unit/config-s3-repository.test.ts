import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig, type Config } from "../../webhook/config.ts";

// The VolSync repository Secret mounted as a folder: one file per key.
const secretDir = "/etc/pvc-guardian/repository";
function reader(contents: Record<string, string>) {
  return (path: string) => {
    const text = contents[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  };
}
function loaded(result: ReturnType<typeof loadConfig>): Config {
  assert.ok(result.ok, !result.ok ? result.problems.join("\n") : "");
  return result.config;
}

test("the mounted VolSync Secret alone configures an S3 repository, as the mover reads it", () => {
  const read = reader({
    "/p.yaml": `repository:\n  s3:\n    credentialsDir: ${secretDir}\n`,
    [`${secretDir}/KOPIA_REPOSITORY`]: "s3://backups/cluster-a\n",
    [`${secretDir}/AWS_S3_ENDPOINT`]: "http://minio.minio.svc:9000",
    [`${secretDir}/AWS_S3_DISABLE_TLS`]: "true",
    [`${secretDir}/AWS_REGION`]: "eu-central-1",
  });
  const config = loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read));
  assert.deepEqual(config.repository, {
    path: "s3://backups/cluster-a/",
    passwordFile: `${secretDir}/KOPIA_PASSWORD`,
    s3: {
      settings: { bucket: "backups", prefix: "cluster-a/", endpoint: "minio.minio.svc:9000", useTls: false, region: "eu-central-1", addressing: "path" },
      credentialsDir: secretDir,
      requestTimeoutMs: 10_000,
    },
  });
  assert.equal(config.policy.nfs, undefined, "an S3 repository adds no NFS mover volume");
});

test("PVC_GUARDIAN_REPOSITORY names the bucket; AWS defaults give TLS and virtual-hosted addressing", () => {
  const config = loaded(
    loadConfig({ PVC_GUARDIAN_REPOSITORY: "s3://my-bucket", PVC_GUARDIAN_S3_CREDENTIALS_DIR: secretDir, PVC_GUARDIAN_PASSWORD_FILE: "/pw" }, reader({})),
  );
  assert.deepEqual(config.repository?.s3?.settings, {
    bucket: "my-bucket",
    prefix: "",
    endpoint: "s3.amazonaws.com",
    useTls: true,
    region: "us-east-1",
    addressing: "virtual-hosted",
  });
  assert.equal(config.repository?.passwordFile, "/pw");
});

test("the policy file overrides the Secret's endpoint, TLS, addressing and CA", () => {
  const read = reader({
    "/p.yaml": [
      "repository:",
      "  s3:",
      `    credentialsDir: ${secretDir}`,
      "    url: s3://b/p/",
      "    endpoint: s3.internal:8443",
      "    disableTls: false",
      "    addressing: virtual-hosted",
      "    caBundleFile: /etc/ca/ca.crt",
      "    requestTimeout: 3s",
    ].join("\n"),
    [`${secretDir}/AWS_S3_DISABLE_TLS`]: "true",
  });
  const s3 = loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read)).repository?.s3;
  assert.deepEqual(s3, {
    settings: {
      bucket: "b",
      prefix: "p/",
      endpoint: "s3.internal:8443",
      useTls: true,
      region: "us-east-1",
      addressing: "virtual-hosted",
      caBundleFile: "/etc/ca/ca.crt",
    },
    credentialsDir: secretDir,
    requestTimeoutMs: 3_000,
  });
});

for (const [name, env, files, expected] of [
  ["S3 without a credentials folder", { PVC_GUARDIAN_REPOSITORY: "s3://b/p" }, {}, /credentialsDir or PVC_GUARDIAN_S3_CREDENTIALS_DIR/],
  ["a folder in PVC_GUARDIAN_REPOSITORY", { PVC_GUARDIAN_REPOSITORY: "/repo" }, {}, /PVC_GUARDIAN_REPOSITORY: must look like s3:\/\/bucket\/prefix/],
  [
    "S3 and NFS together",
    { PVC_GUARDIAN_POLICY_FILE: "/p.yaml" },
    { "/p.yaml": "repository:\n  s3: { credentialsDir: /s }\n  nfs: { server: nas, path: /k }\n" },
    /set repository.s3 or repository.nfs, not both/,
  ],
  [
    "S3 with no repository URL anywhere",
    { PVC_GUARDIAN_POLICY_FILE: "/p.yaml" },
    { "/p.yaml": "repository:\n  s3: { credentialsDir: /s }\n" },
    /no s3:\/\/ repository/,
  ],
  [
    "a bad AWS_S3_DISABLE_TLS",
    { PVC_GUARDIAN_POLICY_FILE: "/p.yaml" },
    { "/p.yaml": "repository:\n  s3: { credentialsDir: /s, url: 's3://b' }\n", "/s/AWS_S3_DISABLE_TLS": "yes" },
    /AWS_S3_DISABLE_TLS is "yes"/,
  ],
] as const) {
  test(`start-up is refused for ${name}`, () => {
    const result = loadConfig(env as Record<string, string>, reader(files as Record<string, string>));
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problems.some((p) => expected.test(p)), !result.ok ? result.problems.join("\n") : "");
  });
}
