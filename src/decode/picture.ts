/**
 * One keyframe's picture: a key packet decoded on its own, from a flushed decoder, converted to
 * a task's input, and handed out in keyframe order with the others of its file.
 *
 * A key packet decoded alone is its own picture and nothing else: the decoder never skips, drops
 * or reorders one, and the picture carries the pts its packet was listed with. Every keyframe of
 * every container is decoded this way, the index's and the demuxer's.
 *
 * @module
 */

import { CoreError, type Decoder, type DecoderCore } from "../../wasm/decoder.ts";
import { now as clock } from "../clock.ts";
import type { OutputGeometry } from "./geometry.ts";
import { lastError, plainReason } from "./probe.ts";
import type { CorruptKeyframe, DecodedFrame, DecodeRequest } from "./keyframes.ts";

/** Decoder complaints that mean the picture it is working on is damaged. */
const DECODE_ERROR =
  /error while decoding|concealing|corrupt|invalid|illegal|overread|out of range|damaged|missing/i;

/** Why a keyframe has no record, when the decoder gave no picture and said nothing. */
export const NO_PICTURE = "the decoder gave no picture for this keyframe";

/** A key packet to decode: its place among the file's keyframes, its pts, its bytes. */
export interface KeyPacketBytes {
  index: number;
  /** Seconds, on the stream's clock. */
  pts: number;
  /** In the stream's time base, as the decoder is given them. */
  ticks: number;
  dts: number;
  bytes: Uint8Array;
  /** ms spent reading its bytes (and, for the demuxer, reading up to it). */
  readMs: number;
  readBytes: number;
}

/** Decodes key packets one at a time with one decoder, for one file. */
export class KeyPictures {
  readonly #core: DecoderCore;
  readonly #decoder: Decoder;
  readonly #req: DecodeRequest;
  readonly #geom: OutputGeometry;
  /** The filters: upright, then the task's geometry; and upright, then the JPEG's format. */
  readonly #chain: string;
  readonly #jpegChain: string;
  #since = clock();

  constructor(
    core: DecoderCore,
    decoder: Decoder,
    req: DecodeRequest,
    geom: OutputGeometry,
    upright: string,
  ) {
    this.#core = core;
    this.#decoder = decoder;
    this.#req = req;
    this.#geom = geom;
    this.#chain = `${upright}${geom.filter}`;
    this.#jpegChain = `${upright}format=yuvj420p`;
  }

  /**
   * Decodes `key` alone: its frame, or the note that stands for it (the decoder complained about
   * it, refused it, or gave no picture). Throws {@linkcode CoreError} when the conversion fails.
   */
  decode(key: KeyPacketBytes): { frame: DecodedFrame } | { note: CorruptKeyframe } {
    const decodeStart = Math.max(this.#since, clock());
    const d = this.#decoder;
    let damage: string | undefined;
    this.#core.setLogger((l) => {
      if (l.decoder && DECODE_ERROR.test(l.line)) {
        damage ??= `decoder error: ${lastError([l.line]) ?? l.line}`;
      }
    });
    let picture = null;
    try {
      d.flush();
      d.send(key.bytes, key.ticks, key.dts, true);
      d.send(null);
      picture = d.receive();
    } catch (e) {
      if (!(e instanceof CoreError)) throw e;
      damage ??= `decoder error: ${plainReason(e.message)}`;
    } finally {
      this.#core.setLogger(undefined);
    }
    const note = (reason: string) => {
      this.#since = clock();
      return { note: { index: key.index, pts: key.pts, reason } };
    };
    // A damaged keyframe is reported, never inferred: its pixels are concealment guesses.
    if (damage !== undefined) return note(damage);
    if (!picture) return note(NO_PICTURE);
    const filterStart = clock();
    const { data, width, height } = d.convert(this.#chain, this.#geom.frameBytes);
    if (width !== this.#geom.width || height !== this.#geom.height) {
      throw new CoreError(`the filters gave ${width}x${height}, not the task's input size`);
    }
    let image: string | undefined;
    if (this.#req.jpegDir !== undefined) {
      image = `${this.#req.jpegDir}/${this.#req.jpegPrefix ?? "frame"}_${key.index}.jpg`;
      Deno.writeFileSync(image, d.jpeg(this.#jpegChain));
    }
    // A lone packet gives one picture; whatever else the decoder holds is drained and dropped.
    try {
      while (d.receive() !== null) { /* drained */ }
    } catch (e) {
      if (!(e instanceof CoreError)) throw e;
    }
    // The picture's shown size: transposed by the upright filters where the stream is rotated.
    const turned = this.#chain.startsWith("transpose");
    const decodeEnd = clock();
    this.#since = decodeEnd;
    return {
      frame: {
        index: key.index,
        pts: key.pts,
        srcWidth: turned ? picture.height : picture.width,
        srcHeight: turned ? picture.width : picture.height,
        width,
        height,
        data,
        image,
        decodeStart,
        filterStart,
        decodeEnd,
        readBytes: key.readBytes,
        readMs: key.readMs,
      },
    };
  }

  close(): void {
    this.#decoder.close();
  }
}

/**
 * Hands out keyframes and notes in index order: a keyframe already settled (by an earlier
 * attempt) is dropped, its JPEG with it.
 */
export class KeyEmitter {
  /** Indices below this are settled: emitted, or noted as corrupt. */
  next = 0;
  /** The pts of the last keyframe settled, in seconds. */
  lastPts = -Infinity;
  emitted = 0;
  corrupt: CorruptKeyframe[] = [];

  constructor(
    readonly emit: (frame: DecodedFrame) => void,
    readonly onCorrupt: (note: CorruptKeyframe) => void,
  ) {}

  /** Hands out what {@linkcode KeyPictures.decode} gave. */
  give(got: { frame: DecodedFrame } | { note: CorruptKeyframe }): void {
    if ("note" in got) return this.#note(got.note);
    const f = got.frame;
    if (f.index < this.next) {
      if (f.image !== undefined) Deno.removeSync(f.image);
      return;
    }
    this.next = f.index + 1;
    this.lastPts = f.pts;
    this.emit(f);
    this.emitted++;
  }

  #note(n: CorruptKeyframe): void {
    if (n.index < this.next) return;
    this.next = n.index + 1;
    this.lastPts = n.pts;
    this.corrupt.push(n);
    this.onCorrupt(n);
  }
}
