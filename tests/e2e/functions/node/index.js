// The end-to-end tests' handler for the Node.js runtime: the same steps as app.py where
// Node has an equivalent, so a test computes the expected Loki lines itself.
//   {"print": [str]}       console.log each (Text format: "<time>\t<id>\tINFO\t<msg>")
//   {"stdout": [str]}      process.stdout.write each plus "\n" (raw lines, no prefix)
//   {"stderr": [str]}      console.error each
//   {"burst": {"prefix", "count", "width"}}  console.log of `${prefix}-${i:06d} ` padded
//                          with dots to `width` characters
"use strict";

function burstLine(prefix, i, width) {
  const head = `${prefix}-${String(i).padStart(6, "0")} `;
  return head + ".".repeat(Math.max(0, width - head.length));
}

exports.handler = async (event, context) => {
  for (const step of event.steps ?? []) {
    if (step.print) step.print.forEach((text) => console.log(text));
    else if (step.stdout) step.stdout.forEach((text) => process.stdout.write(text + "\n"));
    else if (step.stderr) step.stderr.forEach((text) => console.error(text));
    else if (step.burst) {
      const { prefix, count, width = 0 } = step.burst;
      for (let i = 0; i < count; i++) console.log(burstLine(prefix, i, width));
    }
  }
  return { ok: true, request_id: context.awsRequestId };
};
