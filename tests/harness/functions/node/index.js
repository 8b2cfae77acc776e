// CommonJS handler for the emulator's Node.js tests (mirrors functions/basic/app.py).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

console.log("init line from module scope");

exports.handler = async (event, context) => {
  for (let i = 0; i < Number(event.lines ?? 1); i++) {
    console.log(`line ${i} of ${context.awsRequestId}`);
  }
  if (event.log) console.warn(event.log);
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, Number(event.sleep) * 1000));
  if (event.fail) throw new TypeError(event.fail);
  if (event.rendezvous) return rendezvous(event.rendezvous, Number(event.parties));
  return { ok: true, echo: event.echo ?? null, tenant: context.tenantId ?? null, runtime: "node" };
};

// Concurrent invokes (Managed Instances) meet here: each logs, waits until all `parties` are
// in flight at once, then logs again. Sequential invokes never meet.
async function rendezvous(room, parties) {
  // Logged before announcing itself, so every "arrived" precedes every "leaving".
  console.log("arrived");
  fs.writeFileSync(path.join(room, String(process.hrtime.bigint())), "");
  const deadline = Date.now() + 5000;
  // polling a directory other invokes write, bounded by the deadline
  while (fs.readdirSync(room).length < parties && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const together = fs.readdirSync(room).length >= parties;
  console.log("leaving");
  return { ok: true, together };
}
