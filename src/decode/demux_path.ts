/**
 * The demuxing way, for every container without an index vx reads: the demuxer reads the file
 * (told to drop the other streams, and the non-key packets where it can), and vx keeps the video
 * stream's key packets, each decoded on its own at the pts `probe` lists for it.
 *
 * @module
 */

import { CoreError, type CoreLog, type Input } from "../../wasm/decoder.ts";
import { checkDeadline, type DecodeContext, DecodeError } from "./keyframes.ts";
import { KeyPictures } from "./picture.ts";
import { bestError, lastError, plainReason, ticksToSeconds } from "./probe.ts";

/**
 * Demuxers that skip a non-key packet's bytes when told to, and still time the key packets right:
 * FLV, by each tag's own timestamp. ffmpeg 5.1's MP4 demuxer skips by its sample index too, but
 * its composition offsets then stop advancing and the pts come out wrong (negative offsets in
 * `tests/conformance_test.ts`): MP4 files that reach this path are read whole.
 */
const SKIPS_NON_KEY = /^flv$/;
/** Demuxer complaints that mean the file ends before its own index says. */
const TRUNCATED = /partial file|corrupt input packet|Packet corrupt|truncat|End of file/i;

/**
 * Decodes the key packets of `ctx.stream` as `input`'s demuxer gives them, in pts order.
 *
 * A key packet without a pts (AVI stores none; MPEG-PS may leave it out) gets the pts its
 * picture has when the stream is decoded whole: with B-frames, the dts of the next packet whose
 * pts is missing or later than its dts; without, its own dts (`probe.ts`'s `keyPackets`, which
 * lists them the same way). Key packets sharing a pts count once. Throws
 * {@linkcode DecodeError} when nothing can be decoded, and after the keyframes before a cut or
 * damage in the container.
 */
export function decodeDemuxed(ctx: DecodeContext, input: Input, container: string): void {
  const { core, stream, out, read } = ctx;
  let pictures: KeyPictures;
  try {
    pictures = new KeyPictures(
      core,
      input.decoder(stream.index),
      ctx.req,
      ctx.geom,
      input.upright(stream.index),
    );
  } catch (e) {
    if (e instanceof CoreError) throw new DecodeError(plainReason(e.message));
    throw e;
  }
  input.select(stream.index, SKIPS_NON_KEY.test(container));
  const reorders = (stream.reorderDepth ?? 0) > 0;
  const logs: string[] = [];
  let truncated: string | undefined;
  const onLog = (l: CoreLog) => {
    if (l.decoder || l.level > 24) return;
    if (TRUNCATED.test(l.line)) truncated ??= lastError([l.line]) ?? l.line;
    logs.push(l.line);
    if (logs.length > 200) logs.splice(0, 100);
  };
  let last = -Infinity;
  const seen = new Set<number>();
  const handle = (ticks: number, bytes: Uint8Array, dts: number) => {
    // Before the stream's start: cut by an edit list, never shown.
    if (stream.startPts !== undefined && ticks < stream.startPts) return;
    if (seen.has(ticks)) return;
    if (ticks < last) {
      throw new DecodeError(
        `key packets out of pts order (${ticksToSeconds(ticks, stream.timeBase)} s after ` +
          `${ticksToSeconds(last, stream.timeBase)} s): a damaged file?`,
      );
    }
    seen.add(ticks);
    last = ticks;
    out.give(pictures.decode({
      index: out.next,
      pts: ticksToSeconds(ticks, stream.timeBase),
      ticks,
      dts,
      bytes,
      readMs: read.ms,
      readBytes: read.bytes,
    }));
    read.bytes = 0;
    read.ms = 0;
  };
  /** A key packet without a pts, waiting for the packet that gives it one. */
  let held: { bytes: Uint8Array; dts: number } | undefined;
  let readError: string | undefined;
  try {
    for (;;) {
      checkDeadline(ctx);
      core.setLogger(onLog);
      let p;
      try {
        p = input.read();
      } catch (e) {
        if (!(e instanceof CoreError)) throw e;
        readError = e.message;
        break;
      } finally {
        core.setLogger(undefined);
      }
      if (p === null) break;
      if (p.stream !== stream.index) continue;
      if (held && !Number.isNaN(p.dts) && (Number.isNaN(p.pts) || p.pts > p.dts)) {
        handle(p.dts, held.bytes, held.dts);
        held = undefined;
      }
      if (!p.key || p.discard) continue;
      const bytes = input.data(p.size).slice();
      if (Number.isNaN(p.pts) && reorders) {
        held = { bytes, dts: p.dts };
        continue;
      }
      const ticks = Number.isNaN(p.pts) ? p.dts : p.pts;
      if (!Number.isNaN(ticks)) handle(ticks, bytes, p.dts);
    }
    if (held && !Number.isNaN(held.dts)) handle(held.dts, held.bytes, held.dts);
  } finally {
    pictures.close();
  }
  checkDeadline(ctx);
  if (readError !== undefined) {
    const why = plainReason(bestError(logs) ?? readError);
    throw new DecodeError(out.next === 0 ? why : `truncated or damaged file (${why})`);
  }
  if (truncated !== undefined) throw new DecodeError(`truncated or damaged file (${truncated})`);
  if (out.next === 0) {
    throw new DecodeError(
      plainReason(lastError(logs.filter((l) => /error|invalid/i.test(l))) ?? "no keyframe decoded"),
    );
  }
}
