import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createLeaderElector } from "../../../webhook/reconciler/leader-election.ts";
import { createNoopReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { KubeApiError, LEASES, type KubeObjects } from "../../../webhook/kube/kube-objects.ts";
import { createInMemoryObjects } from "./in-memory-objects.ts";
import { renewDeadlineFor } from "../../../webhook/config.ts";

const log = createSilentLogger();

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
        renewDeadlineMs: renewDeadlineFor(1_000),
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

  it("releases the lease on stop even when a renew it aborted lands first, and after a local step-down", async () => {
    const objects = createInMemoryObjects();
    let lateRenewOnNextReplace = false;
    // A renew that stop() aborted but the API server applied anyway: it changes the Lease just
    // before the release's write, which then conflicts.
    const racing: KubeObjects = {
      ...objects,
      async replace(object, signal) {
        if (lateRenewOnNextReplace && object.kind === "Lease") {
          lateRenewOnNextReplace = false;
          const current = (await objects.get(LEASES, "pvc-guardian", "leader"))!;
          await objects.replace({ ...current, spec: { ...(current["spec"] as object), renewTime: "2026-12-01T00:00:00.000000Z" } }, signal);
          throw new KubeApiError(409, "Conflict", "the object has been modified");
        }
        return objects.replace(object, signal);
      },
    };
    const elector = createLeaderElector({
      objects: racing,
      namespace: "pvc-guardian",
      leaseName: "leader",
      identity: "a",
      leaseDurationMs: 1_000,
      renewDeadlineMs: renewDeadlineFor(1_000),
      retryPeriodMs: 50,
      log,
      metrics: createNoopReconcilerMetrics(),
      onStartedLeading: () => {},
    });
    elector.start();
    await sleep(200);
    assert.equal(elector.isLeader(), true);
    lateRenewOnNextReplace = true;
    await elector.stop();
    const lease = await objects.get(LEASES, "pvc-guardian", "leader");
    assert.equal((lease?.["spec"] as { holderIdentity: string }).holderIdentity, "", "released despite the conflict");
  });
});
