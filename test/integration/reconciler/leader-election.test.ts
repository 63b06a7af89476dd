import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { requireOrSkip } from "../../harness/binaries.ts";
import { createNamespace, setPvcPhase } from "../../harness/kube-objects.ts";
import { LEASES, REPLICATION_SOURCES } from "../../../webhook/kube/kube-objects.ts";
import { startKubeEnvironment, type KubeEnvironment } from "../../harness/kube-environment.ts";
import { eventually } from "../../support/eventually.ts";
import { pvcObject } from "../../support/pvc-object.ts";

// Two real processes campaign for one Lease on a real API server: exactly one leads and writes;
// when the leader is killed (SIGKILL: no release), the other takes over once the lease runs out,
// and every ReplicationSource is created exactly once.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);
const LEASE_DURATION_MS = 2_000;
const RETRY_PERIOD_MS = 250;

type Line = { identity: string; atMs: number; leader?: boolean; created?: { kind: string; name: string }; started?: boolean; stopped?: boolean };

function startReplica(env: KubeEnvironment, identity: string, lines: Line[]): ChildProcess {
  const script = fileURLToPath(new URL("./reconciler-process.ts", import.meta.url));
  const settings = {
    kubeconfigPath: env.cluster.kubeconfigPath,
    namespace: env.systemNamespace,
    identity,
    leaseDurationMs: LEASE_DURATION_MS,
    retryPeriodMs: RETRY_PERIOD_MS,
  };
  const child = spawn(process.execPath, [script, JSON.stringify(settings)], { stdio: ["ignore", "pipe", "inherit"] });
  let buffered = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, newline)) as Line);
      buffered = buffered.slice(newline + 1);
    }
  });
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));

describe("leader election between two processes", { skip }, () => {
  let env: KubeEnvironment;
  const children: ChildProcess[] = [];
  before(async () => {
    env = await startKubeEnvironment();
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.all(children.map(exited));
    await env?.stop();
  });

  it("lets exactly one lead, hands over within the lease duration after a crash, and creates each RS once", async () => {
    const namespace = await createNamespace(env.cluster);
    for (const name of ["one", "two", "three"]) {
      await env.kube.objects.create(pvcObject(namespace, name));
      await setPvcPhase(env.cluster, namespace, name, "Bound");
    }
    const lines: Line[] = [];
    const leaderNow = () => {
      const state = new Map<string, boolean>();
      for (const line of lines) if (line.leader !== undefined) state.set(line.identity, line.leader);
      return [...state].filter(([, leading]) => leading).map(([identity]) => identity);
    };
    const replicas = new Map([
      ["replica-a", startReplica(env, "replica-a", lines)],
      ["replica-b", startReplica(env, "replica-b", lines)],
    ]);
    children.push(...replicas.values());

    const first = await eventually("a leader", async () => (leaderNow().length > 0 ? leaderNow() : undefined), { timeoutMs: 20_000 });
    assert.equal(first.length, 1);
    const leaderIdentity = first[0]!;
    const lease = await env.kube.objects.get(LEASES, env.systemNamespace, "pvc-guardian-leader");
    assert.equal((lease?.["spec"] as { holderIdentity: string }).holderIdentity, leaderIdentity);

    await eventually(
      "three ReplicationSources",
      async () => {
        const list = await env.kube.objects.list(REPLICATION_SOURCES, { namespace });
        return list.items.length === 3 ? list : undefined;
      },
      { timeoutMs: 15_000 },
    );
    // Both keep running for a while: still one leader.
    await new Promise((resolve) => setTimeout(resolve, 3 * LEASE_DURATION_MS));
    assert.deepEqual(leaderNow(), [leaderIdentity]);

    const killedAtMs = Date.now();
    replicas.get(leaderIdentity)!.kill("SIGKILL");
    await exited(replicas.get(leaderIdentity)!);
    const successor = leaderIdentity === "replica-a" ? "replica-b" : "replica-a";
    const takeover = await eventually(
      "the successor to lead",
      async () => lines.find((line) => line.identity === successor && line.leader === true && line.atMs >= killedAtMs),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const takeoverMs = takeover.atMs - killedAtMs;
    console.log(`# takeover after SIGKILL: ${takeoverMs} ms (lease ${LEASE_DURATION_MS} ms, retry ${RETRY_PERIOD_MS} ms)`);
    // The lease was renewed at most one retry period before the kill; the successor notices
    // within one more retry period after it runs out.
    assert.ok(takeoverMs <= LEASE_DURATION_MS + 2 * RETRY_PERIOD_MS + 500, `takeover took ${takeoverMs} ms`);

    await env.kube.objects.create(pvcObject(namespace, "four"));
    await setPvcPhase(env.cluster, namespace, "four", "Bound");
    await eventually(
      "the successor to create the fourth RS",
      async () => (await env.kube.objects.get(REPLICATION_SOURCES, namespace, "four-backup")) ?? undefined,
      { timeoutMs: 10_000 },
    );

    const creations = lines.filter((line) => line.created?.kind === "ReplicationSource" && line.created.name.startsWith(""));
    const byName = new Map<string, string[]>();
    for (const line of creations) byName.set(line.created!.name, [...(byName.get(line.created!.name) ?? []), line.identity]);
    assert.deepEqual([...byName.keys()].sort(), ["four-backup", "one-backup", "three-backup", "two-backup"]);
    for (const [name, creators] of byName) assert.equal(creators.length, 1, `${name} created by ${creators.join(", ")}`);
    assert.ok(!byName.get("four-backup")!.includes(leaderIdentity));
    for (const name of ["one-backup", "two-backup", "three-backup"]) assert.deepEqual(byName.get(name), [leaderIdentity]);

    // A graceful stop releases the lease at once.
    const survivor = replicas.get(successor)!;
    survivor.kill("SIGTERM");
    await exited(survivor);
    const released = await env.kube.objects.get(LEASES, env.systemNamespace, "pvc-guardian-leader");
    assert.equal((released?.["spec"] as { holderIdentity: string }).holderIdentity, "");
  });
});
