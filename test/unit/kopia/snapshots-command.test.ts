// The `pvc-guardian snapshots` command's argument handling (its output against real kopia is
// covered by test/integration/kopia/).

import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runSnapshotsCommand } from "../../../webhook/cli/snapshots.ts";

async function run(args: string[]) {
  let stdout = "";
  let stderr = "";
  const exitCode = await runSnapshotsCommand(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { exitCode, stdout, stderr };
}

describe("snapshots command", () => {
  it("prints usage and exits 2 without a repository or password file", async () => {
    const missing = await run(["--json"]);
    assert.equal(missing.exitCode, 2);
    assert.match(missing.stderr, /usage: pvc-guardian snapshots --repository <dir\|s3:\/\/bucket\/prefix> --password-file <file>/);
  });

  it("exits 2 on an unknown flag", async () => {
    const unknown = await run(["--repository", "/r", "--password-file", "/p", "--frobnicate"]);
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /frobnicate/);
  });

  it("prints usage on --help", async () => {
    const help = await run(["--help"]);
    assert.equal(help.exitCode, 0);
    assert.match(help.stdout, /^usage:/);
  });

  it("exits 1 and prints nothing on stdout when the repository cannot be read", async () => {
    const result = await run(["--repository", join(tmpdir(), "pvc-guardian-no-repository-here"), "--password-file", "/dev/null", "--json"]);
    assert.equal(result.exitCode, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /cannot read the Kopia repository at .* \(not-found\)/);
  });
});
