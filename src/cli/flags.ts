/**
 * The command line's flags: their parsers, the options every task-running command takes, the
 * typed values commander hands each command, and the checks that need no file.
 *
 * @module
 */

import { parseSelection, type Selection, SelectionError } from "../decode/selection.ts";
import { InvalidArgumentError, Option } from "npm:commander@14.0.2";
import type { Command } from "npm:commander@14.0.2";
import { UsageError, VxError } from "../errors.ts";
import { readModelShapes } from "../infer/onnx_header.ts";
import { tasksFitting } from "../tasks/from_model.ts";
import { resolveModel } from "../input/model_cache.ts";
import type { TaskDefinition, TaskFlag, TaskOptions } from "../tasks/task.ts";
import { builtInLabels, TASK_NAMES, TASKS, tasksReading } from "../tasks/registry.ts";
import { BACKEND_CHOICES, type BackendChoice } from "../infer/backend.ts";
import type { ExistingOutput } from "../record_sink.ts";

/** Where `--debug` alone writes its trace. */
export const DEFAULT_TRACE = "vx-trace.json";

/** A parser for a number from `min` to `max`, for commander. */
export function number(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A parser for a whole number from `min` to `max`, for commander. */
export function integer(min: number, max: number) {
  const n = number(min, max);
  return (value: string) => {
    const v = n(value);
    if (!Number.isInteger(v)) throw new InvalidArgumentError(`expected a whole number`);
    return v;
  };
}

/** `--select every:2` → its {@linkcode Selection}. */
function selection(value: string): Selection {
  try {
    return parseSelection(value);
  } catch (e) {
    if (e instanceof SelectionError) throw new InvalidArgumentError(e.message);
    throw e;
  }
}

/** `--size 192x48` → `[192, 48]`. */
function size(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InvalidArgumentError("expected WIDTHxHEIGHT, e.g. 224x224");
  }
  return [Number(m[1]), Number(m[2])];
}

/** `--model-sha256`: 64 hex digits. */
function sha256(value: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new InvalidArgumentError("expected a SHA-256 in hex (64 digits)");
  }
  return value.toLowerCase();
}

/** `--mean 0.485,0.456,0.406` → three numbers. */
function three(value: string): number[] {
  const v = value.split(",").map((x) => (x.trim() === "" ? NaN : Number(x)));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) {
    throw new InvalidArgumentError("expected three numbers, e.g. 0.5,0.5,0.5");
  }
  return v;
}

/**
 * The flags only some tasks read, as the command line spells them; which tasks read each is the
 * registry's (`tasks/registry.ts`). Given to another task, a flag would be ignored without a
 * word, so it is refused.
 */
const TASK_FLAGS: Readonly<Record<TaskFlag, string>> = {
  model: "--model",
  threads: "--threads",
  labels: "--labels",
  score: "--score",
  top: "--top",
  raw: "--raw",
  maxValues: "--max-values",
  size: "--size",
  fit: "--fit",
  mean: "--mean",
  std: "--std",
  channels: "--channels",
  range: "--range",
  layout: "--layout",
  draw: "--draw",
};

/**
 * Everything about the task that comes before any file: a model URL fetched into the cache (or
 * taken from it) and `--model-sha256` checked, the task read from the model when not given, and
 * the flags checked against it. Resolves to where the task came from, for `--debug`.
 */
export async function prepareTask(flags: FastFlags): Promise<"flag" | "model" | "default"> {
  if (flags.modelSha256 !== undefined && flags.model === undefined) {
    throw new UsageError("--model-sha256 checks --model: give one");
  }
  if (flags.model !== undefined) {
    flags.model = await resolveModel(flags.model, {
      sha256: flags.modelSha256,
      cacheDir: flags.modelCache,
    });
  }
  const from = await resolveTask(flags);
  checkTaskFlags(flags);
  return from;
}

/**
 * Sets `flags.task` when `--task` was not given: the one task `--model`'s declared outputs fit
 * (`src/tasks/from_model.ts`), else `ocr` without a model. Throws a {@linkcode UsageError} naming
 * the model and the candidates when its outputs fit no task or several, and a `VxError` when it
 * cannot be read. Resolves to where the task came from, for `--debug`.
 */
export async function resolveTask(flags: FastFlags): Promise<"flag" | "model" | "default"> {
  if (flags.task !== undefined) return "flag";
  if (flags.model === undefined) {
    flags.task = "ocr";
    return "default";
  }
  let outputs;
  try {
    outputs = readModelShapes(await Deno.readFile(flags.model)).outputs;
  } catch (e) {
    throw new VxError(flags.model, `cannot read model: ${e instanceof Error ? e.message : e}`);
  }
  const fits = tasksFitting(outputs);
  const shapes = outputs.map((o) => `[${o.shape.join(",")}]`).join(", ");
  if (fits.length === 1) {
    flags.task = fits[0];
    return "model";
  }
  throw new UsageError(
    fits.length === 0
      ? `${flags.model}: its outputs ${shapes} fit no task vx reads them for: give --task ` +
        "(--task tensor writes any model's outputs)"
      : `${flags.model}: its outputs ${shapes} fit ${
        fits.map((t) => `--task ${t}`).join(" and ")
      }: say which`,
  );
}

/** The checks of task and flags that need no file: a model where one is needed, no stray flag. */
export function checkTaskFlags(flags: FastFlags): void {
  const task: TaskDefinition = TASKS[flags.task];
  const builtIn = flags.labels === undefined ? undefined : builtInLabels(flags.labels);
  if (builtIn !== undefined && builtIn !== flags.task && task.flags.includes("labels")) {
    throw new UsageError(
      `--labels ${flags.labels} is built in for --task ${builtIn} only; ` +
        `give --task ${flags.task} a file with one label a line`,
    );
  }
  if (task.needsModel && !flags.model) {
    throw new UsageError(`--task ${flags.task} needs --model PATH`);
  }
  for (const [key, flag] of Object.entries(TASK_FLAGS) as [TaskFlag, string][]) {
    if (flags[key] !== undefined && !task.flags.includes(key)) {
      throw new UsageError(
        `${flag} applies to --task ${tasksReading(key).join("|")}, not ${flags.task}`,
      );
    }
  }
  if (flags.draw && flags.framesDir === undefined) {
    throw new UsageError("--draw needs --frames-dir DIR: it draws on the keyframes' JPEGs");
  }
}

/** The environment variable that means `--server`. */
export const SERVER_ENV = "VX_SERVER";

/**
 * The server a run goes to: `--server`, else `VX_SERVER` when the run may read it (a run under
 * narrow permissions without `--allow-env=VX_SERVER` is local and asks for nothing).
 */
export function serverFlag(flags: { server?: string }): string | undefined {
  if (flags.server !== undefined) return flags.server;
  const env = Deno.permissions.querySync({ name: "env", variable: SERVER_ENV });
  return env.state === "granted" ? Deno.env.get(SERVER_ENV) || undefined : undefined;
}

/**
 * Flags that a run through a server cannot honour, and why: they would act on the server's
 * side (files written there, its pool) rather than here.
 */
const LOCAL_ONLY: [keyof BulkFlags | "sequential" | "decodeFirst", string, string][] = [
  ["framesDir", "--frames-dir", "the keyframes' JPEGs would be written on the server's side"],
  ["draw", "--draw", "it draws on JPEGs written on the server's side"],
  ["report", "--report", "the report needs the keyframes' JPEGs, written on the server's side"],
  ["debug", "--debug", "the trace is of the server's engine (vx serve --debug traces it)"],
  ["decodeFirst", "--decode-first", "it is a baseline of a local run"],
  ["jobs", "--jobs", "the server's pool is set when it starts (vx serve --jobs)"],
  ["maxInflightMb", "--max-inflight-mb", "the server's bound is set when it starts"],
  ["loseGpu", "--lose-gpu", "it is a test of a local run"],
];

/** Refuses, as a usage error saying why, a flag that a run through a server cannot honour. */
export function checkServerFlags(
  flags: BulkFlags & { sequential?: boolean; decodeFirst?: boolean },
): void {
  for (const [key, flag, why] of LOCAL_ONLY) {
    if (flags[key] !== undefined && flags[key] !== false) {
      throw new UsageError(`${flag} does not apply with --server: ${why}; run without --server`);
    }
  }
}

/** What `--out` may do to a file that already holds results: see `src/record_sink.ts`. */
export function outputMode(flags: { resume?: boolean; overwrite?: boolean }): ExistingOutput {
  return flags.resume ? "append" : flags.overwrite ? "overwrite" : "refuse";
}

/** Adds the options of every command that runs a task (`fast`, `bulk`, `serve`) to `cmd`. */
export function taskOptions(cmd: Command, options: { pictures?: boolean } = {}): Command {
  cmd
    .addOption(
      new Option(
        "--task <task>",
        "what to run on each keyframe (default: read from --model's outputs, else ocr)",
      )
        .choices(TASK_NAMES),
    )
    .option(
      "--model <path|url>",
      "ONNX model (detect: YOLOX or Ultralytics; faces: UltraFace; classify, embed, tensor: any); " +
        "an http(s) URL is downloaded once into the model cache",
    )
    .option("--model-sha256 <hex>", "refuse a model whose content has another SHA-256", sha256)
    .option(
      "--model-cache <dir>",
      "where models by URL are kept (default $XDG_CACHE_HOME/vx/models or ~/.cache/vx/models)",
    )
    .option(
      "--labels <name|path>",
      "class labels: coco (detect), imagenet (classify), or a file with one label a line",
    )
    .option("--score <n>", "minimum score to report", number(0, 1))
    .option("--top <n>", "classify: classes to report (default 5)", integer(1, 1e6))
    .option("--raw", "embed: keep the model's values (default: L2-normalised)")
    .option("--max-values <n>", "tensor: at most this many values per output", integer(0, 1e9))
    .option(
      "--size <WxH>",
      "model input size, needed when the model's is dynamic; detect: pins one input " +
        "(default: the stride-32 rectangle that holds the keyframe)",
      size,
    )
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
    .option(
      "--stream <n>",
      "the video stream to decode, by index (vx probe lists them)",
      integer(0, 1e6),
    );
  // Where a run writes files of its own: not `serve`, whose files would land on its side.
  if (options.pictures !== false) {
    cmd.option(
      "--select <frames>",
      "which frames: keyframes (default), every:S, at:T1,T2,…, scenes[:TH], scenes+keyframes[:TH]",
      selection,
    );
    cmd.option("--frames-dir <dir>", "also write each keyframe as a JPEG here")
      .option("--draw", "with --frames-dir: draw each keyframe's results on its JPEG")
      .option(
        "--report <file.html>",
        "also write a one-file HTML report of the keyframes and results",
      );
  }
  // For tests and bench/exit_stress.ts: each inference worker destroys its WebGPU device once
  // set up, so the lost-device path runs from the CLI as it does on a GPU reset.
  return cmd.addOption(new Option("--lose-gpu").hideHelp());
}

/** What `fast` is given: the task's options (as the library takes them) and the run's. */
export interface FastFlags extends TaskOptions {
  threads?: number;
  framesDir?: string;
  draw?: boolean;
  report?: string;
  backend?: BackendChoice;
  loseGpu?: boolean;
  out?: string;
  /** Replace a non-empty `--out`. */
  overwrite?: boolean;
  sequential?: boolean;
  decodeFirst?: boolean;
  /** Trace path: `--debug` alone becomes `--debug=vx-trace.json` (see `debugDefault`). */
  debug?: string;
  timeout?: number;
  stream?: number;
  select?: Selection;
  jobs?: number;
  /** `unix:PATH` or `http://HOST:PORT`: run on that vx server instead of here. */
  server?: string;
  /** The most a pipe input (`-`) may hold, in MiB. */
  maxSpoolMb?: number;
  /** The model's expected SHA-256, and where models by URL are cached. */
  modelSha256?: string;
  modelCache?: string;
}

export interface BulkFlags extends Omit<FastFlags, "sequential" | "decodeFirst"> {
  jobs?: number;
  maxInflightMb?: number;
  resume?: boolean;
  /** With `resume`: run again the files whose latest status is an error. */
  retryFailed?: boolean;
  shard?: string;
}

export interface ServeFlags extends Omit<FastFlags, "sequential" | "decodeFirst" | "out"> {
  host: string;
  port: number;
  /** Listen on this Unix domain socket instead of TCP. */
  socket?: string;
  /** Directories whose models requests may name (repeatable). */
  models: string[];
  /** Seconds an unused engine stays loaded. */
  keepAlive: number;
  maxEngines: number;
  root?: string;
  maxUploadMb: number;
  queue?: number;
  concurrency?: number;
  grace: number;
  tempDir?: string;
  maxInflightMb?: number;
}

/** `--models A --models B` → `[A, B]`, for commander. */
export function repeated(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * `--debug` takes a path only as `--debug=PATH`: a bare `--debug` becomes
 * `--debug=vx-trace.json`, so `vx fast --debug a.mp4` reads a.mp4 rather than overwriting it.
 */
export function debugDefault(args: string[]): string[] {
  const end = args.includes("--") ? args.indexOf("--") : args.length;
  return args.map((a, i) => i < end && a === "--debug" ? `--debug=${DEFAULT_TRACE}` : a);
}
