import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultConfig, loadConfig, parseDurationMs, parsePolicyFile, type Config } from "../../webhook/config.ts";
import { DEFAULT_POLICY } from "../../webhook/domain/policy.ts";

const noFile = (path: string): string => {
  throw new Error(`no file should be read, asked for ${path}`);
};
function files(contents: Record<string, string>) {
  const reads: string[] = [];
  const read = (path: string) => {
    reads.push(path);
    const text = contents[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  };
  return { read, reads };
}
function loaded(result: ReturnType<typeof loadConfig>): Config {
  assert.ok(result.ok, !result.ok ? result.problems.join("\n") : "");
  return result.config;
}
function problemsOf(result: ReturnType<typeof loadConfig>): string[] {
  assert.equal(result.ok, false, "expected start-up to be refused");
  return result.ok ? [] : result.problems;
}

// DEFAULT_POLICY (webhook/domain/policy.ts) is the policy file the README's Configuration section
// writes out; this pins the values a user reads there.
test("with no policy file and no environment the policy is the documented default exactly", () => {
  const config = loaded(loadConfig({}, noFile));
  assert.deepEqual(config.policy, DEFAULT_POLICY);
  assert.deepEqual(config.policy.tiers, {
    hourly: { schedule: "0 * * * *", retain: { hourly: 24, daily: 7, weekly: 4, monthly: 2 } },
    daily: { schedule: "0 2 * * *", retain: { hourly: 24, daily: 7, weekly: 4, monthly: 2 } },
  });
  assert.deepEqual(config.policy.resources, {
    copyMethod: "Snapshot",
    storageClassName: "longhorn",
    volumeSnapshotClassName: "longhorn-snapclass",
    cacheCapacity: "2Gi",
    compression: "zstd-fastest",
    parallelism: 2,
    moverSecurityContext: { runAsUser: 568, runAsGroup: 568, fsGroup: 568 },
  });
  assert.equal(config.policy.firstBackupDelayMs, 7_200_000);
  assert.deepEqual(config.policy.sourceSecret, { namespace: "volsync-system", name: "kopia-credentials" });
  for (const namespace of ["kube-system", "pvc-guardian", "volsync-system", "longhorn-system"]) {
    assert.ok(config.policy.excludedNamespaces.includes(namespace), namespace);
  }
  assert.equal(config.policy.dormant, false);
  assert.equal(config.policy.nfs, undefined);
});

test("with no policy file the rest of the configuration has its documented defaults", () => {
  const config = loaded(loadConfig({}, noFile));
  const { policy, podName, ...rest } = config;
  assert.match(podName, /^pvc-guardian-\d+$/);
  assert.deepEqual(rest, {
    listen: { host: "0.0.0.0", port: 8443, opsPort: 9090 },
    tls: { certFile: "/etc/pvc-guardian/tls/tls.crt", keyFile: "/etc/pvc-guardian/tls/tls.key", reloadIntervalMs: 10_000 },
    namespace: "pvc-guardian",
    additionalRepositories: [],
    catalog: { refreshIntervalMs: 60_000, freshnessBoundMs: 600_000, missRefreshTimeoutMs: 1_500 },
    admission: {
      deadlineMs: 4_000,
      webhookTimeoutSeconds: 10,
      maxBodyBytes: 3 * 1024 * 1024,
      maxInFlightBodyBytes: 16 * 1024 * 1024,
      maxConcurrentReviews: 32,
      jsonShape: { maxDepth: 64, maxValues: 100_000 },
    },
    transport: { handshakeTimeoutMs: 5_000, headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 120_000, maxConnections: 256 },
    opsListener: { maxConnections: 32, drainTimeoutMs: 1_000 },
    selfProbe: { intervalMs: 10_000, timeoutMs: 2_000 },
    kubernetes: {
      mode: "in-cluster",
      listPageSize: 500,
      requestTimeoutMs: 30_000,
      credentialRefreshMs: 60_000,
      retry: { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2_000 },
    },
    reconcile: {
      intervalMs: 60_000,
      watchDebounceMs: 1_000,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      adoptKyverno: false,
      writeConcurrency: 32,
      replacePollMs: 100,
    },
    sweep: { schedule: "*/15 * * * *", gracePeriodMs: 3_600_000, dryRun: false, deleteConcurrency: 8 },
    readApi: {
      audience: "pvc-guardian",
      allowedServiceAccounts: [],
      requestTimeoutMs: 10_000,
      signingKeyReads: { maxKeyAgeMs: 3_600_000, minRefreshIntervalMs: 10_000, backoff: { initialMs: 1_000, maxMs: 60_000 } },
    },
    volSyncCapabilities: { startTimeoutMs: 10_000, retryDelayMs: 1_000, maxRetryDelayMs: 60_000 },
    namespaceLabels: { retryDelayMs: 1_000, maxRetryDelayMs: 30_000 },
    shutdown: { drainDelayMs: 5_000, drainTimeoutMs: 10_000 },
    logLevel: "info",
  });
  assert.equal(config.repository, undefined, "no repository configured means every protected PVC is unknown");
});

for (const text of ["", "\n", "---\n", "# only a comment\n", "null\n", "~\n"]) {
  test(`an empty policy file (${JSON.stringify(text)}) means the defaults`, () => {
    const { read } = files({ "/etc/policy.yaml": text });
    assert.deepEqual(loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/etc/policy.yaml" }, read)).policy, DEFAULT_POLICY);
  });
}

const fullPolicy = `
tiers:
  hourly:
    schedule: "H * * * *"
    retain: { hourly: 48, daily: 14 }
  gold:
    schedule: "15 3 * * *"
resources:
  storageClassName: ceph-block
  volumeSnapshotClassName: ceph-snap
  cacheCapacity: 5Gi
  parallelism: 4
  moverSecurityContext: { runAsUser: 1000 }
firstBackupDelay: 90m
sourceSecret: { namespace: backups, name: kopia }
repository:
  path: /repository
  passwordFile: /secrets/kopia-password
  nfs: { server: nas.lan, path: /volume1/kopia }
excludedNamespaces: [kube-system, backups]
admission: { deadline: 3s, webhookTimeoutSeconds: 8 }
catalog: { refreshInterval: 30s, freshnessBound: 5m, missRefreshTimeout: 1s }
reconcile: { interval: 2m, leaseDuration: 20s, adoptKyverno: true }
sweep: { schedule: "*/30 * * * *", gracePeriod: 2h, dryRun: true }
readApi: { audience: guardian, allowedServiceAccounts: ["system:serviceaccount:monitoring:grafana"] }
dormant: true
`;

test("a full policy file is read into the configuration, with defaults filling the gaps", () => {
  const { read, reads } = files({ "/etc/policy.yaml": fullPolicy });
  const config = loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/etc/policy.yaml", PVC_GUARDIAN_NAMESPACE: "guardian" }, read));
  assert.deepEqual(reads, ["/etc/policy.yaml"]);
  assert.deepEqual(config.policy, {
    tiers: {
      hourly: { schedule: "H * * * *", retain: { hourly: 48, daily: 14 } },
      gold: { schedule: "15 3 * * *", retain: { hourly: 24, daily: 7, weekly: 4, monthly: 2 } },
    },
    resources: {
      copyMethod: "Snapshot",
      storageClassName: "ceph-block",
      volumeSnapshotClassName: "ceph-snap",
      cacheCapacity: "5Gi",
      compression: "zstd-fastest",
      parallelism: 4,
      moverSecurityContext: { runAsUser: 1000, runAsGroup: 568, fsGroup: 568 },
    },
    firstBackupDelayMs: 90 * 60_000,
    sourceSecret: { namespace: "backups", name: "kopia" },
    nfs: { server: "nas.lan", path: "/volume1/kopia", mountPath: "repository" },
    excludedNamespaces: ["kube-system", "backups", "guardian"],
    dormant: true,
  });
  assert.deepEqual(config.repository, { path: "/repository", passwordFile: "/secrets/kopia-password" });
  assert.deepEqual(config.admission, {
    deadlineMs: 3_000,
    webhookTimeoutSeconds: 8,
    maxBodyBytes: 3 * 1024 * 1024,
    maxInFlightBodyBytes: 16 * 1024 * 1024,
    maxConcurrentReviews: 32,
    jsonShape: { maxDepth: 64, maxValues: 100_000 },
  });
  assert.deepEqual(config.catalog, { refreshIntervalMs: 30_000, freshnessBoundMs: 300_000, missRefreshTimeoutMs: 1_000 });
  assert.deepEqual(config.reconcile, {
    intervalMs: 120_000,
    watchDebounceMs: 1_000,
    leaseDurationMs: 20_000,
    renewDeadlineMs: 13_333,
    retryPeriodMs: 2_000,
    adoptKyverno: true,
    writeConcurrency: 32,
    replacePollMs: 100,
  });
  assert.deepEqual(config.sweep, { schedule: "*/30 * * * *", gracePeriodMs: 7_200_000, dryRun: true, deleteConcurrency: 8 });
  assert.deepEqual(config.readApi, {
    audience: "guardian",
    allowedServiceAccounts: ["system:serviceaccount:monitoring:grafana"],
    requestTimeoutMs: 10_000,
    signingKeyReads: { maxKeyAgeMs: 3_600_000, minRefreshIntervalMs: 10_000, backoff: { initialMs: 1_000, maxMs: 60_000 } },
  });
});

test("the server's own namespace is always excluded, and not twice", () => {
  assert.deepEqual(loaded(loadConfig({ PVC_GUARDIAN_NAMESPACE: "guardian" }, noFile)).policy.excludedNamespaces, [
    ...DEFAULT_POLICY.excludedNamespaces,
    "guardian",
  ]);
  assert.deepEqual(loaded(loadConfig({ PVC_GUARDIAN_NAMESPACE: "kube-system" }, noFile)).policy.excludedNamespaces, DEFAULT_POLICY.excludedNamespaces);
});

test("the environment overrides listen address, TLS files, repository, Kubernetes access and log level", () => {
  const { read } = files({ "/p.yaml": "repository: { path: /from-file, passwordFile: /file-password }\n" });
  const config = loaded(
    loadConfig(
      {
        PVC_GUARDIAN_POLICY_FILE: "/p.yaml",
        PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
        PVC_GUARDIAN_PORT: "9443",
        PVC_GUARDIAN_TLS_CERT_FILE: "/certs/tls.crt",
        PVC_GUARDIAN_TLS_KEY_FILE: "/certs/tls.key",
        PVC_GUARDIAN_POD_NAME: "pvc-guardian-7d9f-abcde",
        PVC_GUARDIAN_REPOSITORY_PATH: "/from-env",
        PVC_GUARDIAN_PASSWORD_FILE: "/env-password",
        PVC_GUARDIAN_KUBERNETES: "kubeconfig",
        PVC_GUARDIAN_KUBECONFIG: "/home/me/.kube/config",
        PVC_GUARDIAN_LOG_LEVEL: "debug",
        UNRELATED_VARIABLE: "ignored",
      },
      read,
    ),
  );
  assert.deepEqual(config.listen, { host: "127.0.0.1", port: 9443, opsPort: 9090 });
  assert.deepEqual(config.tls, { certFile: "/certs/tls.crt", keyFile: "/certs/tls.key", reloadIntervalMs: 10_000 });
  assert.equal(config.podName, "pvc-guardian-7d9f-abcde");
  assert.deepEqual(config.repository, { path: "/from-env", passwordFile: "/env-password" });
  assert.deepEqual(config.kubernetes, {
    mode: "kubeconfig",
    kubeconfigPath: "/home/me/.kube/config",
    listPageSize: 500,
    requestTimeoutMs: 30_000,
    credentialRefreshMs: 60_000,
    retry: { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2_000 },
  });
  assert.equal(config.logLevel, "debug");
});

test("the environment sets the certificate reload interval and the shutdown drain", () => {
  const config = loaded(loadConfig({ PVC_GUARDIAN_TLS_RELOAD_INTERVAL: "30s", PVC_GUARDIAN_DRAIN_DELAY: "0s", PVC_GUARDIAN_DRAIN_TIMEOUT: "20s" }, noFile));
  assert.equal(config.tls.reloadIntervalMs, 30_000);
  assert.deepEqual(config.shutdown, { drainDelayMs: 0, drainTimeoutMs: 20_000 });
  assert.deepEqual(problemsOf(loadConfig({ PVC_GUARDIAN_TLS_RELOAD_INTERVAL: "500ms", PVC_GUARDIAN_DRAIN_TIMEOUT: "10" }, noFile)), [
    "environment: PVC_GUARDIAN_TLS_RELOAD_INTERVAL: must be at least 1s",
    'environment: PVC_GUARDIAN_DRAIN_TIMEOUT: "10" is not a duration such as 500ms, 90s, 15m or 2h',
  ]);
});

test("the default configuration is the one loaded with no environment and no policy file", () => {
  const { podName: _defaultPod, ...defaults } = defaultConfig();
  const { podName: _loadedPod, ...loadedDefaults } = loaded(loadConfig({}, noFile));
  assert.deepEqual(defaults, loadedDefaults);
});

test("the environment can supply a repository the file does not mention", () => {
  const config = loaded(loadConfig({ PVC_GUARDIAN_REPOSITORY_PATH: "/repo", PVC_GUARDIAN_PASSWORD_FILE: "/pw" }, noFile));
  assert.deepEqual(config.repository, { path: "/repo", passwordFile: "/pw" });
});

test("a bad policy file lists every problem, each with its path", () => {
  const { read } = files({
    "/bad.yaml": `
tiers:
  hourly:
    schedule: "every hour"
    retain: { hourly: -1, forever: 3 }
  "bad tier!":
    schedule: "@daily extra"
resources:
  copyMethod: Rsync
  cacheCapacity: lots
  parallelism: 0
firstBackupDelay: two hours
excludedNamespaces: [Kube_System]
sweep: { schedule: "*/15 * * *" }
readApi: { allowedServiceAccounts: [grafana] }
surprise: true
`,
  });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/bad.yaml" }, read));
  const expected = [
    /tiers\.hourly\.schedule: "every hour" has 2 fields/,
    /tiers\.hourly\.retain\.hourly:/,
    /tiers\.hourly\.retain: .*forever/,
    /tiers\.bad tier!\.schedule: "@daily extra"/,
    /tiers\.bad tier!: tier name "bad tier!" is not a valid label value/,
    /resources\.copyMethod:/,
    /resources\.cacheCapacity: must be a Kubernetes quantity/,
    /resources\.parallelism:/,
    /firstBackupDelay: "two hours" is not a duration/,
    /excludedNamespaces\.0: must be a Kubernetes object name/,
    /sweep\.schedule: "\*\/15 \* \* \*" has 4 fields/,
    /readApi\.allowedServiceAccounts\.0: must be system:serviceaccount/,
    /\(top level\): .*surprise/,
  ];
  for (const pattern of expected)
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `missing ${pattern}\n${problems.join("\n")}`,
    );
  assert.equal(problems.length, expected.length, problems.join("\n"));
  for (const problem of problems) assert.match(problem, /^policy file \/bad\.yaml: /);
});

test("cross-field rules are listed alongside field problems", () => {
  const { read } = files({
    "/p.yaml": `
tiers: { hourly: { schedule: "61 * * * *" } }
admission: { deadline: 12s, webhookTimeoutSeconds: 10 }
catalog: { refreshInterval: 20m, freshnessBound: 10m, missRefreshTimeout: 15s }
`,
  });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read));
  assert.ok(problems.some((p) => /tiers\.hourly\.schedule/.test(p)));
  assert.ok(problems.some((p) => /admission\.deadline: must be below the webhook timeout \(10s\)/.test(p)));
  assert.ok(problems.some((p) => /catalog\.missRefreshTimeout: must be below admission\.deadline/.test(p)));
  assert.ok(problems.some((p) => /catalog\.freshnessBound: must be longer than catalog\.refreshInterval/.test(p)));
  assert.equal(problems.length, 4, problems.join("\n"));
});

test("an NFS mountPath must be one path segment, as VolSync mounts it at /mnt/<mountPath>", () => {
  // VolSync's controller refuses a mover volume whose mount path holds a separator and then
  // creates no mover Job at all; "." and ".." would mount over /mnt or outside it.
  for (const mountPath of ["/repository", "kopia/repository", "repository/", "", ".", ".."]) {
    const text = `repository:\n  nfs: { server: nas.lan, path: /volume1/kopia, mountPath: ${JSON.stringify(mountPath)} }\n`;
    const result = parsePolicyFile(text, "p");
    assert.equal(result.ok, false, `mountPath ${JSON.stringify(mountPath)} was accepted`);
    if (!result.ok) {
      assert.equal(result.problems.length, 1, result.problems.join("\n"));
      assert.match(result.problems[0]!, /^p: repository\.nfs\.mountPath: /);
    }
  }
  for (const mountPath of ["repository", "kopia-repo", "repo.d", "..repo"]) {
    const result = parsePolicyFile(`repository:\n  nfs: { server: nas.lan, path: /volume1/kopia, mountPath: ${JSON.stringify(mountPath)} }\n`, "p");
    assert.ok(result.ok, `mountPath ${mountPath}: ${result.ok ? "" : result.problems.join("; ")}`);
    assert.equal(result.file.repository.nfs?.mountPath, mountPath);
  }
  const defaulted = parsePolicyFile("repository:\n  nfs: { server: nas.lan, path: /volume1/kopia }\n", "p");
  assert.ok(defaulted.ok);
  assert.equal(defaulted.file.repository.nfs?.mountPath, "repository");
});

test("a bad NFS mountPath is listed with the file's other problems, saying why", () => {
  const { read } = files({ "/p.yaml": "repository:\n  nfs: { server: nas.lan, path: /volume1/kopia, mountPath: /repository }\nsurprise: 1\n" });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read));
  assert.equal(problems.length, 2, problems.join("\n"));
  assert.ok(
    problems.some((p) => /repository\.nfs\.mountPath: .*\//.test(p) && /separator|one path segment/.test(p)),
    problems.join("\n"),
  );
});

test("a tier map with no tiers is refused", () => {
  assert.deepEqual(parsePolicyFile("tiers: {}\n", "p"), { ok: false, problems: ["p: tiers: at least one tier is needed"] });
});

test("YAML that does not parse is one problem naming the line", () => {
  const { read } = files({ "/p.yaml": "tiers:\n  hourly:\n    schedule: [unclosed\n" });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read));
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^policy file \/p\.yaml: not valid YAML at line \d+/);
});

test("an unreadable policy file is a problem, listed with the environment's problems", () => {
  const { read } = files({});
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/missing.yaml", PVC_GUARDIAN_PORT: "http" }, read));
  assert.ok(problems.some((p) => /^policy file \/missing\.yaml: cannot be read: ENOENT/.test(p)));
  assert.ok(problems.some((p) => /^environment: PVC_GUARDIAN_PORT:/.test(p)));
  assert.equal(problems.length, 2, problems.join("\n"));
});

test("bad environment values are all listed at once", () => {
  const problems = problemsOf(
    loadConfig(
      {
        PVC_GUARDIAN_PORT: "70000",
        PVC_GUARDIAN_LOG_LEVEL: "loud",
        PVC_GUARDIAN_KUBERNETES: "maybe",
        PVC_GUARDIAN_NAMESPACE: "Not_A_Namespace",
      },
      noFile,
    ),
  );
  for (const variable of ["PVC_GUARDIAN_PORT", "PVC_GUARDIAN_LOG_LEVEL", "PVC_GUARDIAN_KUBERNETES", "PVC_GUARDIAN_NAMESPACE"]) {
    assert.ok(
      problems.some((p) => p.startsWith(`environment: ${variable}:`)),
      `${variable}\n${problems.join("\n")}`,
    );
  }
  assert.equal(problems.length, 4, problems.join("\n"));
});

test("a bad environment and a bad file are reported together", () => {
  const { read } = files({ "/p.yaml": "dormant: sometimes\n" });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml", PVC_GUARDIAN_PORT: "-1" }, read));
  assert.ok(problems.some((p) => p.startsWith("environment: PVC_GUARDIAN_PORT:")));
  assert.ok(problems.some((p) => p.startsWith("policy file /p.yaml: dormant:")));
  assert.equal(problems.length, 2, problems.join("\n"));
});

test("an environment rule is listed even when the policy file is bad", () => {
  const { read } = files({ "/p.yaml": "dormant: sometimes\n" });
  const problems = problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml", PVC_GUARDIAN_KUBERNETES: "kubeconfig" }, read));
  assert.ok(problems.some((p) => p.startsWith("policy file /p.yaml: dormant:")));
  assert.ok(
    problems.some((p) => /PVC_GUARDIAN_KUBECONFIG is required when PVC_GUARDIAN_KUBERNETES=kubeconfig/.test(p)),
    problems.join("\n"),
  );
  assert.equal(problems.length, 2, problems.join("\n"));
});

test("a repository path and a password file go together", () => {
  for (const env of [{ PVC_GUARDIAN_REPOSITORY_PATH: "/repo" }, { PVC_GUARDIAN_PASSWORD_FILE: "/pw" }]) {
    const problems = problemsOf(loadConfig(env, noFile));
    assert.deepEqual(problems, ["repository: a repository path and a password file go together; set both or neither"]);
  }
  const { read } = files({ "/p.yaml": "repository: { path: /repo }\n" });
  assert.equal(problemsOf(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read)).length, 1);
});

test("kubeconfig mode needs a kubeconfig path", () => {
  assert.deepEqual(problemsOf(loadConfig({ PVC_GUARDIAN_KUBERNETES: "kubeconfig" }, noFile)), [
    "environment: PVC_GUARDIAN_KUBECONFIG is required when PVC_GUARDIAN_KUBERNETES=kubeconfig",
  ]);
  assert.deepEqual(loaded(loadConfig({ PVC_GUARDIAN_KUBERNETES: "off" }, noFile)).kubernetes, {
    mode: "off",
    listPageSize: 500,
    requestTimeoutMs: 30_000,
    credentialRefreshMs: 60_000,
    retry: { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2_000 },
  });
});

const durations: Array<[string, number | undefined]> = [
  ["500ms", 500],
  ["90s", 90_000],
  ["15m", 900_000],
  ["2h", 7_200_000],
  ["1d", 86_400_000],
  ["1h30m", 5_400_000],
  ["1h30m15s250ms", 5_415_250],
  ["1.5h", 5_400_000],
  ["0s", 0],
  [" 2h ", 7_200_000],
  ["", undefined],
  ["2", undefined],
  ["h", undefined],
  ["2 h", undefined],
  ["1h 30m", undefined],
  ["-1s", undefined],
  ["1w", undefined],
  ["2H", undefined],
  ["PT2H", undefined],
];
for (const [text, ms] of durations) {
  test(`parseDurationMs reads ${JSON.stringify(text)} as ${ms === undefined ? "not a duration" : `${ms} ms`}`, () => {
    assert.equal(parseDurationMs(text), ms);
  });
}

test("durations in the file reach the configuration in milliseconds", () => {
  const { read } = files({ "/p.yaml": "firstBackupDelay: 45m\nadmission: { deadline: 2500ms }\nsweep: { gracePeriod: 1d }\n" });
  const config = loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, read));
  assert.equal(config.policy.firstBackupDelayMs, 2_700_000);
  assert.equal(config.admission.deadlineMs, 2_500);
  assert.equal(config.sweep.gracePeriodMs, 86_400_000);
});

test("a duration written as a number is refused rather than guessed", () => {
  const problems = parsePolicyFile("firstBackupDelay: 7200\n", "p");
  assert.equal(problems.ok, false);
});

test("treats an empty environment variable as unset, never as port 0", () => {
  const result = loadConfig({ PVC_GUARDIAN_PORT: "", PVC_GUARDIAN_REPOSITORY_PATH: "", PVC_GUARDIAN_PASSWORD_FILE: "" }, () => "");
  assert.ok(result.ok);
  assert.equal(result.config.listen.port, 8443);
  assert.equal(result.config.repository, undefined);
});

test("the server section bounds bodies, reviews in progress and connections, and checks they fit together", () => {
  const { read } = files({
    "/p.yaml":
      "server: { maxBodyBytes: 1048576, maxInFlightBodyBytes: 4194304, maxConcurrentReviews: 8, headersTimeout: 2s, requestTimeout: 4s, handshakeTimeout: 1s, keepAliveTimeout: 95s, maxConnections: 64 }\n",
    "/bad.yaml": "server: { maxBodyBytes: 4194304, maxInFlightBodyBytes: 1048576, headersTimeout: 20s, requestTimeout: 10s }\n",
  });
  const config = loaded(
    loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml", PVC_GUARDIAN_OPS_PORT: "9191", PVC_GUARDIAN_CLIENT_CA_FILE: "/etc/apiserver-ca/ca.crt" }, read),
  );
  assert.deepEqual(config.admission, {
    deadlineMs: 4_000,
    webhookTimeoutSeconds: 10,
    maxBodyBytes: 1_048_576,
    maxInFlightBodyBytes: 4_194_304,
    maxConcurrentReviews: 8,
    jsonShape: { maxDepth: 64, maxValues: 100_000 },
  });
  assert.deepEqual(config.transport, {
    handshakeTimeoutMs: 1_000,
    headersTimeoutMs: 2_000,
    requestTimeoutMs: 4_000,
    keepAliveTimeoutMs: 95_000,
    maxConnections: 64,
  });
  assert.equal(config.listen.opsPort, 9191);
  assert.equal(config.tls.clientCaFile, "/etc/apiserver-ca/ca.crt");
  const bad = loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/bad.yaml" }, read);
  assert.equal(bad.ok, false);
  const problems = bad.ok ? [] : bad.problems.join("\n");
  assert.match(String(problems), /server\.maxInFlightBodyBytes: must be at least server\.maxBodyBytes/);
  assert.match(String(problems), /server\.headersTimeout: must not be longer than server\.requestTimeout/);
});

test("more repositories are read with their namespaces, and each needs a way to be chosen", () => {
  const file = `
repositories:
  - name: finance
    path: /repositories/finance
    passwordFile: /etc/pvc-guardian/finance/KOPIA_PASSWORD
    sourceSecret: { namespace: volsync-system, name: finance-credentials }
    namespaces: [ledger, payroll]
  - name: team-a
    path: /repositories/team-a
    passwordFile: /etc/pvc-guardian/team-a/KOPIA_PASSWORD
    sourceSecret: { namespace: volsync-system, name: team-a-credentials }
    namespaceSelector: { matchLabels: { team: a } }
`;
  const config = loaded(loadConfig({ PVC_GUARDIAN_POLICY_FILE: "/p.yaml" }, (path) => (path === "/p.yaml" ? file : noFile(path))));
  assert.deepEqual(config.additionalRepositories, [
    { name: "finance", path: "/repositories/finance", passwordFile: "/etc/pvc-guardian/finance/KOPIA_PASSWORD" },
    { name: "team-a", path: "/repositories/team-a", passwordFile: "/etc/pvc-guardian/team-a/KOPIA_PASSWORD" },
  ]);
  assert.deepEqual(config.policy.additionalRepositories, [
    { name: "finance", sourceSecret: { namespace: "volsync-system", name: "finance-credentials" }, namespaces: ["ledger", "payroll"] },
    { name: "team-a", sourceSecret: { namespace: "volsync-system", name: "team-a-credentials" }, namespaceSelector: { matchLabels: { team: "a" } } },
  ]);

  const bad = loadConfig(
    { PVC_GUARDIAN_POLICY_FILE: "/p.yaml" },
    () => `
repositories:
  - { name: default, path: /r, passwordFile: /p, sourceSecret: { namespace: a, name: b }, namespaces: [x] }
  - { name: lost, path: /r2, passwordFile: /p2, sourceSecret: { namespace: a, name: b } }
  - { name: twice, path: /r3, sourceSecret: { namespace: a, name: b }, namespaces: [x] }
`,
  );
  assert.equal(bad.ok, false);
  const problems = bad.ok ? "" : bad.problems.join("\n");
  assert.match(problems, /"default" names the top-level repository/);
  assert.match(problems, /repository lost names no namespaces and no namespaceSelector/);
  assert.match(problems, /repository twice: a repository path needs its passwordFile/);
  assert.match(problems, /namespace x is listed for both default and twice/);
});
