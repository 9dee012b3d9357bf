/**
 * Which frames of a video become records (`--select`): its keyframes (the default), one every
 * S seconds, the frames shown at given times, or the first frame of each shot.
 *
 * Times are seconds from the first frame's time. "The frame shown at t" is the frame with the
 * greatest pts ≤ t: what a player shows at t.
 *
 * @module
 */

/** ffmpeg's `select='gt(scene,0.3)'` threshold, the one most scripts use; see BENCHMARKS.md. */
export const DEFAULT_SCENE_THRESHOLD = 0.3;

/** A selection of frames; see {@linkcode parseSelection}. */
export type Selection =
  | { kind: "keyframes" }
  | { kind: "every"; seconds: number }
  | { kind: "at"; times: number[] }
  | { kind: "scenes"; threshold: number; keyframes: boolean };

/** Why a record's frame was selected. */
export type SelectedWhy = "keyframe" | "time" | "scene" | "first";

/** A selection that cannot be parsed; the message says why. */
export class SelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelectionError";
  }
}

/**
 * Parses `--select`: `keyframes`, `every:S`, `at:T1,T2,…` (seconds, `mm:ss.ms` or
 * `hh:mm:ss.ms`), `scenes[:THRESHOLD]` or `scenes+keyframes[:THRESHOLD]`. Throws
 * {@linkcode SelectionError} naming what is wrong.
 *
 * @example
 * ```ts
 * import { parseSelection } from "./selection.ts";
 * parseSelection("every:2"); // { kind: "every", seconds: 2 }
 * parseSelection("at:1.5,0:01:00"); // { kind: "at", times: [1.5, 60] }
 * ```
 */
export function parseSelection(text: string): Selection {
  const [head, ...rest] = text.trim().split(":");
  const arg = rest.join(":");
  switch (head) {
    case "keyframes":
      if (arg !== "") throw new SelectionError(`keyframes takes no value (got "${text}")`);
      return { kind: "keyframes" };
    case "every": {
      const seconds = Number(arg);
      if (arg === "" || !Number.isFinite(seconds) || seconds <= 0) {
        throw new SelectionError(`every:S needs a number of seconds above 0 (got "${text}")`);
      }
      return { kind: "every", seconds };
    }
    case "at": {
      const parts = arg.split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (parts.length === 0) {
        throw new SelectionError(`at: needs one or more times (got "${text}")`);
      }
      const times = [...new Set(parts.map(parseTime))].sort((a, b) => a - b);
      return { kind: "at", times };
    }
    case "scenes":
    case "scenes+keyframes": {
      const threshold = arg === "" ? DEFAULT_SCENE_THRESHOLD : Number(arg);
      if (!Number.isFinite(threshold) || threshold <= 0 || threshold >= 1) {
        throw new SelectionError(
          `${head}:THRESHOLD needs a number between 0 and 1 (got "${text}")`,
        );
      }
      return { kind: "scenes", threshold, keyframes: head === "scenes+keyframes" };
    }
    default:
      throw new SelectionError(
        `unknown selection "${text}" (keyframes, every:S, at:T1,T2,…, scenes[:TH], ` +
          `scenes+keyframes[:TH])`,
      );
  }
}

/**
 * `value` as a {@linkcode Selection}: parsed when a string (see {@linkcode parseSelection}),
 * undefined for the default. Throws {@linkcode SelectionError}.
 */
export function selectionOf(value: Selection | string | undefined): Selection | undefined {
  const s = typeof value === "string" ? parseSelection(value) : value;
  return s?.kind === "keyframes" ? undefined : s;
}

/** `T` of `at:`: seconds, or `[hh:]mm:ss[.ms]`. Throws {@linkcode SelectionError}. */
function parseTime(text: string): number {
  const parts = text.split(":");
  const bad = () => new SelectionError(`"${text}" is not a time (seconds, or hh:mm:ss.ms)`);
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d*)?$|^\.\d+$/.test(p))) throw bad();
  if (parts.slice(0, -1).some((p) => p.includes("."))) throw bad();
  if (parts.length > 1 && parts.slice(1).some((p) => Number(p) >= 60)) throw bad();
  return parts.reduce((sum, p) => sum * 60 + Number(p), 0);
}

/**
 * The selection as `--select` writes it, in one canonical form (what the output header records);
 * undefined for the default, keyframes, so that outputs written before `--select` existed resume.
 *
 * @example
 * ```ts
 * import { parseSelection, selectionText } from "./selection.ts";
 * selectionText(parseSelection("at:0:01,0.5")); // "at:0.5,1"
 * ```
 */
export function selectionText(s: Selection | undefined): string | undefined {
  switch (s?.kind) {
    case undefined:
    case "keyframes":
      return undefined;
    case "every":
      return `every:${s.seconds}`;
    case "at":
      return `at:${s.times.join(",")}`;
    case "scenes":
      return `${s.keyframes ? "scenes+keyframes" : "scenes"}:${s.threshold}`;
  }
}

/**
 * One line naming the `at:` times past a file's last frame (the other times' records came).
 *
 * @example
 * ```ts
 * import { pastEndLine } from "./selection.ts";
 * pastEndLine("a.mp4", [99]); // "a.mp4: at: 99 s is past the end of the video"
 * ```
 */
export function pastEndLine(file: string, times: readonly number[]): string {
  const list = times.map((t) => `${t} s`).join(", ");
  return `${file}: at: ${list} ${times.length > 1 ? "are" : "is"} past the end of the video`;
}
