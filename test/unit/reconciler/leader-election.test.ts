import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createLeaderElector } from "../../../webhook/reconciler/leader-election.ts";
import { createNoopReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { LEASES } from "../../../webhook/kube/kube-objects.ts";
import { createInMemoryObjects } from "./in-memory-objects.ts";
import { silentLog } from "../../support/recording-log.ts";

const log = silentLog;

describe("leader election over an in-memory Lease", () => {
  it("elects one of two candidates and hands over when the leader stops", async () => {
    const objects = createInMemoryObjects();
    const started: string[] = [];
    const elector = (identity: string) =>
      createLeaderElector({
        objects,
        namespace: "pvc-guardian",
        leaseName: "leader",
        identity,
        leaseDurationMs: 1_000,
        retryPeriodMs: 50,
        log,
        metrics: createNoopReconcilerMetrics(),
        onStartedLeading: () => void started.push(identity),
      });
    const a = elector("a");
    const b = elector("b");
    a.start();
    b.start();
    await sleep(300);
    assert.equal([a, b].filter((e) => e.isLeader()).length, 1);
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    await leader.stop();
    await sleep(300);
    // Released on stop: no need to wait out the lease.
    assert.equal(follower.isLeader(), true);
    assert.equal(started.length, 2);
    const lease = await objects.get(LEASES, "pvc-guardian", "leader");
    assert.equal((lease?.["spec"] as { leaseTransitions: number }).leaseTransitions, 1);
    await follower.stop();
    assert.equal(follower.isLeader(), false);
  });

  it("steps down when it cannot renew within the deadline", async () => {
    const objects = createInMemoryObjects();
    let stopped = 0;
    const elector = createLeaderElector({
      objects,
      namespace: "pvc-guardian",
      leaseName: "leader",
      identity: "a",
      leaseDurationMs: 600,
      renewDeadlineMs: 300,
      retryPeriodMs: 50,
      log,
      metrics: createNoopReconcilerMetrics(),
      onStartedLeading: (signal) => signal.addEventListener("abort", () => void stopped++),
    });
    elector.start();
    await sleep(150);
    assert.equal(elector.isLeader(), true);
    objects.get = async () => {
      throw new Error("api server unreachable");
    };
    await sleep(500);
    assert.equal(elector.isLeader(), false);
    assert.equal(stopped, 1);
    await elector.stop();
  });
});
