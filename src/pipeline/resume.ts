/**
 * `--resume`: which files an earlier run already finished, read from its output file.
 *
 * A file's records are written together, followed by its status record, so the output is a
 * sequence of complete blocks, possibly followed by the start of a block that a killed run did
 * not finish. Resuming cuts that tail off, so no record is duplicated when the file runs again.
 *
 * @module
 */

/**
 * Reads `path` (if it exists), truncates it after its last complete status record, and returns
 * each file that has one with its latest status (`ok` or `error`): a file retried after an error
 * has both, and the later counts.
 */
export async function prepareResume(path: string): Promise<Map<string, "ok" | "error">> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Map();
    throw e;
  }
  const done = new Map<string, "ok" | "error">();
  let keep = 0;
  let at = 0;
  const dec = new TextDecoder();
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) break; // a line without its newline was cut off
    const line = dec.decode(bytes.subarray(at, nl));
    at = nl + 1;
    try {
      const r = JSON.parse(line);
      if (typeof r?.status === "string" && typeof r.file === "string") {
        done.set(r.file, r.status === "ok" ? "ok" : "error");
        keep = at;
      }
    } catch { /* a torn line: dropped with the rest of the tail */ }
  }
  if (keep < bytes.length) await Deno.truncate(path, keep);
  return done;
}
