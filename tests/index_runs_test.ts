/**
 * The index path's runs: consecutive IDR key samples share one ffmpeg run, and give exactly what
 * one run a sample gives (the same keyframes, at the same pts, with the same pixels, and the same
 * notes for damaged samples). Each file is decoded three ways by one decode worker: alone (runs
 * of up to 16 samples), through a claim cell as when workers share it (runs of a claimed chunk at
 * most), and writing JPEGs (one run a sample).
 */

import assert from "node:assert/strict";
import type { DecodeEvent } from "../src/decode/protocol.ts";
import { type CorruptKeyframe, type DecodedFrame, KeyClaims } from "../src/decode/keyframes.ts";
import { readMp4Index } from "../src/decode/mp4_index.ts";
import { isIdrSample, nalLayout } from "../src/decode/nal.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import type { CrashEvent } from "../src/pipeline/workers.ts";
import { decodeWorker, fixture, WORKERS } from "./_helpers.ts";

const spec = { codec: "h264", width: 96, height: 64, frames: 80, keyint: 4, fps: 8 } as const;
const frameSpec = { fit: { kind: "stretch", width: 24, height: 16 }, pixFmt: "rgb24" } as const;

/** Alone, sharing the keys through a claim cell, or writing JPEGs (one run a sample). */
type Way = "alone" | "shared" | "jpegs";

interface Decoded {
  frames: { index: number; pts: number; data: number[] }[];
  corrupt: CorruptKeyframe[];
  runs?: number;
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
            runs: e.runs,
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
  name: "index runs: IDR key samples share runs and give what one run each gives",
  ...WORKERS,
  async fn() {
    const path = await fixture("index_runs.mp4", spec);
    const { bytes, track, keys } = await keySamples(path);
    const layout = nalLayout(track.boxes.stsd);
    assert.deepEqual(layout, { codec: "h264", lengthSize: 4 });
    // libx264's keyframes with closed GOPs are IDR pictures: the shared runs apply.
    for (const k of keys) {
      assert.ok(isIdrSample(bytes.subarray(k.offset, k.offset + k.size), layout));
    }
    await withDecoder(async (decode) => {
      const batched = await decode(path, "alone");
      const shared = await decode(path, "shared");
      const single = await decode(path, "jpegs");
      assert.equal(batched.path, "index");
      assert.equal(batched.frames.length, 20);
      // 20 keys: runs of at most 16 samples; shared, of a claimed chunk; with JPEGs, one each.
      assert.equal(batched.runs, 2);
      assert.equal(shared.runs, 20 / KeyClaims.CHUNK);
      assert.equal(single.runs, 20);
      assert.deepEqual(batched.frames.map((f) => f.index), keys.map((_, i) => i));
      assert.deepEqual(batched, { ...single, runs: batched.runs });
      assert.deepEqual(shared, { ...single, runs: shared.runs });
    });
  },
});

Deno.test({
  name: "index runs: a damaged sample inside a run is noted as it is alone, the rest decode",
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
        // Alone: 0-15 gives 0-2, 3 runs alone, 4-15 gives 4-6, 7 alone, 8-15, then 16-19. Shared,
        // by chunks of 4: 0-3 and 3 alone, 4-7 and 7 alone, then three chunks.
        assert.deepEqual([batched.runs, shared.runs, single.runs], [6, 7, 20]);
        assert.deepEqual(batched, { ...single, runs: batched.runs });
        assert.deepEqual(shared, { ...single, runs: shared.runs });
      });
    } finally {
      await Deno.remove(copy);
    }
  },
});
