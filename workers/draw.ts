/**
 * Draw worker: hosts one instance of vx's decoder core and speaks {@linkcode DrawCommand}: each
 * command draws on one JPEG and replaces it. The logic lives in `src/draw/`.
 *
 * @module
 */

import { type DecoderCore, loadDecoder } from "../wasm/decoder.ts";
import { DrawError, drawOnJpeg, FONT_PATH, FONT_URL } from "../src/draw/jpeg.ts";
import type { DrawCommand, DrawEvent } from "../src/draw/draw_messages.ts";
import { reportCrashes } from "./worker_side.ts";

reportCrashes();

const scope = self as unknown as {
  postMessage(msg: DrawEvent): void;
  onmessage: ((e: MessageEvent<DrawCommand>) => void) | null;
};

/** Loaded as the worker starts, so it is ready by the first keyframe's results, then reused. */
let core: Promise<DecoderCore> | undefined = ready();

async function ready(): Promise<DecoderCore> {
  const c = await loadDecoder();
  c.writeFile(FONT_PATH, await Deno.readFile(FONT_URL));
  return c;
}

// Commands run one at a time, in order: each awaits the one before.
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const cmd = e.data;
  queue = queue.then(async () => {
    try {
      const c = await (core ??= ready());
      const start = performance.now();
      const drawn = drawOnJpeg(c, await Deno.readFile(cmd.path), cmd.plan);
      // Written beside it and renamed over it: a killed run leaves the old or the new picture.
      const tmp = `${cmd.path}.drawing`;
      await Deno.writeFile(tmp, drawn);
      await Deno.rename(tmp, cmd.path);
      scope.postMessage({ type: "drawn", id: cmd.id, ms: performance.now() - start });
    } catch (err) {
      // A trap leaves the core unusable: the next command loads a fresh one.
      const c = await core?.catch(() => undefined);
      if (!(err instanceof DrawError) || c?.broken) core = undefined;
      scope.postMessage({
        type: "error",
        id: cmd.id,
        message: err instanceof Error ? err.message : String(err),
      });
    }
  });
};
