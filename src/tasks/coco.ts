/**
 * Class labels for detectors: the 80 COCO names built in, or a label file a user gives.
 *
 * @module
 */

import { type ReadFile, TaskError } from "./task.ts";

/**
 * The 80 COCO class names in the order YOLOX and Ultralytics models index them.
 *
 * @example
 * ```ts
 * import { COCO_LABELS } from "./coco.ts";
 * console.log(COCO_LABELS[0]); // "person"
 * ```
 */
export const COCO_LABELS: readonly string[] = Object.freeze([
  "person",
  "bicycle",
  "car",
  "motorcycle",
  "airplane",
  "bus",
  "train",
  "truck",
  "boat",
  "traffic light",
  "fire hydrant",
  "stop sign",
  "parking meter",
  "bench",
  "bird",
  "cat",
  "dog",
  "horse",
  "sheep",
  "cow",
  "elephant",
  "bear",
  "zebra",
  "giraffe",
  "backpack",
  "umbrella",
  "handbag",
  "tie",
  "suitcase",
  "frisbee",
  "skis",
  "snowboard",
  "sports ball",
  "kite",
  "baseball bat",
  "baseball glove",
  "skateboard",
  "surfboard",
  "tennis racket",
  "bottle",
  "wine glass",
  "cup",
  "fork",
  "knife",
  "spoon",
  "bowl",
  "banana",
  "apple",
  "sandwich",
  "orange",
  "broccoli",
  "carrot",
  "hot dog",
  "pizza",
  "donut",
  "cake",
  "chair",
  "couch",
  "potted plant",
  "bed",
  "dining table",
  "toilet",
  "tv",
  "laptop",
  "mouse",
  "remote",
  "keyboard",
  "cell phone",
  "microwave",
  "oven",
  "toaster",
  "sink",
  "refrigerator",
  "book",
  "clock",
  "vase",
  "scissors",
  "teddy bear",
  "hair drier",
  "toothbrush",
]);

/**
 * Resolves the labels for a detector with `classes` classes: `undefined` or `"coco"` gives
 * {@linkcode COCO_LABELS}; anything else is read (with `read`) as a UTF-8 file with one label a
 * line.
 *
 * Throws a {@linkcode TaskError} when the file cannot be read (or `read` refuses it), or when the
 * number of labels differs from `classes` (a label file for another model would silently
 * mislabel everything).
 *
 * @example
 * ```ts
 * import { loadLabels } from "./coco.ts";
 * const labels = await loadLabels("coco", 80);
 * console.log(labels[16]); // "dog"
 * ```
 */
export async function loadLabels(
  spec: string | undefined,
  classes: number,
  read: ReadFile = Deno.readFile,
): Promise<readonly string[]> {
  let labels: readonly string[];
  let source: string;
  if (spec === undefined || spec === "coco") {
    labels = COCO_LABELS;
    source = "coco";
  } else {
    let text: string;
    try {
      text = new TextDecoder().decode(await read(spec));
    } catch (e) {
      if (e instanceof TaskError) throw e;
      throw new TaskError(`${spec}: cannot read labels: ${e instanceof Error ? e.message : e}`);
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    // A final newline (or a few) is normal in text files; blank lines inside are kept, since
    // they still hold a class index.
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    labels = lines;
    source = spec;
  }
  if (labels.length !== classes) {
    throw new TaskError(
      `${source}: has ${labels.length} labels but the model has ${classes} classes; ` +
        `pass --labels with a file of ${classes} lines`,
    );
  }
  return labels;
}
