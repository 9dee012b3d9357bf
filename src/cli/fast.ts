/**
 * `vx fast`: one file, lowest latency; records stream out as keyframes decode.
 *
 * @module
 */

import { extract } from "../pipeline/fast.ts";
import { TraceRecorder } from "../debug/trace.ts";
import { openSink } from "../output.ts";
import { type FastFlags, outputMode, prepareTask } from "./flags.ts";
import { onNotice, presentation, runTitle, writeTrace } from "./run.ts";
import { DEFAULT_MAX_SPOOL_MB, isPipe, spoolPipe } from "../input/spool.ts";
import { VxError } from "../errors.ts";

/** Runs `vx fast INPUT` with its flags; throws a `VxError` or `UsageError` for the user. */
export async function runFast(input: string, flags: FastFlags): Promise<void> {
  const taskFrom = await prepareTask(flags);
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  tracer?.meta({ task: flags.task, taskFrom });
  const sink = await openSink(flags.out, outputMode(flags));
  const shown = await presentation(flags, runTitle("fast", [input], flags)).catch((e) => {
    sink.close();
    throw e;
  });
  // A pipe (`-`, /dev/stdin) cannot seek: its bytes go to a temporary file first.
  let spooled: { path: string; bytes: number } | undefined;
  try {
    if (isPipe(input)) {
      spooled = await spoolPipe(input, (flags.maxSpoolMb ?? DEFAULT_MAX_SPOOL_MB) * 2 ** 20);
      tracer?.fallback?.(
        "input",
        `${input}: a pipe, read into a temporary file first (${spooled.bytes} bytes)`,
      );
    }
  } catch (e) {
    sink.close();
    await shown.cleanup();
    throw e;
  }
  const source = spooled?.path ?? input;
  try {
    const timeoutMs = flags.timeout === undefined ? undefined : flags.timeout * 1000;
    const records = extract(source, {
      ...flags,
      inferrers: flags.jobs,
      framesDir: shown.framesDir,
      draw: false,
      tracer,
      timeoutMs,
      onNotice,
    });
    const start = performance.now();
    let keyframes = 0;
    try {
      for await (const record of shown.wrap(records)) {
        // A spooled pipe's records are named as the user named it.
        await sink.write(spooled ? { ...record, file: input } : record);
        keyframes++;
      }
    } catch (e) {
      if (spooled && e instanceof VxError) throw new VxError(input, e.reason, e.kind);
      throw e;
    }
    // Records in files leave the terminal empty: say what was written where, as bulk does.
    const written = [flags.out !== undefined && flags.out !== "-" && flags.out, flags.report]
      .filter((p): p is string => typeof p === "string");
    if (written.length > 0) {
      console.error(
        `vx fast: ${keyframes} keyframe${keyframes === 1 ? "" : "s"} of ${input} in ` +
          `${((performance.now() - start) / 1000).toFixed(1)} s: ${written.join(", ")}`,
      );
    }
  } finally {
    sink.close();
    await shown.cleanup();
    if (spooled) await Deno.remove(spooled.path).catch(() => {});
    await writeTrace(tracer, flags.debug);
  }
}
