import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_KOPIA_USERNAME,
  MAX_KOPIA_USERNAME,
  kopiaHostname,
  kopiaIdentity,
  kopiaUsername,
} from "../../../webhook/domain/kopia-identity.ts";
import { generatedNames } from "../../../webhook/domain/resource-names.ts";

// The rules are VolSync's Kopia mover (sanitizeForIdentifier / generateUsername /
// generateHostname): usernames keep [A-Za-z0-9_-] and are trimmed of - and _, then cut to 50
// without trimming again; hostnames turn _ into -, keep [A-Za-z0-9.-] and are trimmed of - and .;
// anything that sanitises to nothing becomes volsync-default.

const a49 = "a".repeat(49);

const usernames: Array<{ name: string; customResourceName: string; expected: string }> = [
  { name: "a plain name is kept", customResourceName: "app-data-backup", expected: "app-data-backup" },
  { name: "upper case is kept", customResourceName: "App-Data-Backup", expected: "App-Data-Backup" },
  { name: "dots are dropped", customResourceName: "my.app.v2-backup", expected: "myappv2-backup" },
  { name: "underscores are kept", customResourceName: "my_app_backup", expected: "my_app_backup" },
  { name: "leading and trailing - and _ are trimmed", customResourceName: "-_app-backup_-", expected: "app-backup" },
  { name: "inner runs of separators are kept", customResourceName: "app--__backup", expected: "app--__backup" },
  { name: "accented letters are dropped, not transliterated", customResourceName: "données-backup", expected: "donnes-backup" },
  { name: "decomposed accents drop only the combining mark", customResourceName: "cafe\u0301-backup", expected: "cafe-backup" },
  { name: "a CJK prefix is dropped and the exposed - trimmed", customResourceName: "日本-backup", expected: "backup" },
  { name: "astral characters are dropped whole", customResourceName: "💾db-backup", expected: "db-backup" },
  { name: "spaces, slashes and colons are dropped", customResourceName: "a b/c:d@e-backup", expected: "abcde-backup" },
  { name: "an empty name becomes volsync-default", customResourceName: "", expected: DEFAULT_KOPIA_USERNAME },
  { name: "only separators becomes volsync-default", customResourceName: "-_-_", expected: DEFAULT_KOPIA_USERNAME },
  { name: "only dots becomes volsync-default", customResourceName: "...", expected: DEFAULT_KOPIA_USERNAME },
  { name: "only unicode becomes volsync-default", customResourceName: "データ", expected: DEFAULT_KOPIA_USERNAME },
  { name: "exactly 50 characters are kept", customResourceName: "b".repeat(50), expected: "b".repeat(50) },
  { name: "51 characters are cut to 50", customResourceName: "c".repeat(51), expected: "c".repeat(50) },
  { name: "63 characters are cut to 50", customResourceName: "d".repeat(63), expected: "d".repeat(50) },
  { name: "the cut keeps a separator it lands on (VolSync does not trim again)", customResourceName: `${a49}-b`, expected: `${a49}-` },
  { name: "trimming happens before the cut", customResourceName: `__${"e".repeat(50)}x`, expected: "e".repeat(50) },
  { name: "dropped characters do not count toward 50", customResourceName: `${".".repeat(10)}${"f".repeat(50)}`, expected: "f".repeat(50) },
];

// Cases from VolSync's own Kopia mover tests (username_split_test.go), where they agree with
// product.md 3.1 (VolSync versions differ on cutting long names; we follow 3.1 and cut at 50).
usernames.push(
  { name: "VolSync: @ and . are removed", customResourceName: "app@backup.service", expected: "appbackupservice" },
  { name: "VolSync: spaces are removed", customResourceName: "app backup service", expected: "appbackupservice" },
  { name: "VolSync: ñ is removed, leaving the hyphens around it", customResourceName: "app-backup-ñ-test", expected: "app-backup--test" },
  { name: "VolSync: leading and trailing underscores are trimmed", customResourceName: "_app_backup_", expected: "app_backup" },
  { name: "VolSync: only special characters falls back", customResourceName: "@#$%^&*()", expected: DEFAULT_KOPIA_USERNAME },
  { name: "VolSync: a pod-style name is kept", customResourceName: "my-app-deployment-7d4f8b9c6d", expected: "my-app-deployment-7d4f8b9c6d" },
);

for (const row of usernames) {
  test(`kopiaUsername: ${row.name}`, () => {
    const username = kopiaUsername(row.customResourceName);
    assert.equal(username, row.expected);
    assert.ok(username.length <= MAX_KOPIA_USERNAME);
    assert.match(username, /^[A-Za-z0-9_-]+$/);
  });
}

const hostnames: Array<{ name: string; namespace: string; expected: string }> = [
  { name: "a plain namespace is kept", namespace: "media", expected: "media" },
  { name: "dots are kept", namespace: "team.alpha", expected: "team.alpha" },
  { name: "underscores become hyphens", namespace: "dev_tools_ns", expected: "dev-tools-ns" },
  { name: "leading and trailing - and . are trimmed", namespace: "-.media.-", expected: "media" },
  { name: "underscores at the ends become hyphens and are trimmed", namespace: "_media_", expected: "media" },
  { name: "unicode is dropped", namespace: "médiathèque", expected: "mdiathque" },
  { name: "long namespaces are not cut", namespace: "n".repeat(63), expected: "n".repeat(63) },
  { name: "an empty namespace becomes volsync-default", namespace: "", expected: DEFAULT_KOPIA_USERNAME },
  { name: "only separators becomes volsync-default", namespace: "_.-", expected: DEFAULT_KOPIA_USERNAME },
];

// Cases from VolSync's hostname_namespace_only_test.go.
hostnames.push(
  { name: "VolSync: test_namespace becomes test-namespace", namespace: "test_namespace", expected: "test-namespace" },
  { name: "VolSync: dots in a namespace are kept", namespace: "prod.region.cluster", expected: "prod.region.cluster" },
  { name: "VolSync: special characters are removed", namespace: "test@namespace#123", expected: "testnamespace123" },
  { name: "VolSync: a long namespace is kept whole", namespace: "very-long-namespace-name-that-is-still-valid-in-kubernetes", expected: "very-long-namespace-name-that-is-still-valid-in-kubernetes" },
);

for (const row of hostnames) {
  test(`kopiaHostname: ${row.name}`, () => {
    assert.equal(kopiaHostname(row.namespace), row.expected);
  });
}

test("kopiaIdentity joins username, hostname and /data into the catalog key", () => {
  assert.deepEqual(kopiaIdentity("app-data-backup", "media"), {
    username: "app-data-backup",
    hostname: "media",
    path: "/data",
    key: "app-data-backup@media:/data",
    usernameTruncated: false,
  });
});

test("kopiaIdentity flags a username cut to 50 characters, and only then", () => {
  assert.equal(kopiaIdentity("a".repeat(50), "media").usernameTruncated, false);
  assert.equal(kopiaIdentity(`${"a".repeat(50)}-`, "media").usernameTruncated, false);
  assert.equal(kopiaIdentity("a".repeat(51), "media").usernameTruncated, true);
});

test("kopiaIdentity of a shortened RD name cuts the hashed name to 50 characters", () => {
  const pvcName = `${"x".repeat(60)}.archive`;
  const rdName = generatedNames(pvcName).replicationDestination;
  assert.equal(rdName.length, 63);
  const identity = kopiaIdentity(rdName, "media");
  assert.equal(identity.username, rdName.replaceAll(".", "").slice(0, 50));
  assert.equal(identity.key, `${identity.username}@media:/data`);
});

test("kopiaIdentity is the same for the same inputs (no hidden state)", () => {
  assert.deepEqual(kopiaIdentity("db_main.backup", "prod_eu"), kopiaIdentity("db_main.backup", "prod_eu"));
  assert.equal(kopiaIdentity("db_main.backup", "prod_eu").key, "db_mainbackup@prod-eu:/data");
});
