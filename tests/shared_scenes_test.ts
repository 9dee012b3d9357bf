/**
 * Two decode workers sharing one file's scene scoring (`--select scenes`): the file is cut into
 * parts at keys, each worker scores its parts and the first two frames past them, and the
 * records are those of one worker, index for index, whichever part a cut falls in: on a part's
 * key (the frame the worker before scores), one frame after it, or within. A worker that traps
 * mid-way takes its parts again and the records are still the same.
 */

import assert from "node:assert/strict";
import type { DecodeEvent } from "../src/decode/decode_messages.ts";
import { type DecodedFrame, KeyClaims } from "../src/decode/keyframes.ts";
import { parseSelection } from "../src/decode/selection.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import { decodeWorker, fixture, WORKERS } from "./_helpers.ts";

const FPS = 10;
/** Six shots of 3.1 s (31 frames): cuts at frames 31, 62, 93, 124 and 155. */
const shots = (keyint: number) =>
  ({
    codec: "h264",
    width: 96,
    height: 64,
    fps: FPS,
    frames: 186,
    keyint,
    bframes: 2,
    shots: 6,
  }) as const;
const frameSpec = { fit: { kind: "stretch", width: 2, height: 2 }, pixFmt: "rgb24" } as const;
const select = parseSelection("scenes+keyframes");

interface Run {
  records: { index: number; pts: number; why?: string; score?: number; key?: boolean }[];
  /** Frames each worker decoded, and whether it retried. */
  decoded: number[];
  retried: boolean[];
}

/** `path`'s scenes from `n` decode workers started together (the first traps after `trap`). */
async function scenes(path: string, n: 1 | 2, trap?: number): Promise<Run> {
  const gate = InflightGate.create(64, 1 << 30);
  const claim = n > 1 ? new SharedArrayBuffer(KeyClaims.BYTES) : undefined;
  const frames: DecodedFrame[] = [];
  const done: (DecodeEvent & { type: "done" })[] = [];
  const failures: string[] = [];
  const workers = await Promise.all(Array.from({ length: n }, () =>
    decodeWorker(gate, (e) => {
      if (e.type === "frame") {
        frames.push(e.frame);
        gate.release(e.frame.data.byteLength);
      } else if (e.type === "done") done.push(e);
      else if (e.type === "error" || e.type === "crash") failures.push(e.message);
    })));
  try {
    workers.forEach((w, i) =>
      w.post({
        type: "decode",
        id: i,
        req: {
          path,
          spec: frameSpec,
          select,
          claim,
          joining: i > 0,
          trapAfter: i === 0 ? trap : undefined,
        },
      })
    );
    const deadline = Date.now() + 120_000;
    while (done.length < n && failures.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(failures, []);
    assert.equal(done.length, n, "every worker finished");
  } finally {
    for (const w of workers) w.terminate();
  }
  const byId = [...done].sort((a, b) => a.id - b.id);
  return {
    records: frames.sort((a, b) => a.index - b.index)
      .map(({ index, pts, why, score, key }) => ({ index, pts, why, score, key })),
    decoded: byId.map((e) => e.select?.decoded ?? 0),
    retried: byId.map((e) => e.retried !== undefined),
  };
}

for (
  const [keyint, where] of [
    [31, "on parts' keys (frames 62 and 124)"],
    [41, "one frame past a part's key (frame 124, key 123)"],
    [20, "within parts"],
  ] as const
) {
  Deno.test({
    name: `shared scenes: two workers give one worker's records; cuts ${where}`,
    ...WORKERS,
    async fn() {
      const path = await fixture(`shared-scenes-${keyint}.mp4`, shots(keyint));
      const alone = await scenes(path, 1);
      const cuts = alone.records.filter((r) => r.why === "scene").map((r) => r.pts * FPS);
      assert.deepEqual(cuts.map(Math.round), [31, 62, 93, 124, 155]);
      const shared = await scenes(path, 2);
      assert.deepEqual(shared.records, alone.records);
      // Both decoded a share: together every frame once, and a few frames twice (each part's
      // first frames, scored by the worker before).
      assert.ok(shared.decoded.every((n) => n > 30), `decoded ${shared.decoded}`);
      const total = shared.decoded[0] + shared.decoded[1];
      assert.ok(total >= 186 && total <= 186 + 20 * 4, `decoded ${total} in all`);
    },
  });
}

Deno.test({
  name: "shared scenes: a worker that traps mid-way takes its parts again; the same records",
  ...WORKERS,
  async fn() {
    const path = await fixture("shared-scenes-20.mp4", shots(20));
    const alone = await scenes(path, 1);
    const shared = await scenes(path, 2, 2);
    assert.deepEqual(shared.retried, [true, false]);
    assert.deepEqual(shared.records, alone.records);
  },
});
