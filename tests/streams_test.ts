/**
 * Which stream vx decodes: the one ffmpeg picks by default, `--stream N` to choose, and a clear
 * refusal for a file whose only picture is cover art. And the check that keeps records in pts
 * order where they are written.
 */

import assert from "node:assert/strict";
import { extract, probeFile } from "../mod.ts";
import { makeVideo, runFFmpeg } from "../src/fixtures/video.ts";
import { type FrameRecord, ptsOrderProblem } from "../src/records.ts";
import { byPts } from "../src/decode/key_order.ts";
import {
  type Call,
  type FileState,
  finishFile,
  newFile,
  settled,
  writeReady,
} from "../src/pipeline/file_order.ts";
import { Channel } from "../src/pipeline/channel.ts";
import { collect, fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";

/** An MKV with a small video stream first and a larger one second (2 and 3 keyframes). */
async function twoVideos(): Promise<string> {
  const small = await fixture("s-small.mp4", {
    codec: "h264",
    width: 64,
    height: 48,
    frames: 20,
    keyint: 10,
  });
  const large = await fixture("s-large.mp4", {
    codec: "h264",
    width: 128,
    height: 96,
    frames: 30,
    keyint: 10,
  });
  const path = tempPath("two-videos.mkv");
  await runFFmpeg({
    args: ["-hide_banner", "-loglevel", "error", "-i", "/a.mp4", "-i", "/b.mp4"]
      .concat(["-map", "0:v", "-map", "1:v", "-c", "copy", "-y", "/out.mkv"]),
    inputs: { "/a.mp4": small, "/b.mp4": large },
    outputs: { "/out.mkv": path },
  });
  return path;
}

Deno.test({
  name: "streams: the largest video by default, --stream N for another; probe lists the same",
  ...WORKERS,
  async fn() {
    const path = await twoVideos();
    const info = await probeFile(path);
    assert.deepEqual(info.streams.map((s) => [s.index, s.width]), [[0, 64], [1, 128]]);
    assert.equal(info.videoStream, 1);
    const byDefault = await collect(extract(path, { task: "keyframes" }));
    assert.deepEqual(byDefault.map((r) => [r.pts, r.width]), [[0, 128], [1, 128], [2, 128]]);
    assert.deepEqual(byDefault.map((r) => r.pts), info.keyframes!.map((k) => k.pts));

    const other = await collect(extract(path, { task: "keyframes", stream: 0 }));
    assert.deepEqual(other.map((r) => [r.pts, r.width]), [[0, 64], [1, 64]]);
    const probed = await probeFile(path, 0);
    assert.deepEqual(other.map((r) => r.pts), probed.keyframes!.map((k) => k.pts));

    const r = await runCli(["fast", path, "--task", "keyframes", "--stream", "5"]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr.trim(),
      `vx: ${path}: stream 5 is not a video stream (video streams: 0, 1)`,
    );
  },
});

Deno.test({
  name: "streams: an audio file whose only picture is cover art: fast is one line, probe lists it",
  ...WORKERS,
  async fn() {
    const cover = tempPath("cover.mkv");
    await makeVideo(cover, {
      codec: "mjpeg",
      width: 64,
      height: 64,
      frames: 1,
    });
    const path = tempPath("song.m4a");
    await runFFmpeg({
      args: ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1"]
        .concat(["-i", "/cover.mkv", "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "copy"])
        .concat(["-disposition:v:0", "attached_pic", "-y", "/out.m4a"]),
      inputs: { "/cover.mkv": cover },
      outputs: { "/out.m4a": path },
    });
    const r = await runCli(["fast", path, "--task", "keyframes"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim(), `vx: ${path}: no video stream (only an attached picture)`);
    assert.equal(r.stdout, "");
    // probe lists what the file holds, and says why nothing would be decoded.
    const p = await runCli(["probe", path]);
    assert.equal(p.code, 0, p.stderr);
    const info = JSON.parse(p.stdout);
    assert.deepEqual(
      info.streams.map((s: { type: string; attachedPic?: boolean }) => [s.type, s.attachedPic]),
      [["audio", undefined], ["video", true]],
    );
    assert.equal(info.noVideo, "no video stream (only an attached picture)");
  },
});

Deno.test("records: one out of pts order is a reason for its file's error, not silent disorder", () => {
  const a: FrameRecord = {
    file: "a.mp4",
    index: 0,
    pts: 2,
    width: 2,
    height: 2,
    task: "keyframes",
    results: [],
  };
  assert.equal(ptsOrderProblem(undefined, a), undefined);
  assert.equal(ptsOrderProblem(a, { ...a, index: 1, pts: 4 }), undefined);
  assert.equal(ptsOrderProblem(a, { ...a, file: "b.mp4", index: 0, pts: 0 }), undefined);
  assert.match(ptsOrderProblem(a, { ...a, index: 1, pts: 0 }) ?? "", /out of pts order/);
  assert.match(ptsOrderProblem(a, { ...a, index: 1, pts: 2 }) ?? "", /keyframe 1 at 2 s/);
});

/** A call of one file, as the scheduler keeps it, for the output functions alone. */
function oneFileCall(streaming: boolean): { file: FileState; written: FrameRecord[] } {
  const call: Call = {
    streaming,
    jpegPrefix: () => "k",
    timeoutMs: 0,
    out: new Channel(),
    left: 1,
    progress: { total: 1, done: 0, failed: 0, keyframes: 0, elapsedMs: 0 },
    t0: 0,
    cancelled: false,
    ended: false,
  };
  return { file: newFile(0, "a.mp4", call), written: [] };
}

const rec = (index: number, pts: number): FrameRecord => ({
  file: "a.mp4",
  index,
  pts,
  width: 2,
  height: 2,
  task: "keyframes",
  results: [],
});

Deno.test("records out of pts order fail their file's status; none of them is written", () => {
  const { file, written } = oneFileCall(false);
  file.records.push(rec(1, 0), rec(0, 0), rec(2, 1));
  file.decoded = 3;
  const status = finishFile(file, (_, r) => written.push(r));
  assert.equal(status.status, "error");
  assert.match(
    status.status === "error" ? status.error : "",
    /keyframe 1 at 0 s .*out of pts order/,
  );
  assert.deepEqual(written, []);
  assert.equal(file.call.progress.failed, 1);
  // In order, they are written and the file is ok.
  const ok = oneFileCall(false);
  ok.file.records.push(rec(1, 0.5), rec(0, 0));
  ok.file.decoded = 2;
  assert.equal(finishFile(ok.file, (_, r) => ok.written.push(r)).status, "ok");
  assert.deepEqual(ok.written.map((r) => r.index), [0, 1]);
});

Deno.test("streaming: the first record out of pts order stops the file's output and says why", () => {
  const { file, written } = oneFileCall(true);
  const write = (_: Call, r: FrameRecord) => written.push(r);
  file.ready.set(0, rec(0, 0));
  file.ready.set(1, rec(1, 0));
  file.ready.set(2, rec(2, 1));
  assert.match(writeReady(file, write) ?? "", /keyframe 1 at 0 s/);
  assert.deepEqual(written.map((r) => r.index), [0]);
  file.ready.set(3, rec(3, 2));
  assert.equal(writeReady(file, write), undefined);
  assert.deepEqual(written.map((r) => r.index), [0], "nothing more of the file is written");
});

Deno.test("key packets sharing a pts count once, the first in file order; pts order otherwise", () => {
  const keys = [
    { ticks: 30, offset: 3 },
    { ticks: 0, offset: 0 },
    { ticks: 30, offset: 4 },
    { ticks: 10, offset: 1 },
    { ticks: 0, offset: 2 },
  ];
  assert.deepEqual(byPts(keys), [
    { ticks: 0, offset: 0 },
    { ticks: 10, offset: 1 },
    { ticks: 30, offset: 3 },
  ]);
});

/** A file of `decoded` keyframes with the records of `have` of them and `inFlight` frames out. */
function decodedFile(decoded: number, have: number, inFlight: number): FileState {
  const { file } = oneFileCall(false);
  file.decoded = decoded;
  for (let i = 0; i < have; i++) file.records.push(rec(i, i));
  file.outstanding = inFlight;
  return file;
}

/** One frame in flight lands, with its record. */
function lands(file: FileState): void {
  file.records.push(rec(file.records.length, file.records.length));
  file.outstanding--;
}

Deno.test("a decoded file settles with every record in and nothing in flight; a count that can never match fails it", () => {
  const whole = decodedFile(3, 2, 1);
  assert.equal(settled(whole), false, "a frame is still in flight");
  lands(whole);
  assert.equal(settled(whole), true);
  assert.equal(whole.error, undefined);
  assert.equal(settled(whole), false, "true the first time only");
  // Records all in, yet a frame still in flight: more records than keyframes are coming.
  const more = decodedFile(2, 2, 1);
  assert.equal(settled(more), false, "it does not leave before its last frame lands");
  lands(more);
  assert.equal(settled(more), true);
  assert.match(more.error ?? "", /3 keyframe records for the 2 keyframes decoded/);
  // Too few, and nothing left to come: it fails now instead of waiting for ever.
  const fewer = decodedFile(3, 1, 0);
  assert.equal(settled(fewer), true);
  assert.match(fewer.error ?? "", /1 keyframe records for the 3 keyframes decoded/);
  assert.equal(finishFile(fewer, () => {}).status, "error");
});
