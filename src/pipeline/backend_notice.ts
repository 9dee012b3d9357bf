/**
 * What `fast` and `bulk` say when inference settles on another backend than the one asked
 * for: a fallback in the trace and one line for stderr.
 *
 * @module
 */

import type { InferEvent } from "../tasks/infer_messages.ts";
import type { Tracer } from "./tracer.ts";

/**
 * Reports an inference worker's backend fallback, at set-up (`ready`) or during the run
 * (`fallback`), if it had one: to `tracer`, whose summary then names the backend now used, and
 * as one line to `onNotice` unless it was `auto`'s choice on a machine without a GPU; and a
 * backend warning to `onNotice`. Does nothing otherwise.
 *
 * @example
 * ```ts
 * import { noticeFallback } from "./backend_notice.ts";
 * noticeFallback({ backend: "wasm", fallbackReason: "no WebGPU adapter" }, {
 *   onNotice: (line) => console.error(`vx: ${line}`), // vx: inference on wasm: no WebGPU adapter
 * });
 * ```
 */
export function noticeFallback(
  ev:
    & Pick<Extract<InferEvent, { type: "ready" | "fallback" }>, "backend" | "fallbackReason">
    & { fallbackChosen?: boolean; warning?: string },
  to: { tracer?: Tracer; onNotice?: (line: string) => void },
): void {
  if (ev.warning !== undefined) to.onNotice?.(ev.warning);
  if (ev.fallbackReason === undefined) return;
  to.tracer?.fallback?.("backend", ev.fallbackReason);
  to.tracer?.meta({ backend: ev.backend });
  // `auto` on a machine without a GPU: wasm is the choice, not a failure; the trace says why.
  if (!ev.fallbackChosen) to.onNotice?.(`inference on ${ev.backend}: ${ev.fallbackReason}`);
}
