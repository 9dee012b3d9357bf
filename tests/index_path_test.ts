/**
 * The index path's key samples, each handed to the decoder on its own: alone, through a claim
 * cell as when workers share the file, and writing JPEGs, one decode worker gives exactly the
 * same keyframes, at the same pts, with the same pixels, and the same notes for damaged samples;
 * and the same pixels as the demuxing path gives the same stream in another container.
 */

import assert from "node:assert/strict";
import type { DecodeEvent } from "../src/decode/decode_messages.ts";
import type { CorruptKeyframe, DecodedFrame } from "../src/decode/keyframes.ts";
import { readMp4Index } from "../src/decode/mp4_index.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import type { CrashEvent } from "../src/pipeline/workers.ts";
import { decodeWorker, fixture, WORKERS } from "./_helpers.ts";

const spec = { codec: "h264", width: 96, height: 64, frames: 80, keyint: 4, fps: 8 } as const;
const frameSpec = { fit: { kind: "stretch", width: 24, height: 16 }, pixFmt: "rgb24" } as const;

/** Alone, sharing the keys through a claim cell, or writing JPEGs. */
type Way = "alone" | "shared" | "jpegs";

interface Decoded {
  frames: { index: number; pts: number; data: number[] }[];
  corrupt: CorruptKeyframe[];
  path?: string;
}

async function withDecoder<T>(
  fn: (decode: (path: string, way: Way) => Promise<Decoded>) => Promise<T>,
): Promise<T> {
  const gate = InflightGate.create(1024, 1 << 30);
  let on: (e: DecodeEvent | CrashEvent) => void = () => {};
  const handle = await decodeWorker(gate, (e) => on(e));
  let id = 0;
  const jpegDir = await Deno.makeTempDir();
  const decode = (path: string, way: Way) =>
    new Promise<Decoded>((resolve, reject) => {
      const frames: DecodedFrame[] = [];
      const mine = ++id;
      on = (e) => {
        if ("id" in e && e.id !== mine) return;
        if (e.type === "frame") {
          frames.push(e.frame);
          gate.release(e.frame.data.byteLength);
        } else if (e.type === "done") {
          resolve({
            frames: frames.map((f) => ({ index: f.index, pts: f.pts, data: [...f.data] })),
            corrupt: e.corrupt,
            path: e.path,
          });
        } else if (e.type === "error" || e.type === "crash") reject(new Error(e.message));
      };
      const claim = way === "shared" ? new SharedArrayBuffer(4) : undefined;
      const jpegs = way === "jpegs" ? { jpegDir, jpegPrefix: `k${mine}` } : {};
      handle.post({ type: "decode", id: mine, req: { path, spec: frameSpec, claim, ...jpegs } });
    });
  try {
    return await fn(decode);
  } finally {
    handle.terminate();
    await Deno.remove(jpegDir, { recursive: true });
  }
}

/** The key samples of `path`'s video track: where their bytes are. */
async function keySamples(path: string) {
  const bytes = await Deno.readFile(path);
  const index = readMp4Index((at, n) => bytes.subarray(at, at + n), bytes.length);
  assert.ok(typeof index !== "string", String(index));
  const track = index.tracks[0];
  assert.ok(Array.isArray(track.keys));
  return { bytes, track, keys: track.keys };
}

Deno.test({
  name: "index path: alone, shared and with JPEGs, the same keyframes and pixels",
  ...WORKERS,
  async fn() {
    const path = await fixture("index_runs.mp4", spec);
    const { keys } = await keySamples(path);
    await withDecoder(async (decode) => {
      const batched = await decode(path, "alone");
      const shared = await decode(path, "shared");
      const single = await decode(path, "jpegs");
      assert.equal(batched.path, "index");
      assert.equal(batched.frames.length, 20);
      assert.deepEqual(batched.frames.map((f) => f.index), keys.map((_, i) => i));
      assert.deepEqual(batched, single);
      assert.deepEqual(shared, single);
      // The same stream in Matroska, read by its clusters, alone or shared: the same pictures at
      // the same pts.
      const mkv = await decode(await fixture("index_runs.mkv", spec), "alone");
      assert.equal(mkv.path, "index");
      assert.deepEqual(mkv.frames, batched.frames);
      const mkvShared = await decode(await fixture("index_runs.mkv", spec), "shared");
      assert.deepEqual(mkvShared.frames, batched.frames);
    });
  },
});

Deno.test({
  name: "index path: a damaged sample is noted, the rest decode, whichever way",
  ...WORKERS,
  async fn() {
    const path = await fixture("index_runs.mp4", spec);
    const { bytes, keys } = await keySamples(path);
    const damaged = bytes.slice();
    // Key 3: its slice data scrambled past the headers; key 7: its slice data all zeros.
    const scramble = (k: number, fill: (i: number) => number) => {
      const { offset, size } = keys[k];
      for (let i = offset + Math.floor(size / 3); i < offset + size; i++) damaged[i] = fill(i);
    };
    scramble(3, (i) => (i * 151 + 7) & 0xff);
    scramble(7, () => 0);
    const copy = await Deno.makeTempFile({ suffix: ".mp4" });
    try {
      await Deno.writeFile(copy, damaged);
      await withDecoder(async (decode) => {
        const batched = await decode(copy, "alone");
        const shared = await decode(copy, "shared");
        const single = await decode(copy, "jpegs");
        const noted = batched.corrupt.map((c) => c.index);
        assert.ok(noted.includes(3) && noted.includes(7), JSON.stringify(batched.corrupt));
        assert.ok(batched.frames.length >= 16, `${batched.frames.length} frames`);
        assert.deepEqual(batched, single);
        assert.deepEqual(shared, single);
      });
    } finally {
      await Deno.remove(copy);
    }
  },
});
