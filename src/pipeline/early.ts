/**
 * The decode worker of a `fast` or `bulk` run, started before the rest of the command line is
 * loaded. `cli.ts` imports this module alone, calls {@linkcode startEarly} with the arguments,
 * and only then loads the command line's own modules; the worker meanwhile loads its modules and
 * compiles the ffmpeg core on the other core. The scheduler's first decoder is this worker
 * (`workers.ts` takes it); a run that needs none (a usage error, `--help`, a run through a
 * server) never takes it, and as it is unref'd it never holds the process open.
 *
 * Measured on the 2-core bench machine (2026-11-30, `bench/keyframes.ts`'s 720p cold run):
 * Deno loads the command line's module graph in ~150 ms and the scheduler then spawns its decoder
 * ~130 ms after the run starts; both now overlap the worker's set-up.
 *
 * This module imports nothing: whatever it imported would load before the worker starts.
 *
 * @module
 */

/** The name an early decode worker is given: it compiles its core before being told to. */
export const EARLY_DECODER = "vx-early-decoder";

const DECODER_URL = new URL("../../workers/decode.ts", import.meta.url);

let early: Worker | undefined;

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
export function decodesHere(args: readonly string[]): boolean {
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

/** Starts the early decode worker when `args` describe a run that decodes here. */
export function startEarly(args: readonly string[]): void {
  if (early || !decodesHere(args)) return;
  const worker = new Worker(DECODER_URL, { type: "module", name: EARLY_DECODER });
  // Until the scheduler takes it, it must not keep a run that needs no decoder alive.
  if (!setRef(worker, false)) return worker.terminate();
  early = worker;
}

/** A new decode worker: the early one the first time, when there is one. */
export function newDecoder(): Worker {
  const worker = early;
  early = undefined;
  if (!worker) return new Worker(DECODER_URL, { type: "module" });
  setRef(worker, true);
  return worker;
}
