// The mover Job contract, on data recorded from the real VolSync fork (shared/fixtures/volsync):
// the oracle's contract-derived Job environment equals what the real v0.17.11 manager set, and
// the RS/RD that planPvc generates today give the mover the identity and DATA_DIR it was recorded
// with, so backups written before keep being found.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { planPvc } from "../../../webhook/cli/plan.ts";
import { DEFAULT_POLICY, type Policy } from "../../../webhook/domain/policy.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import { snapshotRecord, type SnapshotCatalog, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";
import { sharedDir } from "../../harness/crds.ts";
import { automaticHostname, automaticUsername, crdIdentityPattern, moverJobEnvironment, type VolSyncObject } from "../../harness/volsync-mover-oracle.ts";
import { pvcObject } from "../../support/pvc-object.ts";

const fixtures = path.join(sharedDir(), "fixtures", "volsync");

type RecordedCase = { object: VolSyncObject; job: { username: string; hostname: string; env: Record<string, string> } };
const recorded = JSON.parse(readFileSync(path.join(fixtures, "mover-jobs-v0.17.11.json"), "utf8")) as { cases: RecordedCase[] };

type IdentityVector = {
  input: { via: string; name: string; namespace: string; specUsername?: string; specHostname?: string; specRestoreAsOf?: string };
  volsync: { username: string; hostname: string; usernameMatchesCrd: boolean; hostnameMatchesCrd: boolean; jobEnv?: Record<string, string> };
};
const vectors = readFileSync(path.join(fixtures, "identity-vectors.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as IdentityVector);

const contractKeys = ["KOPIA_OVERRIDE_USERNAME", "KOPIA_OVERRIDE_HOSTNAME", "DATA_DIR", "KOPIA_RESTORE_AS_OF"] as const;

function pick(env: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((key) => env[key] !== undefined).map((key) => [key, env[key]!]));
}

function recordedCase(kind: string, name: string): RecordedCase {
  const found = recorded.cases.find((c) => c.object.kind === kind && c.object.metadata.name === name);
  assert.ok(found, `no recorded ${kind} ${name}`);
  return found;
}

/** The PVC the recorded objects were generated for: `media/<name>`, hourly tier. */
function recordedPvc(name: string, restoreAsOf?: string): PersistentVolumeClaim {
  return pvcObject("media", name, { backup: "hourly" }, restoreAsOf === undefined ? undefined : { "volsync.backup/restore-as-of": restoreAsOf });
}

/** The recording's policy: the defaults with the NFS repository volume it shows. */
const recordedPolicy: Policy = { ...DEFAULT_POLICY, nfs: { server: "nas.lan", path: "/volsync", mountPath: "repository" } };

/** A catalog holding exactly these snapshots for every identity. */
function catalogOf(snapshots: readonly SnapshotRecord[]): SnapshotCatalog {
  return { lookup: (_identity, nowMs) => ({ readable: true, snapshots, refreshedAtMs: nowMs }) };
}

function snapshotAt(id: string, startTime: string): SnapshotRecord {
  const record = snapshotRecord({ id, startTime, endTime: startTime, incomplete: false });
  assert.ok(record, startTime);
  return record;
}

function generatedOfKind(generated: unknown[], kind: string): VolSyncObject {
  const found = generated.find((object) => (object as { kind?: string }).kind === kind);
  assert.ok(found, `planPvc generated no ${kind}`);
  return found as VolSyncObject;
}

const nowMs = Date.parse("2026-12-01T00:00:00Z");

describe("the mover Job environment derived from the contract", () => {
  for (const recordedJob of recorded.cases) {
    const { object, job } = recordedJob;
    it(`equals the real v0.17.11 Job for ${object.kind} ${object.metadata.name}`, () => {
      const derived = moverJobEnvironment(object);
      assert.deepEqual(pick(derived, contractKeys), pick(job.env, contractKeys));
      // Every variable the contract names agrees with the recording, not only the four above.
      for (const [key, value] of Object.entries(derived)) assert.equal(job.env[key], value, key);
      assert.equal(derived.KOPIA_OVERRIDE_USERNAME, job.username);
      assert.equal(derived.KOPIA_OVERRIDE_HOSTNAME, job.hostname);
    });
  }

  it("equals the recorded Job environment of every generated RS and RD in the identity vectors", () => {
    const generated = vectors.filter((v) => v.input.via === "ReplicationSource" || v.input.via === "ReplicationDestination");
    assert.ok(generated.length > 600, `only ${generated.length} generated vectors`);
    for (const { input, volsync } of generated) {
      const object: VolSyncObject = {
        kind: input.via,
        metadata: { name: input.name, namespace: input.namespace },
        spec: {
          kopia: {
            ...(input.specUsername === undefined ? {} : { username: input.specUsername }),
            ...(input.specHostname === undefined ? {} : { hostname: input.specHostname }),
            ...(input.specRestoreAsOf === undefined ? {} : { restoreAsOf: input.specRestoreAsOf }),
          },
        },
      };
      assert.deepEqual(moverJobEnvironment(object), volsync.jobEnv, `${input.via} ${input.namespace}/${input.name}`);
    }
  });

  it("names the automatic identity as the fork does for every raw name in the vectors", () => {
    const raw = vectors.filter((v) => v.input.via === "generate");
    assert.ok(raw.length > 2800, `only ${raw.length} raw vectors`);
    for (const { input, volsync } of raw) {
      const label = `${JSON.stringify(input.name)} in ${JSON.stringify(input.namespace)}`;
      assert.equal(automaticUsername(input.name), volsync.username, label);
      assert.equal(automaticHostname(input.namespace), volsync.hostname, label);
      assert.equal(crdIdentityPattern.test(volsync.username), volsync.usernameMatchesCrd, label);
      assert.equal(crdIdentityPattern.test(volsync.hostname), volsync.hostnameMatchesCrd, label);
    }
  });
});

describe("what planPvc generates for the recorded PVCs", () => {
  it("gives the backup mover of media/app-data the recorded identity and DATA_DIR", async () => {
    const entry = await planPvc(recordedPvc("app-data"), 1, "media", recordedPolicy, catalogOf([]), nowMs);
    assert.equal(entry.decision, "fresh");
    const source = generatedOfKind(entry.generated, "ReplicationSource");
    const expected = recordedCase("ReplicationSource", "app-data-backup").job.env;
    assert.deepEqual(pick(moverJobEnvironment(source), contractKeys), pick(expected, contractKeys));
  });

  it("gives the restore mover of media/app-data the recorded identity and DATA_DIR", async () => {
    const entry = await planPvc(recordedPvc("app-data"), 1, "media", recordedPolicy, catalogOf([snapshotAt("k0a1", "2026-11-30T10:00:00.123456789Z")]), nowMs);
    assert.equal(entry.decision, "restore");
    const destination = generatedOfKind(entry.generated, "ReplicationDestination");
    const env = moverJobEnvironment(destination);
    const expected = recordedCase("ReplicationDestination", "app-data-backup").job.env;
    const identityKeys = ["KOPIA_OVERRIDE_USERNAME", "KOPIA_OVERRIDE_HOSTNAME", "DATA_DIR"];
    assert.deepEqual(pick(env, identityKeys), pick(expected, identityKeys));
  });

  it("gives the restore mover of media/asof-data the recorded identity, and the chosen snapshot's own start time as KOPIA_RESTORE_AS_OF", async () => {
    const annotation = recordedCase("ReplicationDestination", "asof-data-backup").object.spec?.kopia?.restoreAsOf;
    assert.equal(annotation, "2026-11-19T22:30:00.000Z");
    const snapshots = [
      snapshotAt("k0before", "2026-11-19T21:30:00.25Z"),
      snapshotAt("k0exact", "2026-11-19T22:30:00Z"),
      snapshotAt("k0after", "2026-11-19T23:30:00Z"),
    ];
    const entry = await planPvc(recordedPvc("asof-data", annotation as string), 1, "media", recordedPolicy, catalogOf(snapshots), nowMs);
    assert.equal(entry.decision, "restore");
    // The annotation names the instant of k0exact: as a time, k0exact is at or before it.
    assert.match(entry.decisionDetail ?? "", /k0exact/);
    const destination = generatedOfKind(entry.generated, "ReplicationDestination");
    const env = moverJobEnvironment(destination);
    const expected = recordedCase("ReplicationDestination", "asof-data-backup").job.env;
    const identityKeys = ["KOPIA_OVERRIDE_USERNAME", "KOPIA_OVERRIDE_HOSTNAME", "DATA_DIR"];
    assert.deepEqual(pick(env, identityKeys), pick(expected, identityKeys));
    assert.equal(env.KOPIA_RESTORE_AS_OF, destination.spec?.kopia?.restoreAsOf, "KOPIA_RESTORE_AS_OF is the RD's restoreAsOf verbatim");
    // Pinned: the chosen snapshot's text as kopia wrote it, never the annotation's own text.
    assert.equal(env.KOPIA_RESTORE_AS_OF, "2026-11-19T22:30:00Z");
  });
});
