// The expected signatures are AWS's published examples for S3 ("Signature calculations for the
// Authorization header: transferring payload in a single chunk", examples "GET Object" and "GET
// Bucket (List Objects)"): access key AKIAIOSFODNN7EXAMPLE, region us-east-1, 2013-05-24.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { signS3Request } from "../../../webhook/kopia/s3-request-signer.ts";

const credentials = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const date = new Date("2013-05-24T00:00:00Z");

describe("signS3Request", () => {
  it("signs a ranged GET Object exactly as AWS's published example", async () => {
    const headers = await signS3Request(
      { method: "GET", protocol: "https:", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", query: {}, headers: { range: "bytes=0-9" } },
      credentials,
      "us-east-1",
      date,
    );
    assert.equal(
      headers["authorization"],
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    assert.equal(headers["x-amz-date"], "20130524T000000Z");
  });

  it("signs a bucket listing with query parameters exactly as AWS's published example", async () => {
    const headers = await signS3Request(
      { method: "GET", protocol: "https:", host: "examplebucket.s3.amazonaws.com", path: "/", query: { "max-keys": "2", prefix: "J" }, headers: {} },
      credentials,
      "us-east-1",
      date,
    );
    assert.match(
      headers["authorization"]!,
      /SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7$/,
    );
  });

  it("signs the port into the host header of a custom endpoint", async () => {
    const headers = await signS3Request(
      { method: "GET", protocol: "http:", host: "127.0.0.1:9000", path: "/bucket/kopia.repository", query: {}, headers: {} },
      credentials,
      "us-east-1",
      date,
    );
    assert.equal(headers["host"], "127.0.0.1:9000");
    assert.match(headers["authorization"]!, /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/20130524\/us-east-1\/s3\/aws4_request, /);
  });
});
