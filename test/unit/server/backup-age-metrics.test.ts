import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMetrics } from "../../../webhook/server/metrics.ts";

describe("backup age metrics", () => {
  it("reports each protected PVC's newest snapshot time as read at scrape", async () => {
    const metrics = createMetrics({ collectProcessMetrics: false });
    let rows = [{ namespace: "media", pvc: "app-data", tier: "hourly", timestampMs: 1_795_600_000_000 }];
    metrics.trackBackupAges(() => rows);
    metrics.setTierIntervals({ hourly: 3600, daily: 86400 });
    const first = await metrics.render();
    assert.match(first, /pvc_guardian_pvc_newest_snapshot_timestamp_seconds\{namespace="media",pvc="app-data",tier="hourly"\} 1795600000/);
    assert.match(first, /pvc_guardian_tier_interval_seconds\{tier="daily"\} 86400/);

    // A PVC that is gone from the inventory disappears from the next scrape.
    rows = [{ namespace: "media", pvc: "db", tier: "daily", timestampMs: 1_795_700_000_000 }];
    const second = await metrics.render();
    assert.doesNotMatch(second, /pvc="app-data"/);
    assert.match(second, /pvc="db",tier="daily"\} 1795700000/);
  });
});
