/**
 * The index way: an MP4/MOV file's key samples, read by the offsets its index gives, each handed
 * to the decoder on its own at the pts the index gives it. Only the key samples' bytes are read.
 *
 * The decoder's parameters come from the track's own sample description: the core's demuxer
 * reads a header-only copy of the track (`samplesMp4`, made once per file, without samples), so
 * every codec the MP4 demuxer knows opens with its extradata as it would from the file.
 *
 * @module
 */

import { CoreError, memorySource } from "../../wasm/decoder.ts";
import type { ByteSource } from "../input/source.ts";
import type { KeyClaims } from "./key_claims.ts";
import { checkDeadline, type DecodeContext, DecodeError } from "./keyframes.ts";
import { type IndexPlan, samplesMp4 } from "./mp4_index.ts";
import { KeyPictures } from "./picture.ts";
import { plainReason, ticksToSeconds } from "./probe.ts";

/**
 * Decodes the key samples of `plan` from `source`, taking them in the order `claims` hands out
 * (all of them, alone; a share of them, with other decode workers). Throws
 * {@linkcode DecodeError} when the track cannot be decoded or a sample lies past the file's end.
 */
export function decodeIndexed(
  ctx: DecodeContext,
  source: ByteSource,
  plan: IndexPlan,
  claims: KeyClaims,
): void {
  const { stream, out, read } = ctx;
  const pictures = openTrack(ctx, plan);
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

/** A decoder for `plan`'s track, from its sample description. */
function openTrack(ctx: DecodeContext, plan: IndexPlan): KeyPictures {
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
