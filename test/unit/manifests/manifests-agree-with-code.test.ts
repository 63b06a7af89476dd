// The manifests and the code describe one system twice; these tests keep the two descriptions equal:
// webhook paths, ports, failure policies, timeouts against the internal deadline, selectors against
// the policy's tiers and excluded namespaces, and the environment the Deployment sets against what
// config.ts reads.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { loadConfig, parseDurationMs, parsePolicyFile, type Config, type PolicyFile } from "../../../webhook/config.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { BACKUP_LABEL } from "../../../webhook/domain/wire-names.ts";
import { mutatePath, validatePath } from "../../../webhook/server/admission-routes.ts";
import { healthzPath, readyzPath } from "../../../webhook/server/ops-routes.ts";
import { REPLICATION_DESTINATIONS, REPLICATION_SOURCES } from "../../../webhook/kube/kube-objects.ts";
import { crdNameOf } from "../../../webhook/kube/volsync-capabilities.ts";
import { findObject, manifestsDir, readObjects, type ManifestObject } from "../../support/manifest-files.ts";

type LabelSelector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type Webhook = {
  name: string;
  admissionReviewVersions: string[];
  clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
  rules: { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[]; scope?: string }[];
  sideEffects: string;
  failurePolicy: string;
  timeoutSeconds: number;
  reinvocationPolicy?: string;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  matchConditions: { name: string; expression: string }[];
};
type WebhookConfiguration = ManifestObject & { webhooks: Webhook[] };
type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
type Probe = { httpGet: { path: string; port: string | number; scheme: string } };
type Container = {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  env: EnvVar[];
  startupProbe: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    runAsNonRoot: boolean;
    runAsUser: number;
    readOnlyRootFilesystem: boolean;
    allowPrivilegeEscalation: boolean;
    capabilities: { drop: string[] };
    seccompProfile: { type: string };
  };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
};
type Volume = {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  nfs?: { server: string; path: string; readOnly?: boolean };
  emptyDir?: object;
};
type Deployment = ManifestObject & {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number; fsGroup: number; seccompProfile: { type: string } };
        topologySpreadConstraints: { topologyKey: string; whenUnsatisfiable: string; labelSelector: LabelSelector }[];
        containers: Container[];
        volumes: Volume[];
      };
    };
  };
};
type Service = ManifestObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } };
type PolicyRule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type Role = ManifestObject & { rules: PolicyRule[] };
type Binding = ManifestObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
type Certificate = ManifestObject & { spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; issuerRef: { name: string; kind: string } } };
type ConfigMap = ManifestObject & { data: Record<string, string> };

const objects = readObjects(manifestsDir);
const namespace = "pvc-guardian";
const mutating = findObject<WebhookConfiguration>(objects, "MutatingWebhookConfiguration", "pvc-guardian");
const validating = findObject<WebhookConfiguration>(objects, "ValidatingWebhookConfiguration", "pvc-guardian");
const deployment = findObject<Deployment>(objects, "Deployment", "pvc-guardian", namespace);
const service = findObject<Service>(objects, "Service", "pvc-guardian", namespace);
const policyConfigMap = findObject<ConfigMap>(objects, "ConfigMap", "pvc-guardian-policy", namespace);
const container = deployment.spec.template.spec.containers[0]!;
const podSpec = deployment.spec.template.spec;

function onlyWebhook(configuration: WebhookConfiguration): Webhook {
  assert.equal(configuration.webhooks.length, 1, `${configuration.kind} has exactly one webhook`);
  return configuration.webhooks[0]!;
}
const mutator = onlyWebhook(mutating);
const validator = onlyWebhook(validating);

function builtInConfig(): Config {
  const loaded = loadConfig({});
  assert.ok(loaded.ok, `the built-in configuration loads: ${loaded.ok ? "" : loaded.problems.join("; ")}`);
  return loaded.config;
}

function shippedPolicy(): PolicyFile {
  const parsed = parsePolicyFile(policyConfigMap.data["policy.yaml"] ?? "", "policy-configmap.yaml");
  assert.ok(parsed.ok, `the shipped policy file parses: ${parsed.ok ? "" : parsed.problems.join("; ")}`);
  return parsed.file;
}

function envValue(name: string): string | undefined {
  return container.env.find((entry) => entry.name === name)?.value;
}

/** The file a path inside the pod resolves to: which volume, and which key of it. */
function fileInPod(filePath: string): { volume: Volume; relative: string } {
  const mount = container.volumeMounts.filter((m) => filePath.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `${filePath} is inside a volume mount`);
  const volume = podSpec.volumes.find((v) => v.name === mount.name);
  assert.ok(volume, `volume ${mount.name} exists`);
  return { volume, relative: path.posix.relative(mount.mountPath, filePath) };
}

const sortedCopy = (values: readonly string[]): string[] => [...values].sort();

function selectorValues(selector: LabelSelector, key: string, operator: string): string[] | undefined {
  const expression = selector.matchExpressions?.find((e) => e.key === key && e.operator === operator);
  return expression === undefined ? undefined : (expression.values ?? []);
}

/** The string list of a CEL `... in ['a', 'b']` at the end of an expression. */
function celListAfterIn(expression: string): string[] {
  const match = /\bin\s*\[([^\]]*)\]\s*$/.exec(expression);
  assert.ok(match, `expression ends with "in [...]": ${expression}`);
  return match[1]!.split(",").map((item) => item.trim().replace(/^'(.*)'$/, "$1"));
}

describe("webhook configurations agree with the server", () => {
  it("send each webhook to the path its route serves, through the Service port that reaches the container", () => {
    assert.equal(mutator.clientConfig.service.path, mutatePath);
    assert.equal(validator.clientConfig.service.path, validatePath);
    for (const webhook of [mutator, validator]) {
      assert.equal(webhook.clientConfig.service.name, service.metadata.name);
      assert.equal(webhook.clientConfig.service.namespace, service.metadata.namespace);
      const servicePort = service.spec.ports.find((p) => p.port === webhook.clientConfig.service.port);
      assert.ok(servicePort, `the Service exposes port ${webhook.clientConfig.service.port}`);
      const containerPort = container.ports.find((p) => p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort);
      assert.ok(containerPort, `the Service's targetPort ${servicePort.targetPort} is a container port`);
      assert.equal(containerPort.containerPort, builtInConfig().listen.port, "the container port is the port the server listens on by default");
    }
    assert.equal(service.spec.ports[0]?.port, 443);
  });

  it("fail open for the mutator and closed for the validator, as the routes do on handler errors", () => {
    assert.equal(mutator.failurePolicy, "Ignore");
    assert.equal(validator.failurePolicy, "Fail");
    assert.equal(mutator.reinvocationPolicy, "IfNeeded");
  });

  it("declare NoneOnDryRun and admission review v1, for PVC CREATE only", () => {
    for (const webhook of [mutator, validator]) {
      assert.equal(webhook.sideEffects, "NoneOnDryRun");
      assert.deepEqual(webhook.admissionReviewVersions, ["v1"]);
      assert.deepEqual(webhook.rules, [
        { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["persistentvolumeclaims"], scope: "Namespaced" },
      ]);
    }
  });

  it("give the API server a timeout above the internal deadline, equal to the policy webhookTimeoutSeconds", () => {
    const config = builtInConfig();
    const policy = shippedPolicy();
    for (const webhook of [mutator, validator]) {
      assert.ok(webhook.timeoutSeconds <= 10, "at most 10 s, the admission.webhookTimeoutSeconds the README's Configuration section ships");
      assert.ok(
        webhook.timeoutSeconds * 1000 > config.admission.deadlineMs,
        `${webhook.timeoutSeconds}s is above the default deadline ${config.admission.deadlineMs}ms`,
      );
      assert.ok(
        webhook.timeoutSeconds * 1000 > policy.admission.deadline,
        `${webhook.timeoutSeconds}s is above the shipped deadline ${policy.admission.deadline}ms`,
      );
      assert.equal(webhook.timeoutSeconds, config.admission.webhookTimeoutSeconds);
      assert.equal(webhook.timeoutSeconds, policy.admission.webhookTimeoutSeconds);
    }
  });

  it("exclude exactly the policy excluded namespaces, pvc-guardian own among them", () => {
    const policy = shippedPolicy();
    for (const webhook of [mutator, validator]) {
      const excluded = selectorValues(webhook.namespaceSelector, "kubernetes.io/metadata.name", "NotIn");
      assert.ok(excluded, "namespaceSelector has a kubernetes.io/metadata.name NotIn expression");
      assert.deepEqual(sortedCopy(excluded), sortedCopy(DEFAULT_POLICY.excludedNamespaces));
      assert.deepEqual(sortedCopy(excluded), sortedCopy(policy.excludedNamespaces));
      assert.ok(excluded.includes(deployment.metadata.namespace!), "the server never gates its own namespace");
    }
  });

  it("select every backup-labelled PVC for the mutator and only the configured tiers for the validator", () => {
    const policy = shippedPolicy();
    assert.deepEqual(mutator.objectSelector, { matchExpressions: [{ key: BACKUP_LABEL, operator: "Exists" }] });
    const tiers = selectorValues(validator.objectSelector, BACKUP_LABEL, "In");
    assert.ok(tiers, `validator objectSelector has ${BACKUP_LABEL} In [...]`);
    assert.equal(validator.objectSelector.matchExpressions?.length, 1);
    assert.deepEqual(sortedCopy(tiers), sortedCopy(Object.keys(DEFAULT_POLICY.tiers)));
    assert.deepEqual(sortedCopy(tiers), sortedCopy(Object.keys(policy.tiers)));
  });

  it("guard with matchConditions that repeat the label check and leave VolSync own PVCs alone", () => {
    const tierCondition = validator.matchConditions.find((c) => c.name === "protected-tier");
    assert.ok(tierCondition);
    assert.deepEqual(sortedCopy(celListAfterIn(tierCondition.expression)), sortedCopy(Object.keys(DEFAULT_POLICY.tiers)));
    const labelCondition = mutator.matchConditions.find((c) => c.name === "has-backup-label");
    assert.ok(labelCondition?.expression.includes(`'${BACKUP_LABEL}' in object.metadata.labels`));
    for (const webhook of [mutator, validator]) {
      const volsync = webhook.matchConditions.find((c) => c.name === "not-from-volsync");
      assert.ok(volsync?.expression.includes(`system:serviceaccount:${DEFAULT_POLICY.sourceSecret.namespace}:`));
    }
  });

  it("take their CA from the serving Certificate whose Secret the Deployment mounts", () => {
    const certificate = findObject<Certificate>(objects, "Certificate", "pvc-guardian-serving", namespace);
    for (const configuration of [mutating, validating]) {
      assert.equal(configuration.metadata.annotations?.["cert-manager.io/inject-ca-from"], `${namespace}/${certificate.metadata.name}`);
    }
    assert.ok(certificate.spec.dnsNames?.includes(`${service.metadata.name}.${service.metadata.namespace}.svc`));
    const certFile = fileInPod(envValue("PVC_GUARDIAN_TLS_CERT_FILE")!);
    const keyFile = fileInPod(envValue("PVC_GUARDIAN_TLS_KEY_FILE")!);
    assert.equal(certFile.volume.secret?.secretName, certificate.spec.secretName);
    assert.equal(keyFile.volume.secret?.secretName, certificate.spec.secretName);
    assert.deepEqual([certFile.relative, keyFile.relative], ["tls.crt", "tls.key"], "cert-manager writes tls.crt and tls.key");
    const issuer = findObject<ManifestObject & { spec: { ca?: { secretName: string } } }>(objects, "Issuer", certificate.spec.issuerRef.name, namespace);
    const ca = findObject<Certificate>(objects, "Certificate", "pvc-guardian-ca", namespace);
    assert.equal(issuer.spec.ca?.secretName, ca.spec.secretName);
    assert.equal(ca.spec.isCA, true);
  });
});

describe("the Deployment agrees with config.ts", () => {
  it("sets only environment variables config.ts reads, and each one reaches the configuration", () => {
    const policyText = policyConfigMap.data["policy.yaml"]!;
    const policyPath = envValue("PVC_GUARDIAN_POLICY_FILE")!;
    const podFields: Record<string, string> = { "metadata.namespace": namespace, "metadata.name": "pvc-guardian-7d9f-abcde" };
    const env: Record<string, string> = {};
    for (const entry of container.env) {
      const value = entry.value ?? podFields[entry.valueFrom?.fieldRef?.fieldPath ?? ""];
      assert.ok(value !== undefined, `${entry.name} has a value or a known downward API field`);
      env[entry.name] = value;
    }
    const loaded = loadConfig(env, (file) => {
      assert.equal(file, policyPath);
      return policyText;
    });
    assert.ok(loaded.ok, `the Deployment's environment loads: ${loaded.ok ? "" : loaded.problems.join("; ")}`);
    const { config } = loaded;
    // How each variable shows in the loaded configuration. A variable config.ts does not read
    // would be silently ignored (zod drops unknown keys), so every one must be listed here.
    const reaches: Record<string, (value: string) => void> = {
      PVC_GUARDIAN_POLICY_FILE: () => assert.equal(config.policy.dormant, shippedPolicy().dormant),
      PVC_GUARDIAN_TLS_CERT_FILE: (value) => assert.equal(config.tls.certFile, value),
      PVC_GUARDIAN_TLS_KEY_FILE: (value) => assert.equal(config.tls.keyFile, value),
      PVC_GUARDIAN_PORT: (value) => assert.equal(config.listen.port, Number(value)),
      PVC_GUARDIAN_OPS_PORT: (value) => assert.equal(config.listen.opsPort, Number(value)),
      PVC_GUARDIAN_REPOSITORY_PATH: (value) => assert.equal(config.repository?.path, value),
      PVC_GUARDIAN_PASSWORD_FILE: (value) => assert.equal(config.repository?.passwordFile, value),
      PVC_GUARDIAN_KUBERNETES: (value) => assert.equal(config.kubernetes.mode, value),
      PVC_GUARDIAN_LOG_LEVEL: (value) => assert.equal(config.logLevel, value),
      PVC_GUARDIAN_NAMESPACE: (value) => assert.equal(config.namespace, value),
      PVC_GUARDIAN_POD_NAME: (value) => assert.equal(config.podName, value),
      PVC_GUARDIAN_TLS_RELOAD_INTERVAL: (value) => assert.equal(config.tls.reloadIntervalMs, parseDurationMs(value)),
      PVC_GUARDIAN_DRAIN_DELAY: (value) => assert.equal(config.shutdown.drainDelayMs, parseDurationMs(value)),
      PVC_GUARDIAN_DRAIN_TIMEOUT: (value) => assert.equal(config.shutdown.drainTimeoutMs, parseDurationMs(value)),
    };
    for (const [name, value] of Object.entries(env)) {
      if (name === "NODE_OPTIONS") continue; // Node's own, not pvc-guardian's
      const check = reaches[name];
      assert.ok(check, `the Deployment sets ${name}, which config.ts does not read`);
      check(value);
    }
    assert.equal(env["PVC_GUARDIAN_KUBERNETES"], "in-cluster");
  });

  it("mounts the policy, the password and the repository where the environment points, read-only", () => {
    const policyFile = fileInPod(envValue("PVC_GUARDIAN_POLICY_FILE")!);
    assert.equal(policyFile.volume.configMap?.name, policyConfigMap.metadata.name);
    assert.ok(Object.hasOwn(policyConfigMap.data, policyFile.relative));

    const passwordFile = fileInPod(envValue("PVC_GUARDIAN_PASSWORD_FILE")!);
    assert.deepEqual(passwordFile.volume.secret?.items, [{ key: "KOPIA_PASSWORD", path: passwordFile.relative }]);

    const repositoryMount = container.volumeMounts.find((m) => m.mountPath === envValue("PVC_GUARDIAN_REPOSITORY_PATH"));
    assert.ok(repositoryMount, "the repository path is a mount point");
    assert.equal(repositoryMount.readOnly, true);
    const repository = podSpec.volumes.find((v) => v.name === repositoryMount.name);
    assert.equal(repository?.nfs?.readOnly, true);
    for (const mount of container.volumeMounts) {
      if (mount.mountPath !== "/tmp") assert.equal(mount.readOnly, true, `${mount.mountPath} is read-only`);
    }
  });

  it("probes /healthz and /readyz over HTTPS on the webhook port", () => {
    assert.deepEqual(container.livenessProbe.httpGet, { path: healthzPath, port: "https", scheme: "HTTPS" });
    assert.deepEqual(container.startupProbe.httpGet, { path: healthzPath, port: "https", scheme: "HTTPS" });
    assert.deepEqual(container.readinessProbe.httpGet, { path: readyzPath, port: "https", scheme: "HTTPS" });
    assert.deepEqual(container.args, ["serve"]);
  });

  it("opens the webhook port to every caller and the metrics port only to the monitoring namespace", () => {
    type Peer = { namespaceSelector?: LabelSelector; podSelector?: LabelSelector; ipBlock?: object };
    type Rule = { from?: Peer[]; ports: { protocol: string; port: number }[] };
    const networkPolicy = findObject<ManifestObject & { spec: { podSelector: LabelSelector; ingress: Rule[] } }>(
      objects,
      "NetworkPolicy",
      "pvc-guardian",
      namespace,
    );
    assert.deepEqual(networkPolicy.spec.podSelector.matchLabels, deployment.spec.selector.matchLabels);
    const config = builtInConfig();
    const webhookPort = container.ports.find((p) => p.name === "https");
    const metricsPort = container.ports.find((p) => p.name === "metrics");
    assert.equal(webhookPort?.containerPort, config.listen.port);
    assert.equal(metricsPort?.containerPort, config.listen.opsPort);
    assert.equal(envValue("PVC_GUARDIAN_OPS_PORT"), String(config.listen.opsPort));
    const rulesFor = (port: number) => networkPolicy.spec.ingress.filter((rule) => rule.ports.some((p) => p.port === port));
    // Each port in exactly one rule, and no rule for a port the pod does not serve.
    assert.equal(rulesFor(config.listen.port).length, 1);
    assert.equal(rulesFor(config.listen.opsPort).length, 1);
    for (const rule of networkPolicy.spec.ingress) {
      for (const p of rule.ports)
        assert.ok(
          container.ports.some((c) => c.containerPort === p.port),
          `ingress port ${p.port} is a container port`,
        );
    }
    assert.equal(rulesFor(config.listen.port)[0]!.from, undefined, "the API server is not a pod: the webhook port is open");
    const metricsFrom = rulesFor(config.listen.opsPort)[0]!.from;
    assert.deepEqual(metricsFrom, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]);
    assert.ok(!service.spec.ports.some((p) => p.targetPort === "metrics" || p.targetPort === config.listen.opsPort), "no Service exposes the metrics port");
  });

  it("gives the pod longer to terminate than the server drains on SIGTERM", () => {
    // The drain as the Deployment's environment sets it, or the defaults where it does not.
    const drainEnv = { PVC_GUARDIAN_DRAIN_DELAY: envValue("PVC_GUARDIAN_DRAIN_DELAY"), PVC_GUARDIAN_DRAIN_TIMEOUT: envValue("PVC_GUARDIAN_DRAIN_TIMEOUT") };
    const loaded = loadConfig(drainEnv);
    assert.ok(loaded.ok, `the Deployment's drain settings load: ${loaded.ok ? "" : loaded.problems.join("; ")}`);
    const { shutdown } = loaded.config;
    const graceSeconds = (deployment.spec.template.spec as { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds ?? 30;
    assert.ok(
      graceSeconds * 1000 > shutdown.drainDelayMs + shutdown.drainTimeoutMs,
      `${graceSeconds}s covers ${shutdown.drainDelayMs} + ${shutdown.drainTimeoutMs} ms`,
    );
  });

  it("runs two replicas spread over nodes, non-root as the mover UID, locked down", () => {
    const mover = DEFAULT_POLICY.resources.moverSecurityContext;
    assert.equal(deployment.spec.replicas, 2);
    assert.ok(podSpec.topologySpreadConstraints.some((c) => c.topologyKey === "kubernetes.io/hostname" && c.whenUnsatisfiable === "DoNotSchedule"));
    assert.deepEqual(
      { runAsUser: podSpec.securityContext.runAsUser, runAsGroup: podSpec.securityContext.runAsGroup, fsGroup: podSpec.securityContext.fsGroup },
      { ...mover },
    );
    assert.equal(podSpec.securityContext.runAsNonRoot, true);
    assert.equal(podSpec.securityContext.seccompProfile.type, "RuntimeDefault");
    const security = container.securityContext;
    assert.equal(security.runAsUser, mover.runAsUser);
    assert.equal(security.readOnlyRootFilesystem, true);
    assert.equal(security.allowPrivilegeEscalation, false);
    assert.deepEqual(security.capabilities.drop, ["ALL"]);
    assert.equal(security.seccompProfile.type, "RuntimeDefault");
    assert.ok(container.resources.requests?.["cpu"] && container.resources.requests["memory"] && container.resources.limits?.["memory"]);
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    const pdb = findObject<ManifestObject & { spec: { minAvailable: number; selector: LabelSelector } }>(
      objects,
      "PodDisruptionBudget",
      "pvc-guardian",
      namespace,
    );
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.ok(pdb.spec.minAvailable < deployment.spec.replicas, "a drain can still evict one replica");
  });
});

describe("RBAC is least privilege", () => {
  const clusterRole = findObject<Role>(objects, "ClusterRole", "pvc-guardian");

  it("grants exactly: read PVCs, namespaces and the two VolSync CRDs; manage Secrets and VolSync objects; emit Events", () => {
    const granted = clusterRole.rules.flatMap((rule) =>
      rule.apiGroups.flatMap((group) => rule.resources.map((resource) => `${group}/${resource}: ${sortedCopy(rule.verbs).join(",")}`)),
    );
    assert.deepEqual(sortedCopy(granted), [
      "/namespaces: get,list,watch",
      "/persistentvolumeclaims: get,list,watch",
      "/secrets: create,delete,get,list,patch,update,watch",
      "apiextensions.k8s.io/customresourcedefinitions: get,list,watch",
      "events.k8s.io/events: create,patch",
      "volsync.backube/replicationdestinations: create,delete,get,list,patch,update,watch",
      "volsync.backube/replicationsources: create,delete,get,list,patch,update,watch",
    ]);
    for (const rule of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role").flatMap((o) => (o as Role).rules)) {
      assert.ok(![...rule.apiGroups, ...rule.resources, ...rule.verbs].includes("*"), "no wildcards");
    }
  });

  it("reads only the CRDs of the VolSync kinds it writes, by name", () => {
    const rules = clusterRole.rules.filter((rule) => rule.resources.includes("customresourcedefinitions"));
    assert.equal(rules.length, 1);
    assert.deepEqual(sortedCopy(rules[0]!.resourceNames ?? []), sortedCopy([crdNameOf(REPLICATION_SOURCES), crdNameOf(REPLICATION_DESTINATIONS)]));
    assert.deepEqual(sortedCopy(rules[0]!.resourceNames ?? []), ["replicationdestinations.volsync.backube", "replicationsources.volsync.backube"]);
  });

  it("names the policy source Secret, and keeps Leases in pvc-guardian own namespace", () => {
    const source = DEFAULT_POLICY.sourceSecret;
    const sourceRole = findObject<Role>(objects, "Role", "pvc-guardian-source-secret", source.namespace);
    assert.deepEqual(sourceRole.rules, [{ apiGroups: [""], resources: ["secrets"], resourceNames: [source.name], verbs: ["get", "watch"] }]);
    const ownRole = findObject<Role>(objects, "Role", "pvc-guardian", namespace);
    assert.ok(ownRole.rules.some((rule) => rule.apiGroups.includes("coordination.k8s.io") && rule.resources.includes("leases")));
    for (const binding of objects.filter((o): o is Binding => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: podSpec.serviceAccountName, namespace }]);
      assert.ok(
        objects.some((o) => o.kind === binding.roleRef.kind && o.metadata.name === binding.roleRef.name && o.metadata.namespace === binding.metadata.namespace),
      );
    }
  });
});
