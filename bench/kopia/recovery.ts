// How soon answers are right again after a repository fault is undone: the folder is renamed away
// (an unmounted NFS share), the catalog fails its reads, the folder comes back, and the time until
// the catalog answers from the repository again is measured. Side by side, in the same run: how
// long the kopia CLI itself takes to list the same repository once it is back (what a checker
// that runs kopia on every request would pay each time, not once).
//
// Run: ./node_modules/.bin/node bench/kopia/recovery.ts [--trials 10]

import { execFile } from "node:child_process";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { createKopiaCatalog } from "../../webhook/kopia/snapshot-catalog.ts";
import { createKopiaRepository, findKopiaBinary } from "../../test/harness/kopia.ts";

const { values } = parseArgs({ options: { trials: { type: "string", default: "10" } } });
const trials = Number(values.trials);
const execFileAsync = promisify(execFile);

const found = findKopiaBinary("v0.22.3");
if (!("path" in found)) throw new Error(found.skipReason);
const repository = await createKopiaRepository({ binaryPath: found.path, layout: "create" });
try {
  for (let i = 0; i < 5; i++) {
    await repository.snapshot(await repository.makeSourceDir(`app-${i}`, { "data.txt": `generation ${i}` }), { source: `app-${i}-backup@media:/data` });
  }
  const catalog = createKopiaCatalog({
    repositoryPath: repository.rootPath,
    passwordFile: repository.passwordFile,
    refreshIntervalMs: 60_000, // the default interval: what recovery used to wait for
    freshnessBoundMs: 300_000,
    missRefreshTimeoutMs: 1_500,
  });
  await catalog.start();
  const hidden = `${repository.rootPath}.unmounted`;
  const recoveryMs: number[] = [];
  const kopiaListMs: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    await rename(repository.rootPath, hidden);
    await catalog.refresh(); // the fault is seen
    await sleep(3_000 + Math.random() * 2_000); // the fault lasts a while; retries back off meanwhile
    await rename(hidden, repository.rootPath);
    const undoneAt = performance.now();
    while (!catalog.lookup("app-0-backup@media:/data", Date.now()).readable) {
      if (performance.now() - undoneAt > 120_000) throw new Error("no recovery within 120 s");
      await sleep(10);
    }
    recoveryMs.push(performance.now() - undoneAt);
    const listStarted = performance.now();
    await execFileAsync(found.path, ["snapshot", "list", "--all", "--json", `--config-file=${join(repository.workDir, "kopia.config")}`], {
      env: { ...process.env, KOPIA_PASSWORD: repository.password, KOPIA_CHECK_FOR_UPDATES: "false", HOME: repository.workDir },
    });
    kopiaListMs.push(performance.now() - listStarted);
  }
  catalog.stop();
  const describe = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return `p50 ${at(0.5).toFixed(0)} ms, max ${sorted[sorted.length - 1]!.toFixed(0)} ms`;
  };
  console.log(`trials: ${trials} (fault held 3–5 s each)`);
  console.log(`pvc-guardian catalog, fault undone → answers from the repository: ${describe(recoveryMs)}`);
  console.log(`kopia CLI, one \`snapshot list --all --json\` after the fault: ${describe(kopiaListMs)}`);
  console.log("target: correct answers within 5 s of the fault being undone");
} finally {
  await repository.dispose();
}
