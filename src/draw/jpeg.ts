/**
 * Drawing on a keyframe's JPEG with vx's decoder core: decode, run the plan's filter graph,
 * encode. The picture stays in the JPEG's own YUV 4:2:0 from decoder to encoder (`drawbox` and
 * `drawtext` draw in it), so nothing is converted and re-encoding is the only change outside the
 * marks.
 *
 * @module
 */

import {
  CoreError,
  type Decoder,
  type DecoderCore,
  type Input,
  memorySource,
} from "../../wasm/decoder.ts";
import type { DrawPlan } from "./plan.ts";

/** The font tags are drawn in: DejaVu Sans Bold, from npm, as the fixtures use. */
export const FONT_URL = new URL(
  import.meta.resolve("npm:dejavu-fonts-ttf@2.37.3/ttf/DejaVuSans-Bold.ttf"),
);

/** Where {@linkcode drawOnJpeg} expects the font in the core's file system. */
export const FONT_PATH = "/font.ttf";

/** A JPEG that could not be drawn on; the message is FFmpeg's reason. */
export class DrawError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DrawError";
  }
}

const utf8 = new TextEncoder();

/**
 * Draws `plan` on `jpeg` with `core` (which must hold the font at {@linkcode FONT_PATH}; see
 * {@linkcode FONT_URL}) and returns the new JPEG. Encoded as the decode worker encodes keyframes
 * (quality 3, standard Huffman tables), so a drawn picture is as sharp as an undrawn one. Throws
 * {@linkcode DrawError} with FFmpeg's reason when the JPEG cannot be decoded or drawn on.
 */
export function drawOnJpeg(core: DecoderCore, jpeg: Uint8Array, plan: DrawPlan): Uint8Array {
  const texts = plan.texts.map((_, i) => `/t${i}.txt`);
  const errors: string[] = [];
  core.setLogger((l) => {
    if (l.level <= 16 && l.line.trim()) errors.push(l.line.trim());
  });
  let input: Input | undefined;
  let decoder: Decoder | undefined;
  try {
    plan.texts.forEach((t, i) => core.writeFile(texts[i], utf8.encode(t)));
    input = core.open(memorySource(jpeg), true);
    const stream = input.info().streams.find((s) => s.type === "video");
    if (!stream) throw new DrawError("not a picture");
    decoder = input.decoder(stream.index);
    const packet = input.read();
    if (!packet) throw new DrawError("no picture in the JPEG");
    decoder.send(input.data(packet.size), packet.pts, packet.dts, true);
    decoder.send(null);
    if (!decoder.receive()) throw new DrawError(errors.at(-1) ?? "the JPEG gave no picture");
    return decoder.jpeg(`${plan.filter},format=yuvj420p`);
  } catch (err) {
    if (err instanceof CoreError) throw new DrawError(errors.at(-1) ?? err.message);
    throw err;
  } finally {
    decoder?.close();
    input?.close();
    core.setLogger(undefined);
    for (const t of texts) core.removeFile(t);
  }
}
