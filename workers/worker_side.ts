/**
 * What every worker runs on its own side: its crashes reported as protocol events, and what it
 * knows of its early start (`src/pipeline/early.ts`). The main thread's side of the workers is
 * `src/pipeline/workers.ts`.
 *
 * @module
 */

import type { CrashEvent } from "../src/pipeline/workers.ts";
import { now } from "../src/clock.ts";

/**
 * Run inside a worker: an uncaught error or unhandled rejection (a wasm trap, memory that cannot
 * grow) becomes a {@linkcode CrashEvent} posted to the main thread, once. Left to Deno, the
 * error would also be printed to stderr with its stack; vx reports it itself, as one line naming
 * the file. The worker does not close itself: the main thread ends it, or, if it holds a GPU
 * driver, leaves it idle (see `parked`).
 */
export function reportCrashes(): void {
  const scope = self as unknown as { postMessage(e: CrashEvent): void };
  let told = false;
  const crash = (message: string) => {
    if (told) return;
    told = true;
    scope.postMessage({ type: "crash", message });
  };
  self.addEventListener("error", (e) => {
    e.preventDefault();
    crash(e.message || "uncaught error");
  });
  self.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    const r = e.reason;
    crash(`Uncaught (in promise) ${r instanceof Error ? `${r.name}: ${r.message}` : String(r)}`);
  });
}

/** What a worker knows of its own early start (see {@linkcode earlyStart}). */
export interface EarlyStart {
  /** Whether this worker was started early under the name asked about. */
  early: boolean;
  /**
   * When its set-up began, for its first `init`'s trace span: the worker's own start when it was
   * started early (it set up before being told to), else now. Later calls return now.
   */
  setUpSince(): number;
}

/**
 * Run inside a worker: whether it was started early as `name` (`EARLY_DECODER` or
 * `EARLY_INFERRER` of `early.ts`), and when its set-up began.
 */
export function earlyStart(name: string): EarlyStart {
  const early = (self as { name?: string }).name === name;
  let since: number | undefined = early ? now() : undefined;
  return {
    early,
    setUpSince() {
      const at = since ?? now();
      since = undefined;
      return at;
    },
  };
}
