/**
 * What `--draw` draws on a keyframe, as an ffmpeg filter graph: boxes with a tag (label and
 * score, or the text read) for detect, faces and OCR, the top labels in a corner for classify.
 * Pure: the drawing itself runs in ffmpeg (`src/draw/jpeg.ts`), never per pixel in JavaScript.
 *
 * @module
 */

import type { FrameRecord } from "../records.ts";
import type { TaskResult } from "../tasks/task.ts";
import { inkOn, labelColor } from "./palette.ts";

/** A result as something to show: where (a box, or a line in the corner), its colour and tag. */
export interface Mark {
  /** What the colour and the report's filter go by: the class, `face`, or `text` for OCR. */
  label: string;
  score: number;
  /** `RRGGBB`, from {@linkcode labelColor}. */
  color: string;
  /** The words drawn beside it: `dog 0.91`, or the OCR line's text. */
  tag: string;
  /** `[x1, y1, x2, y2]` in source pixels; absent for classify, whose labels go in a corner. */
  box?: [number, number, number, number];
  /** OCR: the text read. */
  text?: string;
}

/**
 * The marks of a keyframe's results, in result order: a box for each detection, face and OCR
 * line, a corner line for each class; none for embed, tensor and keyframes, which are not places
 * in the picture.
 *
 * @example
 * ```ts
 * import { marksOf } from "./plan.ts";
 * const [m] = marksOf([{ label: "dog", score: 0.912, box: [10, 20, 110, 220] }]);
 * console.log(m.tag, m.color); // "dog 0.91" and the dog's colour
 * ```
 */
export function marksOf(results: readonly TaskResult[]): Mark[] {
  const marks: Mark[] = [];
  for (const r of results) {
    if ("text" in r) {
      marks.push({
        label: "text",
        score: r.score,
        color: labelColor("text"),
        tag: r.text,
        box: r.box,
        text: r.text,
      });
    } else if ("label" in r) {
      const m: Mark = {
        label: r.label,
        score: r.score,
        color: labelColor(r.label),
        tag: `${r.label} ${r.score.toFixed(2)}`,
      };
      if ("box" in r) m.box = r.box;
      marks.push(m);
    }
  }
  return marks;
}

/** Line width, text size and padding in source pixels, for a picture of this size. */
export interface DrawSizes {
  /** Outline thickness; even, so outlines sit on whole 2×2 chroma blocks of 4:2:0 JPEGs. */
  thickness: number;
  fontSize: number;
  /** Space between a tag's text and its edge. */
  pad: number;
}

/**
 * Sizes that read the same from 320×180 to 4K: in proportion to the picture's shorter side, with
 * floors that keep a 180-line picture's outlines and text legible (2 px lines, 10 px text).
 *
 * @example
 * ```ts
 * import { drawSizes } from "./plan.ts";
 * console.log(drawSizes(1920, 1080)); // { thickness: 6, fontSize: 45, pad: 8 }
 * ```
 */
export function drawSizes(width: number, height: number): DrawSizes {
  const short = Math.min(width, height);
  const fontSize = Math.max(10, Math.round(short / 24));
  return {
    thickness: 2 * Math.max(1, Math.round(short / 360)),
    fontSize,
    pad: 2 * Math.max(1, Math.round(fontSize / 10)),
  };
}

/**
 * The rectangle `--draw` outlines for `box` in a `width`×`height` picture, as
 * `[x, y, w, h]`: the box widened to even coordinates (whole chroma blocks) and kept inside the
 * picture. The outline is drawn inside it, `thickness` wide.
 */
export function outlineRect(
  box: readonly number[],
  width: number,
  height: number,
): [number, number, number, number] {
  const even = (v: number, round: (v: number) => number, max: number) =>
    Math.min(Math.max(0, 2 * round(v / 2)), max);
  const x1 = even(box[0], Math.floor, width);
  const y1 = even(box[1], Math.floor, height);
  const x2 = even(box[2], Math.ceil, width);
  const y2 = even(box[3], Math.ceil, height);
  return [x1, y1, Math.max(0, x2 - x1), Math.max(0, y2 - y1)];
}

/** An ffmpeg filter graph that draws a keyframe's marks, and the texts it reads from files. */
export interface DrawPlan {
  /** `drawbox`/`drawtext` filters, comma-separated. */
  filter: string;
  /**
   * The tags, in order: `drawtext` reads tag `i` from the file `/t<i>.txt` (a file, so no text
   * needs escaping for the filter graph), with the font at `/font.ttf`.
   */
  texts: string[];
}

const hex = (c: string) => `0x${c}`;

/**
 * The filter graph that draws `record`'s results on its `width`×`height` picture, or undefined
 * when there is nothing to draw (no result is a place or a class).
 *
 * @example
 * ```ts
 * import { drawPlan } from "./plan.ts";
 * const plan = drawPlan({
 *   file: "a.mp4", index: 0, pts: 0, width: 640, height: 360, task: "detect",
 *   results: [{ label: "dog", score: 0.9, box: [10, 20, 110, 220] }],
 * });
 * console.log(plan?.filter.startsWith("drawbox=")); // true
 * ```
 */
export function drawPlan(record: FrameRecord): DrawPlan | undefined {
  const marks = marksOf(record.results);
  if (marks.length === 0) return undefined;
  const { width: W, height: H } = record;
  const { thickness: t, fontSize, pad } = drawSizes(W, H);
  const filters: string[] = [];
  const texts: string[] = [];
  // Outlines first, tags after: a tag stays readable where it overlaps another box.
  for (const m of marks) {
    if (!m.box) continue;
    const [x, y, w, h] = outlineRect(m.box, W, H);
    if (w === 0 || h === 0) continue;
    filters.push(`drawbox=x=${x}:y=${y}:w=${w}:h=${h}:color=${hex(m.color)}:t=${t}`);
  }
  /** Height a corner line takes: the text's line (DejaVu's ascent + descent ≈ 1.17 em). */
  const lineH = Math.ceil(fontSize * 1.17) + 2 * pad;
  let line = 0;
  // Boxes' tags from the lowest score up, so where tags overlap the best one is on top.
  const order = [...marks].sort((a, b) => (a.box && b.box ? a.score - b.score : 0));
  for (const m of order) {
    let x: string, y: string;
    if (m.box) {
      const [bx, by, w, h] = outlineRect(m.box, W, H);
      if (w === 0 || h === 0) continue;
      // On the box's top edge where there is room (`th`, the text's height, is drawtext's),
      // else just inside it; never off the right.
      x = `max(${pad}\\,min(${bx + pad}\\,w-tw-${pad}))`;
      y = `if(gte(${by}-th-${2 * pad}\\,0)\\,${by}-th-${pad}\\,${by + t + pad})`;
    } else {
      x = String(pad);
      y = String(pad + line++ * (lineH + pad));
    }
    const i = texts.length;
    texts.push(m.tag);
    filters.push(
      `drawtext=fontfile=/font.ttf:textfile=/t${i}.txt:expansion=none:fontsize=${fontSize}:` +
        `fontcolor=${hex(inkOn(m.color))}:box=1:boxcolor=${hex(m.color)}:boxborderw=${pad}:` +
        `x=${x}:y=${y}`,
    );
  }
  return { filter: filters.join(","), texts };
}
