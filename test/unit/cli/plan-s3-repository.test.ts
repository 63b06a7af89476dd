import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runPlanCommand } from "../../../webhook/cli/plan.ts";
import { backupTargetOf, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import { recordingCliIo } from "../../support/recording-cli-io.ts";

const pvc = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: app-data
  namespace: media
  labels: { backup: hourly }
spec:
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1Gi } }
`;

type Generated = { kind: string; spec?: { kopia?: Record<string, unknown> } };

describe("generated objects for an S3 repository", () => {
  it("plan shows no mover volume and says the Secret clone carries the S3 keys", async () => {
    const io = recordingCliIo({
      "m.yaml": pvc,
      "policy.yaml": "repository:\n  s3:\n    credentialsDir: /etc/pvc-guardian/repository\n    url: s3://backups/cluster-a\n",
    });
    assert.equal(await runPlanCommand(["-f", "m.yaml", "--policy", "policy.yaml", "--assume", "fresh", "--output", "json"], io), 0, io.err);
    const report = JSON.parse(io.out) as { pvcs: { generated: Generated[]; notes: string[] }[] };
    const entry = report.pvcs[0]!;
    const kopiaSpecs = entry.generated.filter((o) => o.kind !== "Secret").map((o) => o.spec?.kopia ?? {});
    assert.ok(kopiaSpecs.length >= 1);
    for (const kopia of kopiaSpecs) assert.equal("moverVolumes" in kopia, false, "no NFS mover volume for S3");
    assert.ok(
      entry.notes.some((n) => /the repository is in S3 \(s3:\/\/backups\/cluster-a\).*AWS_ACCESS_KEY_ID.*AWS_S3_ENDPOINT/.test(n)),
      entry.notes.join("\n"),
    );
  });

  it("the Secret clone carries every S3 key of the source Secret as it has them", () => {
    const source = Object.fromEntries(
      ["KOPIA_REPOSITORY", "KOPIA_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT", "AWS_S3_DISABLE_TLS", "AWS_REGION"].map((k) => [
        k,
        Buffer.from(`value of ${k}`).toString("base64"),
      ]),
    );
    const target = backupTargetOf({ spec: { resources: { requests: { storage: "1Gi" } } } }, "app-data", "media");
    assert.deepEqual(desiredSecret(target, source).data, source);
  });
});
