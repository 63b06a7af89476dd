import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const cliSource = fileURLToPath(new URL("../../../webhook/cli/main.ts", import.meta.url));

// npx, `npm i -g` and `npm link` start the CLI through a link named like the bin (no extension);
// it once printed nothing and exited 0 that way.
for (const [how, linkName] of [
  ["directly", undefined],
  ["through a link named like npm's bin", "pvc-guardian"],
  ["through a link in another folder", "cli.ts"],
] as const) {
  test(`the CLI runs when started ${how}`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pvc-guardian-bin-"));
    try {
      const entry = linkName === undefined ? cliSource : path.join(dir, linkName);
      if (linkName !== undefined) symlinkSync(cliSource, entry);
      const help = await run(process.execPath, [entry, "help"]);
      assert.match(help.stdout, /^usage: pvc-guardian <command>/);
      const unknown = await run(process.execPath, [entry, "no-such-command"]).then(
        () => assert.fail("an unknown command must not exit 0"),
        (error: { code?: number; stderr?: string }) => error,
      );
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr ?? "", /unknown command "no-such-command"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
