/**
 * `vx probe`: what vx sees in a file before decoding.
 *
 * @module
 */

import { probeFile } from "../pipeline/probe_file.ts";

/** Prints `input`'s container, streams and keyframes as one JSON line. */
export async function runProbe(input: string, flags: { stream?: number }): Promise<void> {
  const info = await probeFile(input, flags.stream);
  console.log(JSON.stringify({ file: input, ...info }));
}
