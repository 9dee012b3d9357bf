/**
 * The vx command line. It only parses arguments and calls `mod.ts`.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  engineScore,
  extract,
  extractBulk,
  probeFile,
  serve,
  TraceRecorder,
  UsageError,
  VERSION,
  VxError,
} from "./mod.ts";
import { openSink } from "./src/output.ts";
import { drawRecords } from "./src/draw/drawer.ts";
import { reportRecords } from "./src/report/html.ts";
import type { VxRecord } from "./src/records.ts";
import { workersSettled } from "./src/pipeline/workers.ts";
import { parseShard } from "./src/pipeline/inputs.ts";
import { prepareResume } from "./src/pipeline/resume.ts";
import type { BulkProgress } from "./src/pipeline/bulk.ts";
import { runDemo } from "./src/demo.ts";
import type { PreprocessOptions, TaskName } from "./src/tasks/task.ts";
import { BACKEND_CHOICES, type BackendChoice } from "./src/infer/backend.ts";

/** Where `--debug` alone writes its trace. */
const DEFAULT_TRACE = "vx-trace.json";

function number(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    }
    return n;
  };
}

function integer(min: number, max: number) {
  const n = number(min, max);
  return (value: string) => {
    const v = n(value);
    if (!Number.isInteger(v)) throw new InvalidArgumentError(`expected a whole number`);
    return v;
  };
}

/** `--size 192x48` → `[192, 48]`. */
function size(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InvalidArgumentError("expected WIDTHxHEIGHT, e.g. 224x224");
  }
  return [Number(m[1]), Number(m[2])];
}

/** `--mean 0.485,0.456,0.406` → three numbers. */
function three(value: string): number[] {
  const v = value.split(",").map((x) => (x.trim() === "" ? NaN : Number(x)));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) {
    throw new InvalidArgumentError("expected three numbers, e.g. 0.5,0.5,0.5");
  }
  return v;
}

/** Tasks that run a model the user gives. */
const MODEL_TASKS: readonly TaskName[] = ["detect", "classify", "embed", "faces", "tensor"];

const VISION_TASKS: readonly TaskName[] = ["classify", "embed", "faces", "tensor"];
/** Tasks whose results are places in the picture, or classes: what `--draw` can draw. */
const DRAW_TASKS: readonly TaskName[] = ["ocr", "detect", "faces", "classify"];
/** Flags only some tasks read: given to another, they would be ignored without a word. */
const TASK_FLAGS: [keyof FastFlags, string, readonly TaskName[]][] = [
  ["top", "--top", ["classify"]],
  ["raw", "--raw", ["embed"]],
  ["maxValues", "--max-values", ["tensor"]],
  ["size", "--size", VISION_TASKS],
  ["fit", "--fit", VISION_TASKS],
  ["mean", "--mean", VISION_TASKS],
  ["std", "--std", VISION_TASKS],
  ["channels", "--channels", VISION_TASKS],
  ["range", "--range", VISION_TASKS],
  ["layout", "--layout", VISION_TASKS],
  ["draw", "--draw", DRAW_TASKS],
];

/** The checks of task and flags that need no file: a model where one is needed, no stray flag. */
function checkTaskFlags(flags: FastFlags): void {
  if (MODEL_TASKS.includes(flags.task) && !flags.model) {
    throw new UsageError(`--task ${flags.task} needs --model PATH`);
  }
  for (const [key, flag, tasks] of TASK_FLAGS) {
    if (flags[key] !== undefined && !tasks.includes(flags.task)) {
      throw new UsageError(`${flag} applies to --task ${tasks.join("|")}, not ${flags.task}`);
    }
  }
  if (flags.draw && flags.framesDir === undefined) {
    throw new UsageError("--draw needs --frames-dir DIR: it draws on the keyframes' JPEGs");
  }
}

/**
 * `--report` and `--draw` around a run's records. The report reads each JPEG before it is drawn
 * on (the report draws results as SVG over the plain picture). Without `--frames-dir`, the
 * report's JPEGs go to a temporary directory, each deleted once inlined; `cleanup` removes it.
 */
async function presentation(flags: FastFlags, title: string) {
  const temp = flags.report !== undefined && flags.framesDir === undefined
    ? await Deno.makeTempDir({ prefix: "vx-report-" })
    : undefined;
  return {
    framesDir: flags.framesDir ?? temp,
    wrap<R extends VxRecord>(records: AsyncIterable<R>): AsyncIterable<R> {
      if (flags.report !== undefined) {
        records = reportRecords(records, flags.report, {
          title,
          consumeImages: temp !== undefined,
        });
      }
      return flags.draw ? drawRecords(records, flags) : records;
    },
    cleanup: async () => {
      if (temp !== undefined) await Deno.remove(temp, { recursive: true }).catch(() => {});
    },
  };
}

/** The run as the report's title shows it. */
function runTitle(command: string, inputs: string[], flags: FastFlags): string {
  return [
    `vx ${command}`,
    ...inputs,
    `--task ${flags.task}`,
    flags.model && `--model ${flags.model}`,
  ]
    .filter(Boolean).join(" ");
}

function taskOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--task <task>", "what to run on each keyframe")
        .choices(["ocr", "detect", "keyframes", "classify", "embed", "faces", "tensor"])
        .default("ocr"),
    )
    .option(
      "--model <path>",
      "ONNX model (detect: YOLOX or Ultralytics; faces: UltraFace; classify, embed, tensor: any)",
    )
    .option(
      "--labels <name|path>",
      "class labels: coco (detect), imagenet (classify), or a file with one label a line",
    )
    .option("--score <n>", "minimum score to report", number(0, 1))
    .option("--top <n>", "classify: classes to report (default 5)", integer(1, 1e6))
    .option("--raw", "embed: keep the model's values (default: L2-normalised)")
    .option("--max-values <n>", "tensor: at most this many values per output", integer(0, 1e9))
    .option("--size <WxH>", "model input size, needed when the model's is dynamic", size)
    .addOption(
      new Option("--fit <fit>", "how a keyframe fits the model input").choices([
        "letterbox",
        "stretch",
        "crop",
      ]),
    )
    .option("--mean <a,b,c>", "per-channel mean, in the model's channel order and --range", three)
    .option("--std <a,b,c>", "per-channel std, in the model's channel order and --range", three)
    .addOption(new Option("--channels <order>", "channel order").choices(["rgb", "bgr"]))
    .addOption(
      new Option("--range <range>", "pixel values before mean/std").choices(["0-1", "0-255"]),
    )
    .addOption(new Option("--layout <layout>", "input tensor layout").choices(["nchw", "nhwc"]))
    .option("--threads <n>", "inference threads", number(1, 64))
    .addOption(
      new Option("--backend <backend>", "inference: auto takes WebGPU on a hardware GPU")
        .choices(BACKEND_CHOICES)
        .default("auto"),
    )
    .option("--frames-dir <dir>", "also write each keyframe as a JPEG here")
    .option("--draw", "with --frames-dir: draw each keyframe's results on its JPEG")
    .option(
      "--report <file.html>",
      "also write a one-file HTML report of the keyframes and results",
    )
    .option(
      "--stream <n>",
      "the video stream to decode, by index (vx probe lists them)",
      integer(0, 1e6),
    )
    // For tests and bench/exit_stress.ts: each inference worker destroys its WebGPU device once
    // set up, so the lost-device path runs from the CLI as it does on a GPU reset.
    .addOption(new Option("--lose-gpu").hideHelp());
}

interface FastFlags extends PreprocessOptions {
  task: TaskName;
  model?: string;
  labels?: string;
  score?: number;
  top?: number;
  raw?: boolean;
  maxValues?: number;
  threads?: number;
  framesDir?: string;
  draw?: boolean;
  report?: string;
  backend?: BackendChoice;
  loseGpu?: boolean;
  out?: string;
  sequential?: boolean;
  decodeFirst?: boolean;
  /** Trace path: `--debug` alone becomes `--debug=vx-trace.json` (see `debugDefault`). */
  debug?: string;
  timeout?: number;
  stream?: number;
  jobs?: number;
}

/**
 * Writes the `--debug` trace, after a failed run too. A trace that cannot be written is reported
 * on stderr, not thrown, so it never hides the run's own error.
 */
async function writeTrace(tracer: TraceRecorder | undefined, path: string | undefined) {
  if (!tracer || path === undefined) return;
  try {
    await tracer.write(path);
    console.error(`vx: trace written to ${path} (open it in https://ui.perfetto.dev)`);
  } catch (e) {
    console.error(`vx: cannot write the trace to ${path}: ${e instanceof Error ? e.message : e}`);
  }
}

/** A backend fallback, as one line on stderr (stdout carries only records). */
const onNotice = (line: string) => console.error(`vx: ${line}`);

async function runFast(input: string, flags: FastFlags): Promise<void> {
  checkTaskFlags(flags);
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  const sink = await openSink(flags.out);
  const shown = await presentation(flags, runTitle("fast", [input], flags));
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
    for await (const record of shown.wrap(records)) await sink.write(record);
  } finally {
    sink.close();
    await shown.cleanup();
    await writeTrace(tracer, flags.debug);
  }
}

interface BulkFlags extends Omit<FastFlags, "sequential" | "decodeFirst"> {
  jobs?: number;
  maxInflightMb?: number;
  resume?: boolean;
  shard?: string;
}

function progressLine(p: BulkProgress): string {
  const s = p.elapsedMs / 1000;
  const rate = p.done / Math.max(s, 1e-3);
  const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
  return `${p.done}/${p.total} files (${p.failed} failed), ${p.keyframes} keyframes, ` +
    `${(p.keyframes / Math.max(s, 1e-3)).toFixed(1)} keyframes/s, ` +
    `ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"}`;
}

async function runBulk(inputs: string[], flags: BulkFlags): Promise<number> {
  checkTaskFlags(flags);
  if (flags.resume && !flags.out) throw new UsageError("--resume needs --out FILE");
  const shard = flags.shard === undefined ? undefined : parseShard(flags.shard);
  const skip = flags.resume ? await prepareResume(flags.out!) : undefined;
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  const sink = await openSink(flags.out, flags.resume);
  const shown = await presentation(flags, runTitle("bulk", inputs, flags));
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let last: BulkProgress | undefined;
  try {
    const records = extractBulk(inputs, {
      ...flags,
      framesDir: shown.framesDir,
      draw: false,
      inferrers: flags.jobs,
      maxInflightBytes: flags.maxInflightMb === undefined
        ? undefined
        : Math.round(flags.maxInflightMb * 2 ** 20),
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      shard,
      skip,
      tracer,
      onNotice,
      onProgress: (p) => {
        last = p;
        if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[K${progressLine(p)}`));
      },
    });
    // A file's records and its status go out in one write, so a killed run leaves whole blocks.
    let block: Parameters<typeof sink.write>[0][] = [];
    for await (const record of shown.wrap(records)) {
      block.push(record);
      if ("status" in record) {
        await sink.writeAll(block);
        block = [];
      }
    }
  } finally {
    sink.close();
    await shown.cleanup();
    await writeTrace(tracer, flags.debug);
  }
  if (tty && last) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
  const p = last ?? { total: 0, done: 0, failed: 0, keyframes: 0, elapsedMs: 0 };
  const s = p.elapsedMs / 1000;
  console.error(
    `vx bulk: ${p.done} files (${p.done - p.failed} ok, ${p.failed} failed), ` +
      `${p.keyframes} keyframes in ${s.toFixed(1)} s ` +
      `(${(p.done / Math.max(s, 1e-3)).toFixed(2)} files/s, ` +
      `${(p.keyframes / Math.max(s, 1e-3)).toFixed(1)} keyframes/s)` +
      (skip?.size ? `, ${skip.size} already done` : ""),
  );
  return p.failed > 0 ? 1 : 0;
}

interface ServeFlags extends Omit<FastFlags, "sequential" | "decodeFirst" | "out"> {
  host: string;
  port: number;
  root?: string;
  maxUploadMb: number;
  queue?: number;
  concurrency?: number;
  grace: number;
  tempDir?: string;
  maxInflightMb?: number;
}

async function runServe(flags: ServeFlags): Promise<number> {
  checkTaskFlags(flags);
  // A keyframe's JPEG would be named by a server path and left on the server's disk.
  if (flags.framesDir !== undefined) throw new UsageError("--frames-dir does not apply to serve");
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  try {
    return await serve({
      ...flags,
      hostname: flags.host,
      inferrers: flags.jobs,
      maxInflightBytes: flags.maxInflightMb === undefined
        ? undefined
        : Math.round(flags.maxInflightMb * 2 ** 20),
      maxUploadBytes: Math.round(flags.maxUploadMb * 2 ** 20),
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      graceMs: flags.grace * 1000,
      score: engineScore(flags.task, flags.score),
      tracer,
      onNotice,
    });
  } finally {
    await writeTrace(tracer, flags.debug);
  }
}

function program(onExit: (code: number) => void): Command {
  const prog = new Command("vx")
    .description("Keyframes of video files through ONNX models, entirely in WebAssembly.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) });
  taskOptions(
    prog.command("fast")
      .description("one file, lowest latency: records stream out as keyframes decode")
      .argument("<input>", "video file"),
  )
    .option("--out <path>", "write JSONL records here instead of stdout")
    .option("--sequential", "decode all keyframes first, then infer (baseline)")
    .option(
      "--decode-first",
      "decode all keyframes first, then infer them on every worker (what streaming buys)",
    )
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option(
      "--timeout <s>",
      "give up on the file after this many seconds (default 300)",
      number(0.01, 1e6),
    )
    .option(
      "--debug [path]",
      `write a JSON trace of the run (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action((input: string, flags: FastFlags) => runFast(input, flags));
  taskOptions(
    prog.command("bulk")
      .description("many files, most work per core: a worker pool with bounded memory")
      .argument("<inputs...>", "files, directories (recursive) or @list.txt"),
  )
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option("--max-inflight-mb <m>", "bound on decoded frames awaiting inference", number(1, 1e6))
    .option("--out <path>", "write JSONL records here instead of stdout")
    .option("--resume", "with --out: skip files that already have a status record")
    .option("--shard <i/n>", "only the i-th of n deterministic shards of the inputs")
    .option("--timeout <s>", "per-file watchdog in seconds (default 300)", number(0.01, 1e6))
    .option(
      "--debug [path]",
      `write a JSON trace of the run (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action(async (inputs: string[], flags: BulkFlags) => onExit(await runBulk(inputs, flags)));
  taskOptions(
    prog.command("serve")
      .description("the warm engine behind HTTP: POST /extract, GET /healthz, GET /metrics"),
  )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free one)", integer(0, 65535), 8080)
    .option("--root <dir>", '{"path"} requests are confined to this directory (default: .)')
    .option("--max-upload-mb <m>", "uploads beyond this get 413", number(0.001, 1e7), 2048)
    .option(
      "--queue <n>",
      "requests that may wait for a slot; beyond, 503 (default 32)",
      integer(0, 1e6),
    )
    .option("--concurrency <n>", "requests running at once (default 2)", integer(1, 1e4))
    .option(
      "--grace <s>",
      "on SIGTERM/SIGINT, time the requests under way get",
      number(0, 86400),
      30,
    )
    .option("--temp-dir <dir>", "where uploads are spooled (default: a fresh system temp dir)")
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option("--max-inflight-mb <m>", "bound on decoded frames awaiting inference", number(1, 1e6))
    .option("--timeout <s>", "per-file watchdog in seconds (default 300)", number(0.01, 1e6))
    .option(
      "--debug [path]",
      `write a JSON trace of the server's life at exit (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action(async (flags: ServeFlags) => onExit(await runServe(flags)));
  prog.command("probe")
    .description("what vx sees before decoding: container, streams, keyframes (demuxer only)")
    .argument("<input>", "video file")
    .option("--stream <n>", "list the keyframes of this video stream", integer(0, 1e6))
    .action(async (input: string, flags: { stream?: number }) => {
      const info = await probeFile(input, flags.stream);
      console.log(JSON.stringify({ file: input, ...info }));
    });
  prog.command("demo")
    .description("make a sample video with burned-in text and run fast OCR on it")
    .option("--report <file.html>", "also write the run's HTML report")
    .action((flags: { report?: string }) => runDemo(flags));
  return prog;
}

/**
 * `--debug` takes a path only as `--debug=PATH`: a bare `--debug` becomes
 * `--debug=vx-trace.json`, so `vx fast --debug a.mp4` reads a.mp4 rather than overwriting it.
 */
function debugDefault(args: string[]): string[] {
  const end = args.includes("--") ? args.indexOf("--") : args.length;
  return args.map((a, i) => i < end && a === "--debug" ? `--debug=${DEFAULT_TRACE}` : a);
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  let code = 0;
  try {
    await program((c) => (code = c)).parseAsync(debugDefault(args), { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`vx: ${e.message}`);
      return 2;
    }
    if (e instanceof VxError) {
      console.error(`vx: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.BrokenPipe) {
      // Whoever read stdout went away (`vx fast a.mp4 | head -3`): it had what it wanted. The
      // work left was cancelled when the records stopped being taken; nothing to report.
      return 0;
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      // Deno says: Requires write access to "<path>", run again with the --allow-write flag
      const m = /Requires (\w+) access to "([^"]+)"/.exec(e.message);
      console.error(
        m
          ? `vx: ${m[2]}: ${m[1]} access not granted (deno run --allow-${m[1]}=...)`
          : `vx: ${e.message}`,
      );
      return 1;
    }
    console.error(`vx: internal error: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  // GPU workers park after their run (src/pipeline/workers.ts): exit once none is busy.
  await workersSettled();
  Deno.exit(code);
}
