/**
 * The message protocol between the main thread and the draw worker (`workers/draw.ts`).
 *
 * @module
 */

import type { DrawPlan } from "./plan.ts";

/** Main thread → draw worker: draw `plan` on the JPEG at `path`, replacing it. */
export type DrawCommand = { type: "draw"; id: number; path: string; plan: DrawPlan };

/** Draw worker → main thread: done (ffmpeg's `ms`), or why not. */
export type DrawEvent =
  | { type: "drawn"; id: number; ms: number }
  | { type: "error"; id: number; message: string };
