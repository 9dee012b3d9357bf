/**
 * `vx bulk`: many files, most work per core; progress on a terminal, a summary at the end. With
 * `--server` the files run on a vx server (`src/client/remote.ts`); `--out`, `--resume`,
 * `--shard`, the stderr lines and the exit status are a local run's.
 *
 * @module
 */

import type { BulkProgress } from "../pipeline/file_order.ts";
import type { VxRecord } from "../records.ts";
import { UsageError } from "../errors.ts";
import { openSink } from "../record_sink.ts";
import { expandInputs, parseShard, shard as shardOf } from "../pipeline/inputs.ts";
import { cutTail, readEarlier } from "../pipeline/resume.ts";
import { isUrl, shownName } from "../input/source.ts";
import { outputHeader, runSettings, settingsDifference } from "../pipeline/settings.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import type { RecordSink } from "../record_sink.ts";
import { type BulkFlags, checkServerFlags, outputMode, prepareTask, serverFlag } from "./flags.ts";
import { onNotice, presentation, runTitle, writeTrace } from "./run.ts";
import { FAULTS } from "../pipeline/faults.ts";

function progressLine(p: BulkProgress): string {
  const s = p.elapsedMs / 1000;
  const rate = p.done / Math.max(s, 1e-3);
  const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
  return `${p.done}/${p.total} files (${p.failed} failed), ${p.keyframes} keyframes, ` +
    `${(p.keyframes / Math.max(s, 1e-3)).toFixed(1)} keyframes/s, ` +
    `ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"}`;
}

/**
 * Readies a `--out` file for this run: a new one gets the header of this run's settings first;
 * one resumed is compared with them (another setting is a usage error naming the first that
 * differs, and the file is left byte for byte as it was), then cut after its last complete block.
 * Resolves to each file of the earlier run with its latest status, when resuming.
 */
async function startOutput(
  sink: RecordSink,
  flags: BulkFlags,
): Promise<Map<string, "ok" | "error"> | undefined> {
  const out = flags.out;
  if (out === undefined || out === "-") return undefined;
  const header = outputHeader(
    await runSettings(pickTaskOptions(flags), flags.stream, flags.select),
  );
  if (!flags.resume) {
    await sink.write(header);
    return undefined;
  }
  const earlier = await readEarlier(out);
  if (earlier.header) {
    const differs = settingsDifference(earlier.header, header);
    if (differs) {
      throw new UsageError(
        `${out} was written with other settings (${differs}): --resume would mix two runs' ` +
          "records; use another --out, or --overwrite to replace it",
      );
    }
  } else if (earlier.keep > 0) {
    console.error(
      `vx: ${out}: its settings are unknown (written by a vx that did not record them); ` +
        "resuming without checking them",
    );
  }
  await cutTail(out, earlier);
  if (!earlier.header && earlier.keep === 0) await sink.write(header);
  return earlier.done;
}

/** The checks of bulk's flags that need no file; returns the shard and the server asked for. */
function checkBulkFlags(
  inputs: string[],
  flags: BulkFlags,
): { shard: ReturnType<typeof parseShard> | undefined; server: string | undefined } {
  if (flags.resume && (!flags.out || flags.out === "-")) {
    throw new UsageError("--resume needs --out FILE");
  }
  if (flags.retryFailed && !flags.resume) throw new UsageError("--retry-failed needs --resume");
  if (flags.resume && flags.overwrite) {
    throw new UsageError("--resume continues the output and --overwrite replaces it: pick one");
  }
  const shard = flags.shard === undefined ? undefined : parseShard(flags.shard);
  const server = serverFlag(flags);
  if (server !== undefined) {
    checkServerFlags(flags);
    const url = inputs.find(isUrl);
    if (url !== undefined) {
      throw new UsageError(
        `${url}: an http(s) input does not apply with --server (the server would fetch it); ` +
          "run without --server",
      );
    }
  }
  return { shard, server };
}

/** Runs `vx bulk INPUTS…`; resolves to the exit code (1 when a file failed). */
export async function runBulk(inputs: string[], flags: BulkFlags): Promise<number> {
  const taskFrom = await prepareTask(flags);
  const { shard, server } = checkBulkFlags(inputs, flags);
  // Imported here, not above: a run through a server loads no decoder and no model runtime.
  const address = server === undefined
    ? undefined
    : (await import("../client/address.ts")).serverAddress(server);
  // The files a run takes: the inputs expanded, then its shard (as `bulkPaths` does).
  const paths = async (skipped?: Map<string, number>) => {
    const all = await expandInputs(inputs, skipped);
    return shard ? shardOf(all, shard.index, shard.count) : all;
  };
  const tracer = flags.debug === undefined
    ? undefined
    : new (await import("../debug/trace.ts")).TraceRecorder();
  tracer?.meta({ task: flags.task, taskFrom });
  // The output is locked before anything else: resuming reads it, and no other run may write it.
  const sink = await openSink(flags.out, outputMode(flags));
  const earlier = await startOutput(sink, flags).catch((e) => {
    sink.close();
    throw e;
  });
  // Files already done are skipped; those whose latest status is an error too, unless retried.
  const skip = earlier &&
    new Set([...earlier].filter(([, s]) => s === "ok" || !flags.retryFailed).map(([f]) => f));
  // This run's inputs that failed in an earlier run and are not retried: they still fail it.
  // The inputs are expanded for this only when the output holds an error at all.
  const failedBefore = earlier && !flags.retryFailed && [...earlier.values()].includes("error")
    ? (await paths()).map(shownName).filter((f) => earlier.get(f) === "error")
    : [];
  const shown = address !== undefined
    ? { framesDir: undefined, wrap: <R>(r: R) => r, cleanup: () => Promise.resolve() }
    : await presentation(flags, runTitle("bulk", inputs, flags), true).catch((e) => {
      sink.close();
      throw e;
    });
  const skipped = new Map<string, number>();
  const tty = Deno.stderr.isTerminal();
  const toTerminal = (flags.out === undefined || flags.out === "-") && Deno.stdout.isTerminal();
  const enc = new TextEncoder();
  let last: BulkProgress | undefined;
  const failed: string[] = [];
  /** Records are being written to the terminal the progress line is drawn on. */
  let writing = false;
  const draw = () => {
    if (tty && last && !writing) Deno.stderr.writeSync(enc.encode(`\r\x1b[K${progressLine(last)}`));
  };
  const onProgress = (p: BulkProgress) => {
    last = p;
    draw();
  };
  let close = () => {};
  try {
    let records: AsyncIterable<VxRecord>;
    if (address !== undefined) {
      const { remoteBulk, serverSettings } = await import("../client/remote.ts");
      close = () => address.client?.close();
      const { settings, names } = await serverSettings({
        ...pickTaskOptions(flags),
        backend: flags.backend,
        threads: flags.threads,
      });
      records = remoteBulk(address, (await paths(skipped)).filter((p) => !skip?.has(p)), {
        settings,
        timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
        stream: flags.stream,
        select: flags.select,
        onProgress,
      }, names);
    } else {
      const { extractBulk } = await import("../pipeline/bulk.ts");
      records = extractBulk(inputs, {
        ...flags,
        framesDir: shown.framesDir,
        draw: false,
        inferrers: flags.jobs,
        [FAULTS]: flags.loseGpu ? { loseGpu: true } : undefined,
        maxInflightBytes: flags.maxInflightMb === undefined
          ? undefined
          : Math.round(flags.maxInflightMb * 2 ** 20),
        timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
        shard,
        skip,
        skipped,
        tracer,
        onNotice,
        onProgress,
      });
    }
    // A file's records and its status go out in one write, so a killed run leaves whole blocks.
    let block: VxRecord[] = [];
    for await (const record of shown.wrap(records)) {
      block.push(record);
      if ("status" in record) {
        // Records on the terminal the progress line is drawn on: clear it first, and draw it
        // again only once they are written (progress arriving meanwhile would share their line).
        if (tty && toTerminal) {
          writing = true;
          Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
        }
        try {
          await sink.writeAll(block);
        } finally {
          writing = false;
        }
        block = [];
        if (record.status === "error") {
          // One line per failed file, as `fast` gives, on a line of its own.
          const reason = record.error.startsWith(`${record.file}: `)
            ? record.error.slice(record.file.length + 2)
            : record.error;
          failed.push(record.file);
          Deno.stderr.writeSync(
            enc.encode(`${tty ? "\r\x1b[K" : ""}vx: ${record.file}: ${reason}\n`),
          );
        }
        draw();
      }
    }
  } finally {
    sink.close();
    close();
    await shown.cleanup();
    await writeTrace(tracer, flags.debug);
  }
  if (tty && last) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
  const p = last ?? { total: 0, done: 0, failed: 0, keyframes: 0, elapsedMs: 0 };
  summarise(p, { inputs, failed, failedBefore, skip, skipped });
  const allFailed = [...failedBefore, ...failed];
  if (allFailed.length > 0) console.error(`vx bulk: failed: ${allFailed.join(", ")}`);
  return allFailed.length > 0 ? 1 : 0;
}

/** The run's closing lines on stderr: counts and rates, what was left out and why. */
function summarise(
  p: BulkProgress,
  run: {
    inputs: string[];
    failed: string[];
    failedBefore: string[];
    skip: Set<string> | undefined;
    skipped: Map<string, number>;
  },
): void {
  const { inputs, failed, failedBefore, skip, skipped } = run;
  const s = p.elapsedMs / 1000;
  console.error(
    // Failures counted as written: a draw or report failure turns an ok file into an error.
    `vx bulk: ${p.done} files (${p.done - failed.length} ok, ${failed.length} failed), ` +
      `${p.keyframes} keyframes in ${s.toFixed(1)} s ` +
      `(${(p.done / Math.max(s, 1e-3)).toFixed(2)} files/s, ` +
      `${(p.keyframes / Math.max(s, 1e-3)).toFixed(1)} keyframes/s)` +
      (skip?.size ? `, ${skip.size} already done` : "") +
      (failedBefore.length
        ? `, ${failedBefore.length} failed in an earlier run (--retry-failed runs them again)`
        : ""),
  );
  if (skipped.size > 0) {
    const n = [...skipped.values()].reduce((a, b) => a + b, 0);
    const kinds = [...skipped].sort((a, b) => b[1] - a[1]).map(([e, c]) => `${e} ${c}`);
    console.error(
      `vx bulk: ${n} file${n === 1 ? "" : "s"} in the folders left out, not video or pictures ` +
        `by their extension (${kinds.join(", ")}); name a file to take it anyway`,
    );
  }
  if (p.total === 0 && !skip?.size && failedBefore.length === 0) {
    console.error(`vx bulk: no video or picture files in ${inputs.join(", ")}`);
  }
}
