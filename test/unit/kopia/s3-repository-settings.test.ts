import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeS3Endpoint, parseS3RepositoryUrl, resolveS3Addressing } from "../../../webhook/kopia/s3-repository-settings.ts";

describe("parseS3RepositoryUrl", () => {
  // The cases VolSync's mover-kopia/test_s3_prefix.sh pins for KOPIA_REPOSITORY → --prefix.
  const cases: [string, string, string][] = [
    ["s3://mybucket/myapp", "mybucket", "myapp/"],
    ["s3://mybucket/myapp/", "mybucket", "myapp/"],
    ["s3://mybucket/myapp///", "mybucket", "myapp/"],
    ["s3://mybucket/app//data//backups", "mybucket", "app/data/backups/"],
    ["s3://mybucket/", "mybucket", ""],
    ["s3://mybucket", "mybucket", ""],
  ];
  for (const [url, bucket, prefix] of cases) {
    it(`reads ${url} as bucket ${bucket}, prefix ${JSON.stringify(prefix)}`, () => {
      assert.deepEqual(parseS3RepositoryUrl(url), { bucket, prefix });
    });
  }
  it("refuses what is not s3://", () => {
    assert.equal(parseS3RepositoryUrl("/repository"), undefined);
    assert.equal(parseS3RepositoryUrl("s3://"), undefined);
  });
});

describe("endpoint and addressing", () => {
  it("drops the scheme from AWS_S3_ENDPOINT as the mover does", () => {
    assert.equal(normalizeS3Endpoint("http://minio:9000/"), "minio:9000");
    assert.equal(normalizeS3Endpoint("https://s3.example.com"), "s3.example.com");
  });
  it("uses virtual-hosted addressing for AWS and path-style elsewhere unless told", () => {
    assert.equal(resolveS3Addressing("auto", "s3.amazonaws.com"), "virtual-hosted");
    assert.equal(resolveS3Addressing("auto", "s3.eu-west-1.amazonaws.com"), "virtual-hosted");
    assert.equal(resolveS3Addressing("auto", "minio:9000"), "path");
    assert.equal(resolveS3Addressing("virtual-hosted", "minio:9000"), "virtual-hosted");
  });
});
