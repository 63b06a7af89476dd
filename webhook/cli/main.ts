#!/usr/bin/env node
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { serve } from "../main.ts";
import type { CliIo } from "./cli-io.ts";
import { runAuditCommand } from "./audit.ts";
import { runPlanCommand } from "./plan.ts";
import { runSnapshotsCommand } from "./snapshots.ts";

// `pvc-guardian <command>`: the one entry point of the bundle in dist/.

const USAGE = `usage: pvc-guardian <command> [options]

commands:
  serve       run the admission webhook, catalog, reconciler and sweeper (configured by environment)
  plan        show, offline, what admission would do with the PVCs in a YAML stream
  snapshots   list a Kopia repository's snapshots as \`kopia snapshot list --all --json\` does
  audit       every protected PVC's backup state, from a running server's authenticated read API
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve":
      return serve(io.env);
    case "plan":
      return runPlanCommand(args, io);
    case "snapshots":
      return runSnapshotsCommand(args, io);
    case "audit":
      return runAuditCommand(args, io);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      io.stdout(USAGE);
      return command === undefined ? 2 : 0;
    default:
      io.stderr(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

/** The real file behind a path, so a start through a link (npx, npm link, a global bin) is recognised. */
function realFile(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

const startedAs = process.argv[1] === undefined ? undefined : realFile(process.argv[1]);
const isEntryPoint = startedAs !== undefined && startedAs === realFile(fileURLToPath(import.meta.url));
if (isEntryPoint) {
  const io: CliIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readFile: (path) => readFileSync(path, "utf8"),
    readStdin,
    env: process.env,
    now: Date.now,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`pvc-guardian: ${error instanceof Error && error.stack ? error.stack : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
