// AWS Signature Version 4 for the S3 requests the blob store makes (GET object, GET bucket
// listing), through @smithy/signature-v4: the signer every AWS SDK for JavaScript request goes
// through, without the rest of the SDK. The path arrives already URI-encoded once, as S3 wants it
// (S3 is the one service that does not encode the path a second time).

import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

export type S3Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

export type S3RequestToSign = {
  method: "GET" | "HEAD";
  protocol: "http:" | "https:";
  /** The Host header as sent: the hostname, plus `:port` when it is not the scheme's default. */
  host: string;
  /** URI-encoded once, starting with `/`. */
  path: string;
  query: Record<string, string>;
  /** Extra headers to send and sign (`range`). */
  headers: Record<string, string>;
};

/** SHA-256 of the empty body: every request here is a GET without one. */
const emptyBodySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The HashConstructor shape @smithy/signature-v4 expects, over node:crypto. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    if (secret === undefined) this.hash = createHash("sha256");
    else if (typeof secret === "string") this.hash = createHmac("sha256", secret);
    else if (ArrayBuffer.isView(secret)) this.hash = createHmac("sha256", Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength));
    else this.hash = createHmac("sha256", Buffer.from(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    if (typeof data === "string") this.hash.update(data, "utf8");
    else if (ArrayBuffer.isView(data)) this.hash.update(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    else this.hash.update(Buffer.from(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

/** The headers to send: the given ones plus host, x-amz-date, x-amz-content-sha256 and authorization. */
export async function signS3Request(
  request: S3RequestToSign,
  credentials: S3Credentials,
  region: string,
  signingDate: Date = new Date(),
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: "s3",
    region,
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
    },
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: true,
  });
  const colon = request.host.lastIndexOf(":");
  const hasPort = colon > 0 && !request.host.endsWith("]");
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: request.protocol,
      hostname: hasPort ? request.host.slice(0, colon) : request.host,
      ...(hasPort ? { port: Number(request.host.slice(colon + 1)) } : {}),
      path: request.path,
      query: { ...request.query },
      headers: { ...request.headers, host: request.host, "x-amz-content-sha256": emptyBodySha256 },
    },
    { signingDate },
  );
  return Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
}
