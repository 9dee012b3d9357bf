/**
 * `--draw`: each keyframe's JPEG gets its results drawn once the results are known. The decode
 * worker writes the plain JPEG as it decodes (`--frames-dir`); when the keyframe's record is
 * ready, a draw worker (one decoder core, loaded once and reused) decodes that JPEG, draws the
 * record's marks with `drawbox`/`drawtext` and writes it back in place.
 *
 * @module
 */

import { UsageError, VxError } from "../errors.ts";
import type { FrameRecord, StatusRecord } from "../records.ts";
import { drawPlan } from "./plan.ts";
import type { DrawCommand, DrawEvent } from "./draw_messages.ts";

/** Draws records' results on their JPEGs, in a worker of its own. */
export class Drawer {
  #worker: Worker | undefined;
  #next = 0;
  #waiting = new Map<number, { path: string; resolve: () => void; reject: (e: Error) => void }>();

  /**
   * Draws `record`'s results on its JPEG (`record.image`), replacing the file; resolves when the
   * file is written. A record without an image or without anything to draw (embed, tensor,
   * keyframes, no result) is left as it is. Rejects with a {@linkcode VxError} naming the JPEG
   * when it cannot be drawn on.
   */
  draw(record: FrameRecord): Promise<void> {
    const plan = drawPlan(record);
    if (record.image === undefined || plan === undefined) return Promise.resolve();
    const path = record.image;
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { path, resolve, reject });
      this.#start().postMessage({ type: "draw", id, path, plan } satisfies DrawCommand);
    });
  }

  /** Starts the worker now, so its decoder core loads while the run starts up. */
  warm(): void {
    this.#start();
  }

  /** Ends the worker; draws still waiting are rejected. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll("the run ended before it was drawn");
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("../../workers/draw.ts", import.meta.url), {
      type: "module",
    });
    worker.onmessage = (e: MessageEvent<DrawEvent | { type: "crash"; message: string }>) => {
      const ev = e.data;
      if (ev.type === "crash") return this.#crashed(ev.message);
      const w = this.#waiting.get(ev.id);
      if (!w) return;
      this.#waiting.delete(ev.id);
      if (ev.type === "drawn") w.resolve();
      else w.reject(new VxError(w.path, `cannot draw on it: ${ev.message}`, "internal"));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      this.#crashed(e.message ?? "worker failed");
    };
    this.#worker = worker;
    return worker;
  }

  #crashed(message: string): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll(`draw worker failed: ${message}`);
  }

  #failAll(reason: string): void {
    for (const [id, w] of this.#waiting) {
      this.#waiting.delete(id);
      w.reject(new VxError(w.path, reason, "internal"));
    }
  }
}

/**
 * Passes `records` on, each keyframe record once its JPEG carries its results drawn (see
 * {@linkcode Drawer}); status records pass as they are. `framesDir` is where the run writes its
 * JPEGs: drawing needs them, so without it this throws a {@linkcode UsageError}. Throws
 * {@linkcode VxError} naming a JPEG that cannot be drawn on, unless `perFile`: then (for a stream
 * of files each ending with its status record, as `bulk` gives) that keyframe passes undrawn, its
 * file's status record becomes an error naming the JPEG, and the other files go on.
 *
 * Each record waits for its own drawing only: the run's workers go on decoding and inferring
 * meanwhile, and drawing a keyframe takes a fraction of inferring one (`bench/draw.ts`).
 *
 * @example
 * ```ts
 * import { extract } from "../pipeline/fast.ts";
 * import { drawRecords } from "./drawer.ts";
 * const opts = { task: "detect" as const, model: "yolox_nano.onnx", framesDir: "frames" };
 * for await (const r of drawRecords(extract("clip.mp4", opts), opts)) console.log(r.image);
 * ```
 */
export async function* drawRecords<R extends FrameRecord | { status: string }>(
  records: AsyncIterable<R>,
  options: { framesDir?: string; perFile?: boolean },
): AsyncGenerator<R> {
  if (options.framesDir === undefined) {
    throw new UsageError("drawing needs a frames directory (--frames-dir DIR) for its JPEGs");
  }
  const drawer = new Drawer();
  drawer.warm();
  try {
    /** Per file, the first drawing that failed (`perFile`). */
    const failed = new Map<string, string>();
    for await (const r of records) {
      if ("status" in r) {
        const file = (r as unknown as StatusRecord).file;
        const why = failed.get(file);
        failed.delete(file);
        yield why === undefined ? r : { file, status: "error", error: why } as unknown as R;
        continue;
      }
      try {
        await drawer.draw(r as FrameRecord);
      } catch (e) {
        if (!options.perFile || !(e instanceof VxError)) throw e;
        const f = r as FrameRecord;
        if (!failed.has(f.file)) failed.set(f.file, `keyframe ${f.index}: ${e.message}`);
      }
      yield r;
    }
  } finally {
    drawer.close();
  }
}
