import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  DEFAULT_KOPIA_USERNAME,
  MAX_KOPIA_USERNAME,
  backupIdentity,
  isCrdValidIdentityField,
  kopiaHostname,
  kopiaUsername,
  parseIdentityKey,
  volsyncAutomaticIdentity,
} from "../../../webhook/domain/kopia-identity.ts";
import { sharedDir } from "../../harness/crds.ts";
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

// Cases from VolSync's own Kopia mover tests (username_split_test.go), where they agree with the
// automatic naming the README's "Kopia identities" section describes and kopiaUsername
// (webhook/domain/kopia-identity.ts) implements: VolSync versions differ on cutting long names;
// we cut at 50.
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
  {
    name: "VolSync: a long namespace is kept whole",
    namespace: "very-long-namespace-name-that-is-still-valid-in-kubernetes",
    expected: "very-long-namespace-name-that-is-still-valid-in-kubernetes",
  },
);

for (const row of hostnames) {
  test(`kopiaHostname: ${row.name}`, () => {
    assert.equal(kopiaHostname(row.namespace), row.expected);
  });
}

test("volsyncAutomaticIdentity joins username, hostname and /data into the catalog key", () => {
  assert.deepEqual(volsyncAutomaticIdentity("app-data-backup", "media"), {
    username: "app-data-backup",
    hostname: "media",
    path: "/data",
    key: "app-data-backup@media:/data",
  });
});

test("volsyncAutomaticIdentity of a shortened RD name cuts the hashed name to 50 characters", () => {
  const pvcName = `${"x".repeat(60)}.archive`;
  const rdName = generatedNames(pvcName).replicationDestination;
  assert.equal(rdName.length, 63);
  const identity = volsyncAutomaticIdentity(rdName, "media");
  assert.equal(identity.username, rdName.replaceAll(".", "").slice(0, 50));
  assert.equal(identity.key, `${identity.username}@media:/data`);
  assert.equal(volsyncAutomaticIdentity("db_main.backup", "prod_eu").key, "db_mainbackup@prod-eu:/data");
});

// The identity pvc-guardian writes: VolSync's own where it is valid and unshareable, else its own.
const written: Array<{ name: string; pvc: string; keepsAutomatic: boolean }> = [
  { name: "a short name keeps VolSync's name, so seed-stack backups keep restoring", pvc: "app-data", keepsAutomatic: true },
  { name: "a 42-character name (49 with -backup) keeps it", pvc: "a".repeat(42), keepsAutomatic: true },
  { name: "a 43-character name reaches the cut, where a longer name's cut can equal it", pvc: "a".repeat(43), keepsAutomatic: false },
  { name: "a 49-character name, whose cut ends in -, gets its own", pvc: "a".repeat(49), keepsAutomatic: false },
  { name: "a long StatefulSet ordinal gets its own", pvc: "data-kafka-broker-production-eu-west-1-cluster-abc-0", keepsAutomatic: false },
  { name: "a dotted name, whose dots VolSync drops, gets its own", pvc: "app.data", keepsAutomatic: false },
];
for (const row of written) {
  test(`backupIdentity: ${row.name}`, () => {
    const rdName = generatedNames(row.pvc).replicationDestination;
    const identity = backupIdentity(rdName, "media");
    assert.deepEqual(identity.automatic, volsyncAutomaticIdentity(rdName, "media"));
    assert.equal(identity.written.key === identity.automatic.key, row.keepsAutomatic);
    assert.equal(identity.automaticProblem === undefined, row.keepsAutomatic);
    assert.ok(isCrdValidIdentityField(identity.written.username), identity.written.username);
    assert.ok(isCrdValidIdentityField(identity.written.hostname), identity.written.hostname);
    assert.equal(identity.written.hostname, "media");
    if (!row.keepsAutomatic) {
      // Readable prefix, ".", 12 hex: never a name VolSync's automatic naming produces.
      assert.match(identity.written.username, /^[A-Za-z0-9][A-Za-z0-9_-]*\.[0-9a-f]{12}$/);
      assert.ok(identity.written.username.length <= MAX_KOPIA_USERNAME);
    }
  });
}

test("StatefulSet ordinals that shared one truncated identity get two", () => {
  const zero = backupIdentity(generatedNames("data-kafka-broker-production-eu-west-1-cluster-abc-0").replicationDestination, "kafka");
  const one = backupIdentity(generatedNames("data-kafka-broker-production-eu-west-1-cluster-abc-1").replicationDestination, "kafka");
  assert.equal(zero.automatic.key, one.automatic.key);
  assert.notEqual(zero.written.key, one.written.key);
});

test("parseIdentityKey reads user@host and user@host:/path", () => {
  assert.deepEqual(parseIdentityKey("app-data-backup@media"), volsyncAutomaticIdentity("app-data-backup", "media"));
  assert.equal(parseIdentityKey("a@b:/other")?.key, "a@b:/other");
  for (const bad of ["", "a", "@b", "a@", "a b@c", "a@b@c", "a@b:data"]) assert.equal(parseIdentityKey(bad), undefined, bad);
});

// Recorded from perfectra1n/volsync's own naming code (../shared/fixtures/volsync/PROVENANCE.md).
type VectorLine = {
  input: { via: string; name: string; namespace: string };
  volsync: { username: string; hostname: string; usernameMatchesCrd: boolean; hostnameMatchesCrd: boolean };
};
const vectors = readFileSync(path.join(sharedDir(), "fixtures", "volsync", "identity-vectors.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as VectorLine)
  .filter((line) => line.input.via === "generate");

test("identity vectors: the automatic naming equals VolSync's on every recorded name", () => {
  assert.ok(vectors.length > 2000, `only ${vectors.length} generate lines`);
  const differing = vectors.filter((v) => {
    const ours = volsyncAutomaticIdentity(v.input.name, v.input.namespace);
    return ours.username !== v.volsync.username || ours.hostname !== v.volsync.hostname;
  });
  assert.deepEqual(differing.slice(0, 5), []);
});

test("identity vectors: the CRD pattern check agrees with VolSync's recorded verdicts", () => {
  const differing = vectors.filter(
    (v) =>
      isCrdValidIdentityField(v.volsync.username) !== v.volsync.usernameMatchesCrd ||
      isCrdValidIdentityField(v.volsync.hostname) !== v.volsync.hostnameMatchesCrd,
  );
  assert.deepEqual(differing.slice(0, 5), []);
  assert.ok(
    vectors.some((v) => !v.volsync.usernameMatchesCrd),
    "the corpus holds names the CRD refuses",
  );
});

test("identity vectors: the written identity is CRD-valid for every name and unique across the corpus", () => {
  const byKey = new Map<string, string>();
  let keptAutomatic = 0;
  for (const v of vectors) {
    const input = `${v.input.namespace}/${v.input.name}`;
    const identity = backupIdentity(v.input.name, v.input.namespace);
    assert.ok(isCrdValidIdentityField(identity.written.username), `${input}: ${identity.written.username}`);
    assert.ok(isCrdValidIdentityField(identity.written.hostname), `${input}: ${identity.written.hostname}`);
    const earlier = byKey.get(identity.written.key);
    assert.ok(earlier === undefined || earlier === input, `${input} and ${earlier} share ${identity.written.key}`);
    byKey.set(identity.written.key, input);
    // Kept exactly where VolSync's name is the CR name itself, below the cut, in a plain namespace.
    const plain = /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$/.test(v.input.name) && v.input.name.length < MAX_KOPIA_USERNAME;
    const plainNamespace = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v.input.namespace);
    const kept = identity.written.key === identity.automatic.key;
    if (plain && plainNamespace && v.volsync.hostname === v.input.namespace) assert.ok(kept, `${input} should keep ${identity.automatic.key}`);
    if (!plain) assert.ok(!kept, `${input} must not keep the shareable ${identity.automatic.key}`);
    if (kept) keptAutomatic++;
  }
  assert.ok(keptAutomatic > 100, `kept ${keptAutomatic} of ${vectors.length}`);
});

test("identity vectors: VolSync's automatic identities collide in the corpus, which is why they are not always kept", () => {
  const seen = new Map<string, number>();
  for (const v of vectors) {
    const key = `${v.volsync.username}@${v.volsync.hostname}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  assert.ok([...seen.values()].some((count) => count > 1));
});
