/**
 * `vx fast`: one file, lowest latency; records stream out as keyframes decode.
 *
 * @module
 */

import { extract } from "../pipeline/fast.ts";
import { TraceRecorder } from "../debug/trace.ts";
import { openSink } from "../output.ts";
import { checkTaskFlags, type FastFlags, outputMode, resolveTask } from "./flags.ts";
import { onNotice, presentation, runTitle, writeTrace } from "./run.ts";

/** Runs `vx fast INPUT` with its flags; throws a `VxError` or `UsageError` for the user. */
export async function runFast(input: string, flags: FastFlags): Promise<void> {
  const taskFrom = await resolveTask(flags);
  checkTaskFlags(flags);
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  tracer?.meta({ task: flags.task, taskFrom });
  const sink = await openSink(flags.out, outputMode(flags));
  const shown = await presentation(flags, runTitle("fast", [input], flags)).catch((e) => {
    sink.close();
    throw e;
  });
  try {
    const timeoutMs = flags.timeout === undefined ? undefined : flags.timeout * 1000;
    const records = extract(input, {
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
    for await (const record of shown.wrap(records)) {
      await sink.write(record);
      keyframes++;
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
    await writeTrace(tracer, flags.debug);
  }
}
