/**
 * The first decode worker of a `fast` or `bulk` run, and its first inference worker when the task
 * runs a model, started before the rest of the command line is loaded. `cli.ts` imports this
 * module alone, calls {@linkcode startEarly} with the arguments, and only then loads the command
 * line's own modules; meanwhile the decode worker compiles the decoder core, and the inference
 * worker loads onnxruntime-web and compiles its wasm. The scheduler's first workers are these
 * (`workers.ts` takes them); a run that needs none (a usage error, `--help`, a run through a
 * server) never takes them, and as they are unref'd they never hold the process open.
 *
 * Both would otherwise wait for the command line's module graph to load (BENCHMARKS.md, cold
 * start). This module imports nothing statically: whatever it imported would load before the
 * decode worker starts. The task table (`tasks/registry.ts`) is imported once that worker runs.
 *
 * @module
 */

import type { TASKS } from "../tasks/registry.ts";

/** The name an early decode worker is given: it compiles its core before being told to. */
export const EARLY_DECODER = "vx-early-decoder";
/** The name an early inference worker is given: it loads onnxruntime-web before being told to. */
export const EARLY_INFERRER = "vx-early-inferrer";

const DECODER_URL = new URL("../../workers/decode.ts", import.meta.url);
const INFERRER_URL = new URL("../../workers/infer.ts", import.meta.url);

let decoder: Worker | undefined;
let inferrer: Worker | undefined;

/**
 * Deno's `Worker` keeps the process alive while it lives; its private ref/unref method (the
 * one a `node:worker_threads` worker's `unref()` uses) is the only way to let a live worker
 * stay without holding the process open. Deno 2.9.6 is pinned in `deno.json`.
 */
const refMethod = Object.getOwnPropertySymbols(Worker.prototype)
  .find((s) =>
    s.description === undefined &&
    typeof (Worker.prototype as unknown as Record<symbol, unknown>)[s] === "function"
  );

/** Lets `worker` hold the process open (`ref`) or not; false when Deno offers no way. */
export function setRef(worker: Worker, ref: boolean): boolean {
  if (!refMethod) return false;
  (worker as unknown as Record<symbol, (ref: boolean) => void>)[refMethod](ref);
  return true;
}

/** Whether the run `args` describe decodes here: `fast` or `bulk`, not through a server. */
function decodesHere(args: readonly string[]): boolean {
  const command = args[0];
  if (command !== "fast" && command !== "bulk") return false;
  if (
    args.some((a) => a === "--help" || a === "-h" || a === "--server" || a.startsWith("--server="))
  ) {
    return false;
  }
  // VX_SERVER sends the run to a server; read it only where reading asks no question.
  const env = Deno.permissions.querySync({ name: "env", variable: "VX_SERVER" });
  return env.state !== "granted" || !Deno.env.get("VX_SERVER");
}

/**
 * Whether the run `args` describe runs a model, as the registry says of its task: without
 * `--task`, the task is OCR or the one `--model` fits, and each runs a model. An unknown task
 * gets no worker (the command line refuses it).
 */
function runsModel(args: readonly string[], tasks: typeof TASKS): boolean {
  const at = args.indexOf("--task");
  const task = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith("--task="))?.slice(7);
  if (task === undefined) return true;
  return Object.hasOwn(tasks, task) && tasks[task as keyof typeof TASKS].runsModel !== false;
}

/** Starts a worker that does not hold the process open; undefined where Deno cannot do that. */
function unrefWorker(url: URL, name: string): Worker | undefined {
  const worker = new Worker(url, { type: "module", name });
  if (setRef(worker, false)) return worker;
  worker.terminate();
}

/** Set once the early inference worker was started, or the scheduler asked for a worker first. */
let inferrerDecided = false;

/**
 * Starts the early workers when `args` describe a run that decodes here: the decode worker at
 * once, the inference worker once the registry (~2.5 ms to load, here) says the task runs a model.
 */
export function startEarly(args: readonly string[]): void {
  if (decoder || !decodesHere(args)) return;
  decoder = unrefWorker(DECODER_URL, EARLY_DECODER);
  import("../tasks/registry.ts").then(({ TASKS }) => {
    if (inferrerDecided) return;
    inferrerDecided = true;
    if (runsModel(args, TASKS)) inferrer = unrefWorker(INFERRER_URL, EARLY_INFERRER);
  });
}

/** Takes `worker` for the scheduler: it holds the process open from now on. */
function take(worker: Worker | undefined, url: URL): Worker {
  if (!worker) return new Worker(url, { type: "module" });
  setRef(worker, true);
  return worker;
}

/** A new decode worker: the early one the first time, when there is one. */
export function newDecoder(): Worker {
  const worker = decoder;
  decoder = undefined;
  return take(worker, DECODER_URL);
}

/** A new inference worker: the early one the first time, when there is one. */
export function newInferrer(): Worker {
  inferrerDecided = true;
  const worker = inferrer;
  inferrer = undefined;
  return take(worker, INFERRER_URL);
}
