/**
 * The MP4/MOV index reader on its own: the key samples of a file it makes sense of, and a reason
 * (never a throw, never a huge allocation) for headers it does not.
 */
import assert from "node:assert/strict";
import { readMp4Index } from "../src/decode/mp4_index.ts";
import { fixture, WORKERS } from "./_helpers.ts";

/** `readMp4Index` over bytes in memory. */
function indexOf(bytes: Uint8Array) {
  return readMp4Index((at, n) => bytes.subarray(at, Math.min(at + n, bytes.length)), bytes.length);
}

const spec = { codec: "h264", width: 96, height: 64, frames: 24, keyint: 8, fps: 8 } as const;

Deno.test({
  name: "mp4 index: the key samples, their pts and where their bytes are",
  ...WORKERS,
  async fn() {
    const bytes = await Deno.readFile(await fixture("ix.mp4", { ...spec, bframes: 2 }));
    const index = indexOf(bytes);
    assert.ok(typeof index !== "string", `${index}`);
    const [video] = index.tracks;
    assert.equal(video.handler, "vide");
    assert.ok(typeof video.keys !== "string", `${video.keys}`);
    // Keyframes every second; the B-frames' delay is taken off by the edit list, as ffmpeg does.
    assert.deepEqual(video.keys.map((k) => k.ticks / video.timescale), [0, 1, 2]);
    for (const k of video.keys) {
      // An AVC sample is length-prefixed NAL units: the first length fits inside the sample.
      const first = new DataView(bytes.buffer, bytes.byteOffset + k.offset).getUint32(0);
      assert.ok(first > 0 && first + 4 <= k.size, `sample at ${k.offset}`);
    }
    // The index and the headers, not the media: a small part of the file.
    assert.ok(index.bytesRead < bytes.length / 4, `${index.bytesRead} of ${bytes.length}`);
  },
});

Deno.test({
  name: "mp4 index: damaged, cut or fragmented files get a reason, not an exception",
  ...WORKERS,
  async fn() {
    const bytes = await Deno.readFile(await fixture("ix.mp4", { ...spec, bframes: 2 }));
    const at = (type: string) =>
      bytes.findIndex((_, i) => String.fromCharCode(...bytes.subarray(i, i + 4)) === type);
    const keysOf = (b: Uint8Array) => {
      const index = indexOf(b);
      return typeof index === "string" ? index : index.tracks[0].keys;
    };
    // A sample table claiming 4 billion samples.
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(at("stsz") + 12, 0xffffffff);
    assert.match(String(keysOf(huge)), /claims 4294967295 samples/);
    // Cut inside moov (it is first: faststart).
    assert.match(String(keysOf(bytes.subarray(0, at("stsz")))), /cut short/);
    // Not an MP4 at all.
    assert.match(String(keysOf(new TextEncoder().encode("not a video\n".repeat(50)))), /no index/);
    const frag = await Deno.readFile(
      await fixture("ix-frag.mp4", { ...spec, bframes: 2, fragmented: true }),
    );
    assert.match(String(keysOf(frag)), /fragmented/);
  },
});
