/**
 * `vx fast`: one file, lowest latency; records stream out as keyframes decode. With `--server`
 * the file runs on a vx server (`src/client/remote.ts`), and the records, the stderr line and
 * the exit status are a local run's.
 *
 * @module
 */

import { VxError } from "../errors.ts";
import { openSink } from "../record_sink.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import { checkServerFlags, type FastFlags, outputMode, prepareTask, serverFlag } from "./flags.ts";
import { onNotice, presentation, runTitle, writeTrace } from "./run.ts";
import { DEFAULT_MAX_SPOOL_MB, isPipe, spoolPipe } from "../input/spool.ts";
import { isUrl } from "../input/source.ts";
import { UsageError } from "../errors.ts";
import { FAULTS } from "../pipeline/faults.ts";
import { pastEndLine } from "../decode/selection.ts";

/** Runs `vx fast INPUT` with its flags; throws a `VxError` or `UsageError` for the user. */
export async function runFast(input: string, flags: FastFlags): Promise<void> {
  const taskFrom = await prepareTask(flags);
  const server = serverFlag(flags);
  if (server !== undefined) return await runOnServer(input, flags, server);
  // Imported here, not above: a run through a server loads no decoder and no model runtime.
  // The recorder only with --debug: it loads `node:process` (~11 ms here) for its usage figures.
  const [{ extract }, trace] = await Promise.all([
    import("../pipeline/fast.ts"),
    flags.debug === undefined ? undefined : import("../debug/trace.ts"),
  ]);
  const tracer = trace && new trace.TraceRecorder();
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
      // A spooled pipe's records are named as the user named it.
      name: spooled ? input : undefined,
      [FAULTS]: flags.loseGpu ? { loseGpu: true } : undefined,
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
    summary(input, flags, keyframes, start);
  } finally {
    sink.close();
    await shown.cleanup();
    if (spooled) await Deno.remove(spooled.path).catch(() => {});
    await writeTrace(tracer, flags.debug);
  }
}

/** `fast` on a vx server: its records as they arrive; an error status is the run's error. */
async function runOnServer(input: string, flags: FastFlags, spec: string): Promise<void> {
  checkServerFlags(flags);
  if (isUrl(input)) {
    throw new UsageError(
      `${input}: an http(s) input does not apply with --server (the server would fetch it); ` +
        "run without --server",
    );
  }
  const [{ serverAddress }, { remoteFile, serverSettings }] = await Promise.all([
    import("../client/address.ts"),
    import("../client/remote.ts"),
  ]);
  const server = serverAddress(spec);
  const sink = await openSink(flags.out, outputMode(flags));
  // A pipe (`-`, /dev/stdin) is read into a temporary file first, as locally, then sent.
  let spooled: { path: string; bytes: number } | undefined;
  try {
    const { settings, names } = await serverSettings({
      ...pickTaskOptions(flags),
      backend: flags.backend,
      threads: flags.threads,
      sequential: flags.sequential || undefined,
    });
    if (isPipe(input)) {
      spooled = await spoolPipe(input, (flags.maxSpoolMb ?? DEFAULT_MAX_SPOOL_MB) * 2 ** 20);
    }
    const records = remoteFile(server, input, {
      settings,
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      stream: flags.stream,
      select: flags.select,
      source: spooled?.path,
    }, names);
    const start = performance.now();
    let keyframes = 0;
    for await (const r of records) {
      if (!("status" in r)) {
        await sink.write(r);
        keyframes++;
      } else if (r.status === "error") throw new VxError(input, r.error, "input");
      else if (r.pastEnd?.length) onNotice(pastEndLine(input, r.pastEnd));
    }
    summary(input, flags, keyframes, start);
  } finally {
    sink.close();
    server.client?.close();
    if (spooled) await Deno.remove(spooled.path).catch(() => {});
  }
}

/** Records in files leave the terminal empty: says what was written where, as bulk does. */
function summary(input: string, flags: FastFlags, keyframes: number, start: number): void {
  const written = [flags.out !== undefined && flags.out !== "-" && flags.out, flags.report]
    .filter((p): p is string => typeof p === "string");
  if (written.length > 0) {
    console.error(
      `vx fast: ${keyframes} keyframe${keyframes === 1 ? "" : "s"} of ${input} in ` +
        `${((performance.now() - start) / 1000).toFixed(1)} s: ${written.join(", ")}`,
    );
  }
}
