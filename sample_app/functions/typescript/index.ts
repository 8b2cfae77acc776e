// The sample's TypeScript function: records every object put under `typescript/` in DynamoDB.
//
// Node's standard library only (global fetch, node:crypto): it signs DynamoDB's PutItem
// itself (Signature Version 4), so esbuild bundles it offline with nothing from npm, and the
// same bundle runs in Lambda and in the local emulator. Lambda gives it credentials and the
// region in the environment; AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL point it elsewhere
// (the local demo's stand-in), as they do for the AWS SDKs.
import { createHash, createHmac } from "node:crypto";

interface S3Record {
  eventTime?: string;
  s3: { bucket: { name: string }; object: { key: string; size?: number } };
}

interface S3Event {
  Records?: S3Record[];
}

type AttributeValue = { S: string } | { N: string };

const TABLE = process.env.TABLE_NAME ?? "";
const REGION = process.env.AWS_REGION ?? "us-east-1";
const ENDPOINT =
  process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL ?? `https://dynamodb.${REGION}.amazonaws.com`;

export const handler = async (event: S3Event): Promise<{ written: number }> => {
  const records = event.Records ?? [];
  console.info(`received ${records.length} S3 record(s)`);
  let written = 0;
  for (const record of records) {
    const bucket = record.s3.bucket.name;
    // S3 URL-encodes keys in notifications (a space arrives as '+').
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    const meta = await putItem({
      key: { S: key },
      bucket: { S: bucket },
      size: { N: String(record.s3.object.size ?? 0) },
      eventTime: { S: record.eventTime ?? "" },
      writer: { S: "typescript" },
    });
    console.log(`put_item ${key}: ${JSON.stringify(meta)}`);
    console.info(`stored s3://${bucket}/${key} in ${TABLE}`);
    written += 1;
  }
  return { written };
};

async function putItem(item: Record<string, AttributeValue>): Promise<Record<string, number | string>> {
  const body = JSON.stringify({ TableName: TABLE, Item: item });
  const url = new URL(ENDPOINT);
  const headers = sign(url.host, "DynamoDB_20120810.PutItem", body, new Date());
  const response = await fetch(url, { method: "POST", headers, body });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`DynamoDB PutItem answered ${response.status}: ${text}`);
  }
  return {
    HTTPStatusCode: response.status,
    RequestId: response.headers.get("x-amzn-requestid") ?? "",
    RetryAttempts: 0,
  };
}

// SigV4 for DynamoDB's JSON 1.0 protocol: POST / with the operation in X-Amz-Target.
function sign(host: string, target: string, body: string, now: Date): Record<string, string> {
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    "content-type": "application/x-amz-json-1.0",
    host,
    "x-amz-date": amzDate,
    "x-amz-target": target,
  };
  const token = process.env.AWS_SESSION_TOKEN;
  if (token) {
    headers["x-amz-security-token"] = token;
  }
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(";");
  const canonical = [
    "POST",
    "/",
    "",
    names.map((name) => `${name}:${headers[name]}\n`).join(""),
    signedHeaders,
    sha256(body),
  ].join("\n");
  const scope = `${day}/${REGION}/dynamodb/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  let key: Buffer = hmac(`AWS4${process.env.AWS_SECRET_ACCESS_KEY ?? ""}`, day);
  for (const part of [REGION, "dynamodb", "aws4_request"]) {
    key = hmac(key, part);
  }
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID ?? ""}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  delete headers.host; // fetch sets Host from the URL: the same value that was signed
  return headers;
}

function sha256(data: string): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}
