import { test } from "node:test";
import assert from "node:assert/strict";
import { formatAuditTable, runAuditCommand } from "../../../webhook/cli/audit.ts";
import type { AuditReport } from "../../../webhook/domain/backup-audit.ts";
import { recordingCliIo } from "../../support/recording-cli-io.ts";

const report: AuditReport = {
  generatedAt: "2026-11-25T12:30:00.000Z",
  repositoryReadable: true,
  repositoryProblem: null,
  rows: [
    {
      namespace: "apps",
      pvc: "data",
      tier: "hourly",
      phase: "Bound",
      identity: "data-backup@apps:/data",
      repository: null,
      objects: { secret: true, replicationDestination: true, replicationSource: true },
      lastSnapshotTime: "2026-11-25T12:00:00Z",
      completeSnapshots: 3,
      replicationSourceLastSyncTime: "2026-11-25T12:00:05Z",
      restore: null,
      verdict: "ok",
      detail: null,
    },
    {
      namespace: "media",
      pvc: "library",
      tier: "daily",
      phase: "Bound",
      identity: "library-backup@media:/data",
      repository: null,
      objects: { secret: true, replicationDestination: false, replicationSource: false },
      lastSnapshotTime: null,
      completeSnapshots: 0,
      replicationSourceLastSyncTime: null,
      restore: null,
      verdict: "missing-objects",
      detail: "missing ReplicationDestination; the reconciler should create them",
    },
    {
      namespace: "media",
      pvc: "restored",
      tier: "daily",
      phase: "Bound",
      identity: "restored-backup@media:/data",
      repository: null,
      objects: { secret: true, replicationDestination: true, replicationSource: false },
      lastSnapshotTime: "2026-11-24T02:00:00Z",
      completeSnapshots: 1,
      replicationSourceLastSyncTime: null,
      restore: { snapshot: "k42", verdict: "empty", detail: "The mover found no eligible snapshot." },
      verdict: "restore-failed",
      detail: "restore empty: The mover found no eligible snapshot.",
    },
    {
      namespace: "media",
      pvc: "restoring",
      tier: "daily",
      phase: "Pending",
      identity: "restoring-backup@media:/data",
      repository: null,
      objects: { secret: true, replicationDestination: true, replicationSource: false },
      lastSnapshotTime: "2026-11-24T02:00:00Z",
      completeSnapshots: 1,
      replicationSourceLastSyncTime: null,
      restore: { snapshot: "k43", verdict: null, detail: null },
      verdict: "no-backup-yet",
      detail: null,
    },
  ],
};

test("the table aligns columns, flags objects S D R, shows restore verdicts and explains problems below", () => {
  assert.equal(
    formatAuditTable(report),
    [
      "NAMESPACE  PVC        TIER    OBJECTS  LAST SNAPSHOT         RS LAST SYNC          RESTORE  VERDICT",
      "apps       data       hourly  SDR      2026-11-25T12:00:00Z  2026-11-25T12:00:05Z  -        ok",
      "media      library    daily   S--      -                     -                     -        missing-objects",
      "media      restored   daily   SD-      2026-11-24T02:00:00Z  -                     empty    restore-failed",
      "media      restoring  daily   SD-      2026-11-24T02:00:00Z  -                     pending  no-backup-yet",
      "",
      "media/library: missing ReplicationDestination; the reconciler should create them",
      "media/restored: restore empty: The mover found no eligible snapshot.",
      "",
    ].join("\n"),
  );
});

test("audit asks the read API with the token and CA from files and prints the table or JSON", async () => {
  const calls: { url: string; token: string; caPem: string; serverName?: string }[] = [];
  const fetchAudit = async (options: { url: URL; token: string; caPem: string; serverName?: string }) => {
    calls.push({ ...options, url: options.url.href });
    return { status: 200, text: JSON.stringify(report) };
  };
  const table = recordingCliIo({ token: "eyJ.token\n", "ca.crt": "PEM" });
  assert.equal(
    await runAuditCommand(
      ["--server", "https://localhost:8443", "--token-file", "token", "--ca-file", "ca.crt", "--server-name", "pvc-guardian.pvc-guardian.svc"],
      table,
      fetchAudit,
    ),
    0,
  );
  assert.deepEqual(calls[0], { url: "https://localhost:8443/v1/audit", token: "eyJ.token", caPem: "PEM", serverName: "pvc-guardian.pvc-guardian.svc" });
  assert.equal(table.out, formatAuditTable(report));
  const json = recordingCliIo({ token: "t", "ca.crt": "PEM" });
  assert.equal(await runAuditCommand(["--server", "https://h", "--token-file", "token", "--ca-file", "ca.crt", "-o", "json"], json, fetchAudit), 0);
  assert.deepEqual(JSON.parse(json.out), report);
});

test("audit refuses plain http, reports a refusal with the server message, and exits 2 on bad usage", async () => {
  const never = async () => assert.fail("no request expected");
  const plain = recordingCliIo({ token: "t", "ca.crt": "PEM" });
  assert.equal(await runAuditCommand(["--server", "http://h", "--token-file", "token", "--ca-file", "ca.crt"], plain, never), 2);
  assert.match(plain.err, /https/);
  const refused = recordingCliIo({ token: "t", "ca.crt": "PEM" });
  const forbidden = async () => ({ status: 403, text: JSON.stringify({ error: "forbidden", message: "system:serviceaccount:a:b may not read" }) });
  assert.equal(await runAuditCommand(["--server", "https://h", "--token-file", "token", "--ca-file", "ca.crt"], refused, forbidden), 1);
  assert.match(refused.err, /HTTP 403\): system:serviceaccount:a:b may not read/);
  const usage = recordingCliIo({});
  assert.equal(await runAuditCommand(["--server", "https://h"], usage, never), 2);
});
