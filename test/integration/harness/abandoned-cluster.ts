// Run as a child process by cluster-cleanup.test.ts: starts a cluster, reports its PIDs and temp
// dir on stdout, then ends the way argv[2] says without ever calling stop().
import { startTestCluster } from "../../harness/cluster.ts";

const cluster = await startTestCluster();
process.stdout.write(`${JSON.stringify({ ...cluster.pids(), dir: cluster.dir })}\n`);
if (process.argv[2] === "throw") {
  throw new Error("test body failed before stop()");
} else if (process.argv[2] === "sigterm") {
  process.kill(process.pid, "SIGTERM");
  await new Promise((resolve) => setTimeout(resolve, 60_000));
}
