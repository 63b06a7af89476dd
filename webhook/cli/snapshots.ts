// `pvc-guardian snapshots`: lists every snapshot of a Kopia repository (a folder, or S3) with the
// same reader the server uses, in kopia's own JSON shape, so the two can be diffed.

import { readPasswordFile } from "../kopia/password-file.ts";
import { isRepositoryError } from "../kopia/repository-error.ts";
import { createRepositoryReader } from "../kopia/repository-reader.ts";
import { formatSnapshotListJson, formatSnapshotListTable } from "../kopia/snapshot-list-output.ts";
import { computeRetentionReasons } from "../kopia/snapshot-retention.ts";
import { parseCommandOptions } from "./command-options.ts";
import { openRepositoryStore, repositoryStoreUsage } from "./repository-store.ts";
import { errorMessage } from "../domain/error-message.ts";

const usage =
  "usage: pvc-guardian snapshots --repository <dir|s3://bucket/prefix> --password-file <file> [--json] [--no-retention]\n" +
  "                              [--s3-addressing path|virtual-hosted] [--s3-ca-file <pem>]\n" +
  repositoryStoreUsage;

export async function runSnapshotsCommand(
  args: string[],
  io: { stdout: (s: string) => void; stderr: (s: string) => void; env?: Readonly<Record<string, string | undefined>> },
): Promise<number> {
  const parsed = parseCommandOptions(
    args,
    {
      repository: { type: "string" },
      "password-file": { type: "string" },
      json: { type: "boolean" },
      retention: { type: "boolean", default: true },
      "no-retention": { type: "boolean" },
      "s3-addressing": { type: "string" },
      "s3-ca-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    usage,
    io,
  );
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  if (values["no-retention"]) values.retention = false;
  const repositoryPath = values.repository;
  const passwordFile = values["password-file"];
  if (!repositoryPath || !passwordFile) {
    io.stderr(usage);
    return 2;
  }
  const opened = openRepositoryStore(repositoryPath, io.env ?? {}, {
    ...(values["s3-addressing"] !== undefined ? { addressing: values["s3-addressing"] } : {}),
    ...(values["s3-ca-file"] !== undefined ? { caFile: values["s3-ca-file"] } : {}),
  });
  if (!opened.ok) {
    io.stderr(`${opened.problem}\n${usage}`);
    return 2;
  }
  const reader = createRepositoryReader({
    store: opened.store,
    readPassword: () => readPasswordFile(passwordFile),
  });
  try {
    const { snapshots, policies } = await reader.read();
    const retentionReasons = values.retention === false ? undefined : computeRetentionReasons(snapshots, policies);
    io.stdout(values.json ? formatSnapshotListJson(snapshots, retentionReasons) : formatSnapshotListTable(snapshots, retentionReasons));
    return 0;
  } catch (error) {
    const kind = isRepositoryError(error) ? ` (${error.kind})` : "";
    io.stderr(`cannot read the Kopia repository at ${repositoryPath}${kind}: ${errorMessage(error)}\n`);
    return 1;
  }
}
