import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { createContentCipher, blobIv, contentIv } from "../../../webhook/kopia/content-cipher.ts";
import { decryptConfigJson, deriveFormatKey, parseFormatEnvelope, parseRepositoryConfig } from "../../../webhook/kopia/format-blob.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const vectors = JSON.parse(readFileSync(new URL("test-vectors.json", fixtures), "utf8")) as {
  formatBlobs: {
    fixture: string;
    password: string;
    uniqueIDHex: string;
    formatEncryptionKeyHex: string;
    decryptedRepositoryConfigJSON: string;
  }[];
  kopiaEncryptionCiphertextSamples: {
    cases: { masterKeyAscii: string; contentIdAscii: string; payloadAscii: string; ciphertextHex: Record<string, string> }[];
  };
};

describe("format blob", () => {
  for (const vector of vectors.formatBlobs) {
    it(`derives the format key and decrypts the exact configuration of ${vector.fixture}`, async () => {
      const envelope = parseFormatEnvelope(readFileSync(new URL(vector.fixture, fixtures)));
      assert.equal(envelope.uniqueId.toString("hex"), vector.uniqueIDHex);
      const formatKey = await deriveFormatKey(vector.password, envelope);
      assert.equal(formatKey.toString("hex"), vector.formatEncryptionKeyHex);
      const json = decryptConfigJson(envelope, formatKey);
      assert.equal(json, vector.decryptedRepositoryConfigJSON);
      const config = parseRepositoryConfig(json);
      const expected = JSON.parse(vector.decryptedRepositoryConfigJSON).format;
      assert.equal(config.formatVersion, expected.version);
      assert.equal(config.indexVersion, expected.indexVersion);
      assert.equal(config.encryption, expected.encryption);
      assert.equal(config.epochParameters.enabled, expected.epochParameters.Enabled);
      assert.equal(config.masterKey.toString("base64"), expected.masterKey);
    });
  }

  it("rejects a wrong password as wrong-password, never as an empty repository", async () => {
    const vector = vectors.formatBlobs[0]!;
    const envelope = parseFormatEnvelope(readFileSync(new URL(vector.fixture, fixtures)));
    const formatKey = await deriveFormatKey("test124", envelope);
    assert.throws(
      () => decryptConfigJson(envelope, formatKey),
      (error) => isRepositoryError(error, "wrong-password"),
    );
  });

  it("rejects an unknown key derivation algorithm and an unencrypted envelope", () => {
    const raw = JSON.parse(readFileSync(new URL(vectors.formatBlobs[0]!.fixture, fixtures), "utf8"));
    const withAlgo = Buffer.from(JSON.stringify({ ...raw, keyAlgo: "argon2id-1" }));
    assert.throws(
      () => parseFormatEnvelope(withAlgo),
      (error) => isRepositoryError(error, "unsupported"),
    );
    const { encryptedBlockFormat: _dropped, ...plain } = raw;
    assert.throws(
      () => parseFormatEnvelope(Buffer.from(JSON.stringify(plain))),
      (error) => isRepositoryError(error, "unsupported"),
    );
    assert.throws(
      () => parseFormatEnvelope(Buffer.from("{not json")),
      (error) => isRepositoryError(error, "corrupt"),
    );
  });

  it("derives pbkdf2 format keys as kopia's pbkdf2-sha256-600000", async () => {
    const envelope = {
      ...parseFormatEnvelope(readFileSync(new URL(vectors.formatBlobs[0]!.fixture, fixtures))),
      keyAlgorithm: "pbkdf2-sha256-600000" as const,
    };
    const { pbkdf2Sync } = await import("node:crypto");
    const expected = pbkdf2Sync("test123", envelope.uniqueId, 600000, 32, "sha256");
    assert.deepEqual(await deriveFormatKey("test123", envelope), expected);
  });
});

describe("repository configuration allow-lists", () => {
  const base = JSON.parse(vectors.formatBlobs[0]!.decryptedRepositoryConfigJSON) as { format: Record<string, unknown> };
  const withFormat = (patch: Record<string, unknown>) => JSON.stringify({ format: { ...base.format, ...patch } });
  const table: { name: string; patch: Record<string, unknown>; kind: string }[] = [
    { name: "a newer format version", patch: { version: 4 }, kind: "unsupported" },
    { name: "a newer index version", patch: { indexVersion: 3 }, kind: "unsupported" },
    { name: "an unknown content encryption", patch: { encryption: "XCHACHA-NEXT" }, kind: "unsupported" },
    { name: "an unknown error correction", patch: { ecc: "OTHER-ECC", eccOverheadPercent: 2 }, kind: "unsupported" },
    { name: "an unknown required feature", patch: { requiredFeatures: [{ feature: "index-v3", ifNotUnderstood: { warn: false } }] }, kind: "unsupported" },
    { name: "an upgrade lock", patch: { upgradeLock: { ownerID: "x", creationTime: "2026-01-01T00:00:00Z" } }, kind: "busy" },
  ];
  for (const row of table) {
    it(`refuses ${row.name}`, () => {
      assert.throws(
        () => parseRepositoryConfig(withFormat(row.patch)),
        (error) => isRepositoryError(error) && error.kind === row.kind,
      );
    });
  }
  it("accepts the known required features", () => {
    const config = parseRepositoryConfig(withFormat({ requiredFeatures: [{ feature: "index-v2", ifNotUnderstood: {} }] }));
    assert.equal(config.indexVersion, 2);
  });
});

describe("content cipher", () => {
  for (const sample of vectors.kopiaEncryptionCiphertextSamples.cases) {
    for (const [algorithm, hex] of Object.entries(sample.ciphertextHex)) {
      it(`decrypts kopia's ${algorithm} sample for ${JSON.stringify(sample.payloadAscii)}`, () => {
        const cipher = createContentCipher(algorithm as "AES256-GCM-HMAC-SHA256", Buffer.from(sample.masterKeyAscii));
        const plain = cipher.decrypt(Buffer.from(sample.contentIdAscii), Buffer.from(hex, "hex"), "sample");
        assert.equal(plain.toString(), sample.payloadAscii);
      });
      it(`rejects a flipped bit in kopia's ${algorithm} sample`, () => {
        const cipher = createContentCipher(algorithm as "AES256-GCM-HMAC-SHA256", Buffer.from(sample.masterKeyAscii));
        const bytes = Buffer.from(hex, "hex");
        bytes[14]! ^= 1;
        assert.throws(
          () => cipher.decrypt(Buffer.from(sample.contentIdAscii), bytes, "sample"),
          (error) => isRepositoryError(error, "corrupt"),
        );
      });
    }
  }

  it("takes a blob's IV from the 32 hex characters before the first dash", () => {
    assert.equal(blobIv("xn0_9272d5d82e8410d13dbede7d823494cb-sbe3e4d37a57d1f5f13d-c1").toString("hex"), "9272d5d82e8410d13dbede7d823494cb");
    assert.equal(blobIv("n9272d5d82e8410d13dbede7d823494cb").toString("hex"), "9272d5d82e8410d13dbede7d823494cb");
    assert.throws(
      () => blobIv("xe1"),
      (error) => isRepositoryError(error, "corrupt"),
    );
  });

  it("takes a content's IV from its hash without the prefix letter", () => {
    assert.equal(contentIv("m0bf4da00801bd8c6ecfb66cffa67f32c").toString("hex"), "0bf4da00801bd8c6ecfb66cffa67f32c");
  });
});
