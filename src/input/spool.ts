/**
 * Standard input and other pipes for `vx fast`: a pipe cannot seek, and an MP4's index may sit at
 * its end, so its bytes go to a temporary file first (bounded in size, removed after the run),
 * and the file is read as any other.
 *
 * @module
 */

import { VxError } from "../errors.ts";

/** The default bound on what a pipe may hold, in MiB (`--max-spool-mb`). */
export const DEFAULT_MAX_SPOOL_MB = 4096;

/**
 * Whether `input` is a pipe or a device rather than a file: `-` (standard input), `/dev/stdin`,
 * a FIFO, a process substitution. Such an input has no size, and `stat` says 0 bytes.
 */
export function isPipe(input: string): boolean {
  if (input === "-") return true;
  try {
    const s = Deno.statSync(input);
    return !s.isFile && !s.isDirectory;
  } catch {
    return false;
  }
}

/**
 * Copies `input` (`-` is standard input) into a new temporary file, at most `maxBytes`; resolves
 * to its path and size. Throws {@linkcode VxError} naming the input when it holds more, or
 * nothing; the temporary file is gone then.
 *
 * @example
 * ```ts
 * import { spoolPipe } from "./spool.ts";
 * const { path } = await spoolPipe("-", 4096 * 2 ** 20); // `cat clip.mp4 | vx fast -`
 * ```
 */
export async function spoolPipe(
  input: string,
  maxBytes: number,
): Promise<{ path: string; bytes: number }> {
  const path = await Deno.makeTempFile({ prefix: "vx-stdin-" });
  const name = input === "-" ? "standard input" : input;
  let bytes = 0;
  try {
    const out = await Deno.open(path, { write: true });
    try {
      const readable = input === "-" ? Deno.stdin.readable : (await Deno.open(input)).readable;
      for await (const chunk of readable) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          throw new VxError(
            name,
            `holds more than ${Math.round(maxBytes / 2 ** 20)} MiB (--max-spool-mb)`,
          );
        }
        for (let at = 0; at < chunk.length;) at += await out.write(chunk.subarray(at));
      }
    } finally {
      out.close();
    }
    if (bytes === 0) throw new VxError(name, "nothing arrived (an empty pipe)");
    return { path, bytes };
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    throw e;
  }
}
