// A non-Python function: the Loki aspect skips it (with a warning) because the
// extension needs a Python runtime's interpreter.
exports.handler = async (event) => {
  console.log(`audit: ${(event.Records || []).length} record(s)`);
  return { ok: true };
};
