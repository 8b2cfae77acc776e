// A small Node.js runtime for the local Lambda emulator: the Runtime API loop of
// Lambda's Node.js runtime, without its native HTTP client (which needs a build step).
//
// It loads `_HANDLER` (`path/file.export`) from LAMBDA_TASK_ROOT, CommonJS or ESM, loops on
// /2018-06-01/runtime/invocation/next, posts the response or the error, and routes console
// output the way the Node.js runtime does: one console call is one telemetry-fd frame
// (`_LAMBDA_TELEMETRY_LOG_FD`), `<ISO time>\t<requestId>\t<LEVEL>\t<message>\n` in Text format,
// `{"timestamp","level","requestId"[,"tenantId"],"message"}` in JSON format.
// AWS_LAMBDA_MAX_CONCURRENCY > 1 (Managed Instances) runs that many loops at once; each
// console call carries the request id of the invoke it belongs to (AsyncLocalStorage).

import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync, writeSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || process.cwd();
const HANDLER = process.env._HANDLER || "";
const JSON_FORMAT = (process.env.AWS_LAMBDA_LOG_FORMAT || "").toUpperCase() === "JSON";
const LOG_FD = process.env._LAMBDA_TELEMETRY_LOG_FD ? Number(process.env._LAMBDA_TELEMETRY_LOG_FD) : null;
const CONCURRENCY = Math.max(1, Number(process.env.AWS_LAMBDA_MAX_CONCURRENCY || "1") || 1);

// Frame types and level masks of Lambda's telemetry log fd (big-endian header:
// type, length, timestamp in microseconds).
const FRAME_TEXT = 0xa55a0003;
const FRAME_JSON = 0xa55a0002;
const LEVELS = {
  TRACE: { name: "TRACE", priority: 1, mask: 0b00100 },
  DEBUG: { name: "DEBUG", priority: 2, mask: 0b01000 },
  INFO: { name: "INFO", priority: 3, mask: 0b01100 },
  WARN: { name: "WARN", priority: 4, mask: 0b10000 },
  ERROR: { name: "ERROR", priority: 5, mask: 0b10100 },
  FATAL: { name: "FATAL", priority: 6, mask: 0b11000 },
};
// Level filtering applies to the JSON format only, as in Lambda.
const MIN_LEVEL = JSON_FORMAT ? (LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || "").toUpperCase()] || LEVELS.TRACE) : LEVELS.TRACE;

const invokeStore = new AsyncLocalStorage();
const header = Buffer.alloc(16);

function emit(level, args) {
  if (level.priority < MIN_LEVEL.priority) return;
  const now = new Date();
  const ctx = invokeStore.getStore();
  const requestId = ctx ? ctx.requestId : undefined;
  let line;
  if (JSON_FORMAT) {
    const rec = { timestamp: now.toISOString(), level: level.name, requestId };
    if (ctx && ctx.tenantId) rec.tenantId = ctx.tenantId;
    rec.message = args.length === 1 && typeof args[0] !== "string" ? args[0] : format(...args);
    for (const a of args) {
      if (a instanceof Error) {
        rec.errorType = a.constructor?.name ?? "UnknownError";
        rec.errorMessage = a.message;
        rec.stackTrace = typeof a.stack === "string" ? a.stack.split("\n") : [];
        break;
      }
    }
    try {
      line = JSON.stringify(rec);
    } catch {
      rec.message = format(rec.message);
      line = JSON.stringify(rec);
    }
  } else {
    // Before the first invoke the Node.js runtime prints the id as "undefined".
    line = [now.toISOString(), String(requestId), level.name, format(...args)].join("\t") + "\n";
  }
  const bytes = Buffer.from(line, "utf8");
  if (LOG_FD === null) {
    // Without the fd, newlines inside a message would split the record: the runtime
    // replaces them with carriage returns on stdout.
    const text = JSON_FORMAT ? line + "\n" : line.slice(0, -1).replace(/\n/g, "\r") + "\n";
    process.stdout.write(text);
    return;
  }
  header.writeUInt32BE(((JSON_FORMAT ? FRAME_JSON : FRAME_TEXT) | level.mask) >>> 0, 0);
  header.writeUInt32BE(bytes.length, 4);
  header.writeBigInt64BE(BigInt(now.valueOf()) * 1000n, 8);
  writeSync(LOG_FD, Buffer.concat([header, bytes]));
}

console.log = (...a) => emit(LEVELS.INFO, a);
console.info = (...a) => emit(LEVELS.INFO, a);
console.warn = (...a) => emit(LEVELS.WARN, a);
console.error = (...a) => emit(LEVELS.ERROR, a);
console.debug = (...a) => emit(LEVELS.DEBUG, a);
console.trace = (...a) => emit(LEVELS.TRACE, a);
console.fatal = (...a) => emit(LEVELS.FATAL, a);

// ------------------------------------------------------------------ Runtime API client
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY + 1 });
const [HOST, PORT] = API.split(":");

function call(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: HOST,
        port: Number(PORT),
        path: urlPath,
        method,
        agent,
        headers: data ? { "Content-Type": "application/json", "Content-Length": data.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

function errorDoc(err, fallbackType) {
  if (err instanceof Error) {
    return {
      errorType: err.name && err.name !== "Error" ? err.name : err.constructor?.name || fallbackType,
      errorMessage: err.message,
      trace: typeof err.stack === "string" ? err.stack.split("\n") : [],
    };
  }
  return { errorType: fallbackType, errorMessage: String(err), trace: [] };
}

async function postInitError(err, type) {
  const doc = errorDoc(err, type);
  doc.errorType = type;
  emit(LEVELS.ERROR, [`Uncaught Exception \t${JSON.stringify(doc)}`]);
  await call("POST", "/2018-06-01/runtime/init/error", JSON.stringify(doc), {
    "Lambda-Runtime-Function-Error-Type": type,
  });
  process.exit(1);
}

// ------------------------------------------------------------------ handler loading
async function loadHandler() {
  const slash = HANDLER.lastIndexOf("/");
  const dot = HANDLER.indexOf(".", slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${HANDLER}`), { name: "Runtime.MalformedHandlerName" });
  const modulePath = HANDLER.slice(0, dot);
  const exportPath = HANDLER.slice(dot + 1).split(".");
  const base = path.resolve(TASK_ROOT, modulePath);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: "Runtime.ImportModuleError" });
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { name: "Runtime.ImportModuleError" });
  }
  // CommonJS exports arrive as `default` (and as named exports when Node can detect them).
  let fn = exportPath.reduce((o, k) => (o == null ? undefined : o[k]), mod);
  if (typeof fn !== "function") fn = exportPath.reduce((o, k) => (o == null ? undefined : o[k]), mod.default);
  if (typeof fn !== "function") {
    throw Object.assign(new Error(`${modulePath}.${exportPath.join(".")} is undefined or not exported`), {
      name: "Runtime.HandlerNotFound",
    });
  }
  return fn;
}

function runHandler(fn, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (err, result) => (err ? reject(err) : resolve(result));
    try {
      const out = fn.length >= 3 ? fn(event, context, callback) : fn(event, context);
      if (out && typeof out.then === "function") out.then(resolve, reject);
      else if (fn.length < 3) resolve(out);
    } catch (err) {
      reject(err);
    }
  });
}

async function loop(fn) {
  for (;;) {
    const next = await call("GET", "/2018-06-01/runtime/invocation/next");
    const h = next.headers;
    const requestId = h["lambda-runtime-aws-request-id"];
    const deadline = Number(h["lambda-runtime-deadline-ms"]);
    const tenantId = h["lambda-runtime-aws-tenant-id"];
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      tenantId,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    if (h["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = h["lambda-runtime-trace-id"];
    const event = next.body.length ? JSON.parse(next.body.toString("utf8")) : undefined;
    await invokeStore.run({ requestId, tenantId }, async () => {
      try {
        const result = await runHandler(fn, event, context);
        await call("POST", `/2018-06-01/runtime/invocation/${requestId}/response`, JSON.stringify(result ?? null));
      } catch (err) {
        const doc = errorDoc(err, "Error");
        emit(LEVELS.ERROR, [`Invoke Error \t${JSON.stringify(doc)}`]);
        await call("POST", `/2018-06-01/runtime/invocation/${requestId}/error`, JSON.stringify(doc), {
          "Lambda-Runtime-Function-Error-Type": doc.errorType,
        });
      }
    });
  }
}

let handler;
try {
  handler = await loadHandler();
} catch (err) {
  await postInitError(err, err && err.name && err.name.startsWith("Runtime.") ? err.name : "Runtime.UserCodeSyntaxError");
}
await Promise.all(Array.from({ length: CONCURRENCY }, () => loop(handler)));
