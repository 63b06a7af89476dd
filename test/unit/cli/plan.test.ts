import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { runPlanCommand } from "../../../webhook/cli/plan.ts";
import { recordingCliIo } from "../../support/recording-cli-io.ts";

const NOW_MS = Date.parse("2026-11-25T12:00:00Z");

const createIo = (files: Record<string, string>, stdin = "") => recordingCliIo(files, { stdin, nowMs: NOW_MS });

const manifests = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: app-data
  namespace: media
  labels: { backup: hourly, app.kubernetes.io/instance: media }
spec:
  accessModes: [ReadWriteMany]
  resources: { requests: { storage: 10Gi } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: media }
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: scratch, namespace: media }
spec: { resources: { requests: { storage: 1Gi } } }
`;

type PlanReport = {
  summary: { pvcs: number; protected: number; denied: number };
  pvcs: {
    pvc: string;
    protected: boolean;
    tier?: string;
    identity?: string;
    decision?: string;
    admission: { allowed: boolean; message?: string };
    patch: { op: string; path: string; value: unknown }[];
    generated: { kind: string; metadata: { name: string; labels: Record<string, string> }; spec?: Record<string, unknown> }[];
  }[];
};

describe("pvc-guardian plan", () => {
  it("reports unknown and a denial for a protected PVC when no repository can be read", async () => {
    const io = createIo({ "m.yaml": manifests });
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--output", "json"], io), 0);
    const report = JSON.parse(io.out) as PlanReport;
    assert.deepEqual(report.summary, { pvcs: 2, protected: 1, denied: 1 });
    const [appData, scratch] = report.pvcs;
    assert.equal(appData?.decision, "unknown");
    assert.equal(appData?.admission.allowed, false);
    assert.match(appData?.admission.message ?? "", /cannot tell whether the backup repository holds data/);
    assert.deepEqual(appData?.patch, []);
    assert.equal(scratch?.protected, false);
    assert.equal(scratch?.admission.allowed, true);
  });

  it("previews the restore path with the patch and an active ReplicationDestination", async () => {
    const io = createIo({ "m.yaml": manifests });
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--assume", "restore", "-o", "json"], io), 0);
    const appData = (JSON.parse(io.out) as PlanReport).pvcs[0]!;
    assert.equal(appData.identity, "app-data-backup@media:/data");
    assert.deepEqual(appData.patch, [
      { op: "add", path: "/spec/dataSourceRef", value: { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "app-data-backup" } },
    ]);
    const kinds = appData.generated.map((object) => `${object.kind}/${object.metadata.name}`);
    assert.deepEqual(kinds, ["Secret/volsync-app-data", "ReplicationDestination/app-data-backup", "ReplicationSource/app-data-backup"]);
    const destination = appData.generated[1]!;
    assert.equal(destination.spec?.["paused"], false);
    assert.deepEqual((destination.spec?.["kopia"] as { accessModes: string[] }).accessModes, ["ReadWriteMany"]);
    // The PVC's own labels (ArgoCD's tracking label among them) are never copied.
    assert.equal(destination.metadata.labels["app.kubernetes.io/instance"], undefined);
  });

  it("previews the fresh path with no patch and a paused ReplicationDestination", async () => {
    const io = createIo({}, manifests);
    assert.equal(await runPlanCommand(["-f", "-", "--assume", "fresh"], io), 0);
    const report = parseYaml(io.out) as PlanReport;
    const appData = report.pvcs[0]!;
    assert.equal(appData.decision, "fresh");
    assert.deepEqual(appData.patch, []);
    assert.equal(appData.generated[1]?.spec?.["paused"], true);
  });

  it("names the document and the field of a malformed PVC", async () => {
    const bad = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: db\n  labels: {backup: 1}\nspec: {}\n`;
    const io = createIo({ "bad.yaml": bad });
    assert.equal(await runPlanCommand(["-f", "bad.yaml"], io), 1);
    assert.match(io.err, /bad\.yaml: document 2 \(PersistentVolumeClaim db\): .*metadata\.labels\.backup: .*expected string.*quote numbers/);
  });

  it("reports YAML syntax errors with the document number", async () => {
    const io = createIo({ "broken.yaml": "apiVersion: v1\n---\nkind: [unclosed\n" });
    assert.equal(await runPlanCommand(["-f", "broken.yaml"], io), 1);
    assert.match(io.err, /broken\.yaml: document 2/);
  });

  it("lists every problem of a bad policy file and stops", async () => {
    const io = createIo({ "m.yaml": manifests, "policy.yaml": "tiers: {hourly: {schedule: '0 * *'}}\nfirstBackupDelay: later\n" });
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--policy", "policy.yaml"], io), 1);
    assert.match(io.err, /tiers\.hourly\.schedule/);
    assert.match(io.err, /firstBackupDelay/);
  });

  it("uses the tiers of a custom policy", async () => {
    const policy = "tiers:\n  weekly: { schedule: 'H 4 * * 0' }\n";
    const weekly = manifests.replace("backup: hourly", "backup: weekly");
    const io = createIo({ "m.yaml": weekly, "policy.yaml": policy });
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--policy", "policy.yaml", "--assume", "fresh", "-o", "json"], io), 0);
    const appData = (JSON.parse(io.out) as PlanReport).pvcs[0]!;
    assert.equal(appData.tier, "weekly");
    const source = appData.generated[2]!;
    assert.match((source.spec?.["trigger"] as { schedule: string }).schedule, /^\d{1,2} 4 \* \* 0$/);
  });

  it("rejects unknown flags and values with usage", async () => {
    const io = createIo({});
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--assume", "maybe"], io), 2);
    assert.match(io.err, /--assume must be restore or fresh/);
    assert.equal(await runPlanCommand(["--bogus"], io), 2);
  });
});
