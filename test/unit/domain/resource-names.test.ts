import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  MAX_LABEL_VALUE,
  MAX_SECRET_NAME,
  MAX_VOLSYNC_OBJECT_NAME,
  backupObjectName,
  credentialsSecretName,
  generatedNames,
  pvcLabelValue,
  shortenName,
  stableBucket,
} from "../../../webhook/domain/resource-names.ts";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const nameOf = (length: number, fill = "a") => fill.repeat(length);

test("the limits are Kubernetes' own: 63 for labels and VolSync objects, 253 for Secrets", () => {
  assert.equal(MAX_VOLSYNC_OBJECT_NAME, 63);
  assert.equal(MAX_LABEL_VALUE, 63);
  assert.equal(MAX_SECRET_NAME, 253);
});

for (const [length, max] of [
  [62, 63],
  [63, 63],
  [252, 253],
  [253, 253],
] as const) {
  test(`shortenName keeps a ${length}-character name under a ${max} limit unchanged`, () => {
    const name = nameOf(length);
    assert.equal(shortenName(name, max), name);
  });
}

for (const [length, max] of [
  [64, 63],
  [100, 63],
  [254, 253],
  [400, 253],
] as const) {
  test(`shortenName cuts a ${length}-character name to exactly ${max} with a 10-hex hash of the whole name`, () => {
    const name = nameOf(length);
    const short = shortenName(name, max);
    assert.equal(short.length, max);
    const suffix = createHash("sha256").update(name).digest("hex").slice(0, 10);
    assert.equal(short, `${name.slice(0, max - 11)}-${suffix}`);
  });
}

test("shortenName gives different results to long names that share their prefix", () => {
  const a = shortenName(`${nameOf(70)}-one`, 63);
  const b = shortenName(`${nameOf(70)}-two`, 63);
  assert.notEqual(a, b);
  assert.equal(a.slice(0, 52), b.slice(0, 52));
});

test("shortenName is stable across calls", () => {
  const name = `${nameOf(80, "q")}.data`;
  assert.equal(shortenName(name, 63), shortenName(name, 63));
});

test("shortenName does not leave a - or . before the hash separator", () => {
  // 51 characters then a run of separators where the cut lands.
  const name = `${nameOf(49)}.-.-${nameOf(30, "b")}`;
  const short = shortenName(name, 63);
  assert.match(short, /^a{49}-[0-9a-f]{10}$/);
  assert.match(short, DNS_SUBDOMAIN);
});

const backupNames: Array<{ pvcLength: number; shortened: boolean }> = [
  { pvcLength: 55, shortened: false }, // 62 with -backup
  { pvcLength: 56, shortened: false }, // 63
  { pvcLength: 57, shortened: true }, // 64
  { pvcLength: 253, shortened: true },
];
for (const row of backupNames) {
  test(`backupObjectName of a ${row.pvcLength}-character PVC ${row.shortened ? "is shortened to 63" : "is <pvc>-backup"}`, () => {
    const pvc = nameOf(row.pvcLength, "p");
    const name = backupObjectName(pvc);
    if (row.shortened) {
      assert.equal(name.length, 63);
      assert.match(name, /-[0-9a-f]{10}$/);
      assert.equal(name, shortenName(`${pvc}-backup`, 63));
    } else {
      assert.equal(name, `${pvc}-backup`);
    }
    assert.match(name, DNS_SUBDOMAIN);
  });
}

test("credentialsSecretName is volsync-<pvc> up to 253 characters and shortened beyond", () => {
  assert.equal(credentialsSecretName("app-data"), "volsync-app-data");
  const fits = nameOf(245);
  assert.equal(credentialsSecretName(fits), `volsync-${fits}`);
  assert.equal(credentialsSecretName(fits).length, 253);
  const over = nameOf(246);
  const short = credentialsSecretName(over);
  assert.equal(short.length, 253);
  assert.notEqual(short, `volsync-${over}`.slice(0, 253));
  assert.match(short, /^volsync-a+-[0-9a-f]{10}$/);
});

const labelValues: Array<{ name: string; pvc: string; hashed: boolean }> = [
  { name: "a short name", pvc: "app-data", hashed: false },
  { name: "a dotted name", pvc: "app.data.v1", hashed: false },
  { name: "a 62-character name", pvc: nameOf(62), hashed: false },
  { name: "a 63-character name", pvc: nameOf(63), hashed: false },
  { name: "a 64-character name", pvc: nameOf(64), hashed: true },
  { name: "a 253-character name", pvc: nameOf(253), hashed: true },
  { name: "a name ending in a dot (not a valid label value)", pvc: "data.", hashed: true },
];
for (const row of labelValues) {
  test(`pvcLabelValue ${row.hashed ? "hashes" : "keeps"} ${row.name}`, () => {
    const value = pvcLabelValue(row.pvc);
    if (row.hashed) {
      assert.equal(value, `pvc-${createHash("sha256").update(row.pvc).digest("hex").slice(0, 24)}`);
      assert.match(value, /^pvc-[0-9a-f]{24}$/);
    } else {
      assert.equal(value, row.pvc);
    }
    assert.ok(value.length <= 63);
  });
}

test("generatedNames shares one <pvc>-backup name between RS and RD and names the Secret volsync-<pvc>", () => {
  assert.deepEqual(generatedNames("app-data"), {
    replicationSource: "app-data-backup",
    replicationDestination: "app-data-backup",
    secret: "volsync-app-data",
    pvcLabelValue: "app-data",
  });
});

test("generatedNames records the full name in an annotation only when the label value is hashed", () => {
  const long = nameOf(64, "l");
  const names = generatedNames(long);
  assert.equal(names.pvcNameAnnotation, long);
  assert.match(names.pvcLabelValue, /^pvc-[0-9a-f]{24}$/);
  assert.equal(names.replicationSource, names.replicationDestination);
  assert.equal(names.replicationSource.length, 63);
  assert.equal("pvcNameAnnotation" in generatedNames(nameOf(63, "l")), false);
});

test("stableBucket stays in range and answers the same for the same text", () => {
  for (const modulus of [1, 7, 60]) {
    for (let i = 0; i < 200; i++) {
      const bucket = stableBucket(`ns/pvc-${i}`, modulus);
      assert.ok(Number.isInteger(bucket) && bucket >= 0 && bucket < modulus);
      assert.equal(stableBucket(`ns/pvc-${i}`, modulus), bucket);
    }
  }
});
