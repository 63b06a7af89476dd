// `pvc-guardian audit`: the read API's /v1/audit of a running server, as a table or JSON.
//
// It asks the server rather than computing the audit itself: the server already holds the
// snapshot catalog and reads the cluster with its own ServiceAccount, while the repository (an
// NFS share readable only by the mover's UID) is rarely reachable from an operator's machine.
// The caller needs a ServiceAccount token for the read API's audience and on its allow-list:
//   kubectl -n pvc-guardian create token audit-reader --audience pvc-guardian > token
//   kubectl -n pvc-guardian port-forward svc/pvc-guardian 8443:443 &
//   pvc-guardian audit --server https://localhost:8443 --token-file token --ca-file ca.crt \
//     --server-name pvc-guardian.pvc-guardian.svc

import { request as httpsRequest } from "node:https";
import type { AuditReport, AuditRow } from "../domain/backup-audit.ts";
import { auditPath } from "../server/read-api-routes.ts";
import type { CliIo } from "./cli-io.ts";
import { parseCommandOptions } from "./command-options.ts";
import { errorMessage } from "../domain/error-message.ts";

const usage = `usage: pvc-guardian audit --server <https://host:port> --token-file <file> --ca-file <file> [--server-name <name>] [--output table|json]

Prints every protected PVC with its tier, generated objects (S = Secret, D = ReplicationDestination,
R = ReplicationSource), newest snapshot, ReplicationSource last sync, the verdict on the restore
pvc-guardian started for it (pending until its mover finishes; - when none) and the PVC's verdict,
as served by a running pvc-guardian's read API (GET ${auditPath}).
`;

export type AuditFetch = (options: { url: URL; token: string; caPem: string; serverName?: string }) => Promise<{ status: number; text: string }>;

function fetchOverHttps(options: { url: URL; token: string; caPem: string; serverName?: string }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      options.url,
      {
        method: "GET",
        ca: options.caPem,
        // Through a port-forward the host is localhost; the certificate names the Service.
        ...(options.serverName === undefined ? {} : { servername: options.serverName }),
        headers: { accept: "application/json", authorization: `Bearer ${options.token}` },
        timeout: 30_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error("no answer within 30 s")));
    request.on("error", reject);
    request.end();
  });
}

function objectFlags(objects: AuditRow["objects"]): string {
  return `${objects.secret ? "S" : "-"}${objects.replicationDestination ? "D" : "-"}${objects.replicationSource ? "R" : "-"}`;
}

/** The audit as an aligned text table, one PVC per line, problems explained below it. */
export function formatAuditTable(report: AuditReport): string {
  const header = ["NAMESPACE", "PVC", "TIER", "OBJECTS", "LAST SNAPSHOT", "RS LAST SYNC", "RESTORE", "VERDICT"];
  const lines = report.rows.map((row) => [
    row.namespace,
    row.pvc,
    row.tier,
    objectFlags(row.objects),
    row.lastSnapshotTime ?? "-",
    row.replicationSourceLastSyncTime ?? "-",
    // Older servers send no restore field.
    row.restore ? (row.restore.verdict ?? "pending") : "-",
    row.verdict,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)));
  const render = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ");
  let text = [render(header), ...lines.map(render)].join("\n") + "\n";
  const problems = report.rows.filter((row) => row.detail !== null);
  if (problems.length > 0) text += "\n" + problems.map((row) => `${row.namespace}/${row.pvc}: ${row.detail}`).join("\n") + "\n";
  if (!report.repositoryReadable) text += `\nthe repository could not be read: ${report.repositoryProblem}\n`;
  if (report.rows.length === 0) text += "(no protected PVCs)\n";
  return text;
}

export async function runAuditCommand(
  args: string[],
  io: Pick<CliIo, "stdout" | "stderr" | "readFile">,
  fetchAudit: AuditFetch = fetchOverHttps,
): Promise<number> {
  const parsed = parseCommandOptions(
    args,
    {
      server: { type: "string" },
      "token-file": { type: "string" },
      "ca-file": { type: "string" },
      "server-name": { type: "string" },
      output: { type: "string", short: "o", default: "table" },
      help: { type: "boolean", short: "h" },
    },
    usage,
    io,
  );
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  if (!values.server || !values["token-file"] || !values["ca-file"] || (values.output !== "table" && values.output !== "json")) {
    io.stderr(usage);
    return 2;
  }
  let url: URL;
  try {
    url = new URL(auditPath, values.server);
  } catch {
    io.stderr(`--server ${values.server} is not a URL\n`);
    return 2;
  }
  if (url.protocol !== "https:") {
    io.stderr("--server must be an https:// URL: the token must not cross the network in clear text\n");
    return 2;
  }
  let answer: { status: number; text: string };
  try {
    answer = await fetchAudit({
      url,
      token: io.readFile(values["token-file"]).trim(),
      caPem: io.readFile(values["ca-file"]),
      ...(values["server-name"] === undefined ? {} : { serverName: values["server-name"] }),
    });
  } catch (error) {
    io.stderr(`cannot reach pvc-guardian at ${values.server}: ${errorMessage(error)}\n`);
    return 1;
  }
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    io.stderr(`pvc-guardian answered HTTP ${answer.status} with something that is not JSON\n`);
    return 1;
  }
  if (answer.status !== 200) {
    const message = (body as { message?: unknown }).message;
    io.stderr(`pvc-guardian refused the audit (HTTP ${answer.status}): ${typeof message === "string" ? message : answer.text}\n`);
    return 1;
  }
  const report = body as AuditReport;
  io.stdout(values.output === "json" ? `${JSON.stringify(report, null, 2)}\n` : formatAuditTable(report));
  return 0;
}
