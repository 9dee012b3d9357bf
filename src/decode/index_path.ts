/**
 * The index way: a file's key packets, read by the offsets its index gives (an MP4/MOV `moov`, or
 * one of `container_index.ts`'s readers), each handed to the decoder on its own at the pts the
 * index gives it. Only the key packets' bytes are read.
 *
 * For an MP4/MOV, the decoder's parameters come from the track's own sample description: the
 * core's demuxer reads a header-only copy of the track (`samplesMp4`, made once per file, without
 * samples), so every codec the MP4 demuxer knows opens with its extradata as it would from the
 * file. For the other containers the demuxer has opened the file itself, and its decoder is used.
 *
 * @module
 */

import { CoreError, type Input, memorySource } from "../../wasm/decoder.ts";
import type { ByteSource } from "../input/source.ts";
import type { KeyClaims } from "./key_claims.ts";
import { checkDeadline, type DecodeContext, DecodeError } from "./keyframes.ts";
import { type IndexPlan, type KeySample, samplesMp4 } from "./mp4_index.ts";
import { KeyPictures } from "./picture.ts";
import { plainReason, ticksToSeconds } from "./probe.ts";

/** Key packets to decode, in pts order, and the file's size (none may reach past it). */
export interface KeyList {
  keys: KeySample[];
  size: number;
}

/**
 * Decodes the key samples of `plan` from `source`, taking them in the order `claims` hands out
 * (all of them, alone; a share of them, with other decode workers), with a decoder `open`
 * gives. Throws {@linkcode DecodeError} when the track cannot be decoded or a sample lies past
 * the file's end.
 */
export function decodeIndexed(
  ctx: DecodeContext,
  source: ByteSource,
  plan: KeyList,
  claims: KeyClaims,
  open: () => KeyPictures,
): void {
  const { stream, out, read } = ctx;
  const pictures = open();
  let scratch = new Uint8Array(0);
  try {
    for (;;) {
      const index = claims.next();
      if (index >= plan.keys.length) break;
      checkDeadline(ctx);
      const key = plan.keys[index];
      const pts = ticksToSeconds(key.ticks, stream.timeBase);
      if (key.offset + key.size > plan.size) {
        throw new DecodeError(
          `truncated or damaged file (keyframe ${index} at ${pts} s lies past the end of the file)`,
        );
      }
      // One buffer for every sample, grown as needed: a fresh one each time would fault in its
      // pages again (a 720p key sample is ~80 of them). The decoder copies the bytes it is given.
      if (scratch.length < key.size) {
        scratch = new Uint8Array(Math.max(key.size, 2 * scratch.length));
      }
      const bytes = scratch.subarray(0, source.readAt(key.offset, scratch.subarray(0, key.size)));
      // The next key sample (this worker's, when it decodes the file alone) is fetched while this
      // one decodes: a URL's round trips hide behind the decoder.
      const next = claims.shared ? undefined : plan.keys[index + 1];
      if (next) source.prefetch?.(next.offset, next.size);
      out.give(pictures.decode({
        index,
        pts,
        ticks: key.ticks,
        dts: NaN,
        bytes,
        readMs: read.ms,
        readBytes: read.bytes,
      }));
      read.bytes = 0;
      read.ms = 0;
    }
  } finally {
    pictures.close();
  }
}

/** A decoder for an MP4 `plan`'s track, from its sample description. */
export function openTrack(ctx: DecodeContext, plan: IndexPlan): KeyPictures {
  const { core, req, geom } = ctx;
  const header = samplesMp4(plan.track, [new Uint8Array(1)], plan.ftyp);
  try {
    const input = core.open(memorySource(header), false);
    try {
      return new KeyPictures(core, input.decoder(0), req, geom, input.upright(0));
    } finally {
      input.close();
    }
  } catch (e) {
    if (e instanceof CoreError) throw new DecodeError(plainReason(e.message));
    throw e;
  }
}

/** A decoder for `ctx.stream` from the demuxer that opened the file. */
export function openStream(ctx: DecodeContext, input: Input): KeyPictures {
  const { core, req, geom, stream } = ctx;
  try {
    return new KeyPictures(
      core,
      input.decoder(stream.index),
      req,
      geom,
      input.upright(stream.index),
    );
  } catch (e) {
    if (e instanceof CoreError) throw new DecodeError(plainReason(e.message));
    throw e;
  }
}
