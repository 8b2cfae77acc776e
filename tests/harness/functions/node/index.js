// CommonJS handler for the emulator's Node.js tests (mirrors functions/basic/app.py).
"use strict";

console.log("init line from module scope");

exports.handler = async (event, context) => {
  for (let i = 0; i < Number(event.lines ?? 1); i++) {
    console.log(`line ${i} of ${context.awsRequestId}`);
  }
  if (event.log) console.warn(event.log);
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, Number(event.sleep) * 1000));
  if (event.fail) throw new TypeError(event.fail);
  return { ok: true, echo: event.echo ?? null, tenant: context.tenantId ?? null, runtime: "node" };
};
