// ES module handler: the runtime must load it with import(), not require().
console.log("esm init");

export const handler = async (event, context) => {
  console.log(`esm handler ${context.awsRequestId}`);
  return { ok: true, kind: "esm", echo: event.echo ?? null };
};
