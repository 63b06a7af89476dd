import { test } from "node:test";
import assert from "node:assert/strict";
import { checkScheduleTemplate, resolveSchedule } from "../../../webhook/domain/backup-schedule.ts";
import { stableBucket } from "../../../webhook/domain/resource-names.ts";

// VolSync's ReplicationSource CRD, spec.trigger.schedule (api/v1alpha1/replicationsource_types.go).
const CRD_PATTERN = /^(@(annually|yearly|monthly|weekly|daily|hourly))|((((\d+,)*\d+|(\d+(\/|-)\d+)|\*(\/\d+)?)\s?){5})$/;

const accepted: Array<{ template: string; schedule: string }> = [
  { template: "0 * * * *", schedule: "0 * * * *" },
  { template: "0 2 * * *", schedule: "0 2 * * *" },
  { template: "15 3 * * *", schedule: "15 3 * * *" },
  { template: "*/15 * * * *", schedule: "*/15 * * * *" },
  { template: "0,30 * * * *", schedule: "0,30 * * * *" },
  { template: "0 2 * * 1-5", schedule: "0 2 * * 1-5" },
  { template: "0 2 1 */2 *", schedule: "0 2 1 */2 *" },
  { template: "  0   2 * *  * ", schedule: "0 2 * * *" },
  { template: "@hourly", schedule: "@hourly" },
  { template: "@daily", schedule: "@daily" },
  { template: "@weekly", schedule: "@weekly" },
  { template: "@monthly", schedule: "@monthly" },
  { template: "@yearly", schedule: "@yearly" },
  { template: "@annually", schedule: "@annually" },
];
for (const row of accepted) {
  test(`resolveSchedule accepts "${row.template}" as "${row.schedule}"`, () => {
    assert.deepEqual(resolveSchedule(row.template, "media/app-data"), { ok: true, schedule: row.schedule });
    assert.match(row.schedule, CRD_PATTERN);
    assert.equal(checkScheduleTemplate(row.template), undefined);
  });
}

const rejected: Array<{ template: string; why: string }> = [
  { template: "", why: "an empty schedule" },
  { template: "* * * *", why: "four fields" },
  { template: "0 0 * * * *", why: "six fields (seconds)" },
  { template: "60 * * * *", why: "minute 60" },
  { template: "0 24 * * *", why: "hour 24" },
  { template: "0 0 ? * *", why: "? (Quartz syntax, rejected by the CRD)" },
  { template: "0 0 * * MON", why: "day names (rejected by the CRD)" },
  { template: "0 0 L * *", why: "L (rejected by the CRD)" },
  { template: "x0 * * * *", why: "junk before a number that the unanchored CRD pattern would let through" },
  { template: "@every 1h", why: "@every (not a CRD descriptor)" },
  { template: "@reboot", why: "@reboot" },
  { template: "@midnight", why: "@midnight (robfig/cron knows it, the CRD does not)" },
  { template: "@daily extra", why: "a descriptor followed by junk" },
  { template: "@dailyx", why: "a descriptor with a suffix" },
  { template: "0 H * * *", why: "H outside the minute field" },
  { template: "H5 * * * *", why: "H glued to a number" },
  { template: "H/0 * * * *", why: "H/0" },
  { template: "H/61 * * * *", why: "H/61" },
  { template: "H(0-29) * * * *", why: "Jenkins' H(range) form" },
];
for (const row of rejected) {
  test(`resolveSchedule rejects ${row.why}: "${row.template}"`, () => {
    const result = resolveSchedule(row.template, "media/app-data");
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problem.length > 0);
    assert.equal(typeof checkScheduleTemplate(row.template), "string");
  });
}

test("resolveSchedule turns H into the PVC's stable minute", () => {
  const result = resolveSchedule("H * * * *", "media/app-data");
  assert.deepEqual(result, { ok: true, schedule: `${stableBucket("media/app-data", 60)} * * * *` });
  assert.deepEqual(resolveSchedule("H 3 * * *", "media/app-data"), { ok: true, schedule: `${stableBucket("media/app-data", 60)} 3 * * *` });
});

test("resolveSchedule gives the same H minute for the same PVC every time", () => {
  const first = resolveSchedule("H 2 * * *", "photos/library");
  for (let i = 0; i < 5; i++) assert.deepEqual(resolveSchedule("H 2 * * *", "photos/library"), first);
});

test("resolveSchedule spreads H across the hour for fifty PVCs", () => {
  const minutes = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const result = resolveSchedule("H * * * *", `apps/data-${i}`);
    assert.ok(result.ok);
    const minute = Number(result.schedule.split(" ")[0]);
    assert.ok(minute >= 0 && minute < 60);
    minutes.add(minute);
  }
  // Fifty PVCs all at :00 is the failure H exists to prevent.
  assert.ok(minutes.size >= 25, `only ${minutes.size} distinct minutes`);
});

test("resolveSchedule depends on the namespace too, not only the PVC name", () => {
  const minutesOf = (namespace: string) => {
    const result = resolveSchedule("H * * * *", `${namespace}/data`);
    return result.ok ? result.schedule : "";
  };
  const distinct = new Set(["a", "b", "c", "d", "e", "f", "g", "h"].map(minutesOf));
  assert.ok(distinct.size > 1);
});

for (const step of [1, 7, 15, 30, 60]) {
  test(`resolveSchedule turns H/${step} into every ${step} minutes from a stable offset`, () => {
    const key = "media/app-data";
    const result = resolveSchedule(`H/${step} * * * *`, key);
    assert.ok(result.ok);
    const minutes = result.schedule.split(" ")[0]!.split(",").map(Number);
    const offset = stableBucket(key, step);
    assert.equal(minutes[0], offset);
    assert.ok(offset < step);
    for (let i = 1; i < minutes.length; i++) assert.equal(minutes[i]! - minutes[i - 1]!, step);
    assert.ok(minutes.at(-1)! < 60 && minutes.at(-1)! + step >= 60);
    assert.match(result.schedule, CRD_PATTERN);
  });
}

test("resolveSchedule output for H templates always matches VolSync's CRD pattern", () => {
  for (let i = 0; i < 300; i++) {
    for (const template of ["H * * * *", "H/5 2 * * *", "H/13 */4 * * 1-5"]) {
      const result = resolveSchedule(template, `ns-${i}/pvc-${i * 7}`);
      assert.ok(result.ok, template);
      assert.match(result.schedule, CRD_PATTERN);
      assert.doesNotMatch(result.schedule, /H/);
    }
  }
});
