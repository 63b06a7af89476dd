// Child process of bench/kopia/run.ts: the RSS of a process that only loads the catalog, so
// neither the kopia CLI's JSON nor the benchmark's own work is counted. run.ts bundles it first,
// as the server is bundled for production, so Node's TypeScript stripping is not counted either.
// Usage: node --expose-gc rss-probe.mjs <repository|s3://bucket/prefix> <password-file>
// (for S3, the settings come from the mover's environment variables, as for the CLI)

import { openRepositoryStore } from "../../webhook/cli/repository-store.ts";
import { createKopiaCatalog } from "../../webhook/kopia/snapshot-catalog.ts";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
gc();
const baselineMiB = process.memoryUsage().rss / 1024 / 1024;
const catalog = createKopiaCatalog({
  repositoryPath: process.argv[2]!,
  passwordFile: process.argv[3]!,
  refreshIntervalMs: 3_600_000,
  freshnessBoundMs: 3_600_000,
  missRefreshTimeoutMs: 1_000,
  ...(() => {
    const opened = openRepositoryStore(process.argv[2]!, process.env, {});
    if (!opened.ok) throw new Error(opened.problem);
    return { store: opened.store };
  })(),
});
await catalog.start();
catalog.stop();
gc();
const usage = process.memoryUsage();
process.stdout.write(
  JSON.stringify({
    baselineMiB,
    rssMiB: usage.rss / 1024 / 1024,
    heapMiB: usage.heapUsed / 1024 / 1024,
    snapshots: catalog.health().snapshots,
    lastError: catalog.health().lastError,
  }),
);
