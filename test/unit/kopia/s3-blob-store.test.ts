import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeS3Key, s3RequestTarget } from "../../../webhook/kopia/s3-blob-store.ts";

describe("s3RequestTarget", () => {
  // Kopia's S3 storage names an object `<prefix><blob ID>` (repo/blob/s3: getObjectNameString).
  const cases = [
    { addressing: "path", key: "repo/kopia.repository", host: "127.0.0.1:9000", path: "/bucket/repo/kopia.repository" },
    { addressing: "path", key: "", host: "127.0.0.1:9000", path: "/bucket/" },
    { addressing: "virtual-hosted", key: "repo/xn0_ab-s1-c1", host: "bucket.127.0.0.1:9000", path: "/repo/xn0_ab-s1-c1" },
    { addressing: "virtual-hosted", key: "", host: "bucket.127.0.0.1:9000", path: "/" },
  ] as const;
  for (const c of cases) {
    it(`addresses ${JSON.stringify(c.key)} ${c.addressing}-style as ${c.host}${c.path}`, () => {
      assert.deepEqual(s3RequestTarget({ bucket: "bucket", endpoint: "127.0.0.1:9000", addressing: c.addressing }, c.key), { host: c.host, path: c.path });
    });
  }
});

describe("encodeS3Key", () => {
  it("escapes every character but the unreserved ones and the slash, as SigV4 wants for S3", () => {
    assert.equal(encodeS3Key("a b/c+d*(e)!'~_.-"), "a%20b/c%2Bd%2A%28e%29%21%27~_.-");
  });
});
