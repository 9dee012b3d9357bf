/**
 * The readers of the other containers' indexes (Matroska/WebM clusters and Cues, fragmented MP4,
 * AVI) against ffprobe's own packet listing: for every structure Debian's ffmpeg writes here, the
 * same key packets, at the same pts, of the same sizes; and a reason, so that the demuxer takes
 * over, for the structures a reader does not reproduce. Needs Debian's `ffmpeg` and `ffprobe`
 * (ignored without them).
 */
import assert from "node:assert/strict";
import { probeFile } from "../mod.ts";
import { containerKeys } from "../src/decode/container_index.ts";
import { readMatroskaKeys } from "../src/decode/mkv_index.ts";
import { fileSource } from "../src/input/source.ts";
import { tempPath, WORKERS } from "./_helpers.ts";

const hasNative = (() => {
  try {
    return ["ffmpeg", "ffprobe"].every((c) =>
      new Deno.Command(c, { args: ["-version"], stdout: "null", stderr: "null" }).outputSync()
        .success
    );
  } catch {
    return false;
  }
})();

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

const SRC = ["-f", "lavfi", "-i", "testsrc2=s=160x96:r=25,format=yuv420p"];
const AUDIO = ["-f", "lavfi", "-i", "sine=r=48000"];
const H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "2"];

const made = new Map<string, Promise<string>>();

/** Makes `name` under the temp dir with Debian's ffmpeg, once per run. */
function make(name: string, args: string[], pipe = false): Promise<string> {
  let path = made.get(name);
  if (!path) made.set(name, path = write(tempPath(`ci-${name}`), args, pipe));
  return path;
}

async function write(path: string, args: string[], pipe: boolean): Promise<string> {
  const base = ["-v", "error", "-y", ...args, "-t", "5"];
  if (!pipe) await run("ffmpeg", [...base, path]);
  else {
    // Written to a pipe, as a live recorder writes: no Cues, sizes left unknown.
    const format = path.endsWith(".webm") ? "webm" : "matroska";
    const bytes = await new Deno.Command("ffmpeg", {
      args: [...base, "-f", format, "pipe:1"],
      stdout: "piped",
      stderr: "null",
    }).output();
    await Deno.writeFile(path, bytes.stdout);
  }
  return path;
}

/** ffprobe's key packets of stream `index`: pts and size, in pts order, one per pts. */
async function nativeKeys(path: string, index: number): Promise<[number, number][]> {
  const out = await run("ffprobe", [
    "-v",
    "error",
    "-select_streams",
    String(index),
    "-show_entries",
    "packet=pts,dts,size,flags",
    "-of",
    "csv=p=0",
    path,
  ]);
  // AVI gives no pts: a stream without B-frames shows each picture at its dts.
  const keys = out.trim().split("\n").map((l) => l.split(","))
    .filter(([, , , flags]) => flags?.startsWith("K"))
    .map(([pts, dts, size]) =>
      [Number(pts === "N/A" ? dts : pts), Number(size)] as [number, number]
    )
    .filter(([pts]) => Number.isFinite(pts))
    .sort((a, b) => a[0] - b[0]);
  return keys.filter((k, i) => i === 0 || k[0] !== keys[i - 1][0]);
}

/** The keys a reader finds in `path` (as `vx probe` streams describe it), or its reason. */
async function readerKeys(path: string) {
  const info = await probeFile(path);
  const stream = info.streams.find((s) => s.index === info.videoStream)!;
  const file = fileSource(path, Deno.openSync(path));
  try {
    const got = containerKeys(file, info.container, stream, info.streams, { total: 0 });
    if (typeof got === "string") return { info, stream, got };
    // Each key packet's bytes lie inside the file.
    for (const k of got.keys) assert.ok(k.offset + k.size <= file.size);
    return { info, stream, got };
  } finally {
    file.close();
  }
}

interface Case {
  name: string;
  file: string;
  args: string[];
  pipe?: boolean;
  /** The index the reader must use. */
  kind: string;
}

const CASES: Case[] = [
  {
    name: "MKV, H.264 B-frames and AAC",
    file: "h264.mkv",
    args: [...SRC, ...AUDIO, ...H264],
    kind: "matroska clusters",
  },
  {
    name: "MKV written to a pipe (no Cues, unknown sizes)",
    file: "pipe.mkv",
    args: [...SRC, ...AUDIO, ...H264],
    pipe: true,
    kind: "matroska clusters",
  },
  {
    name: "MKV, Cues at the front, a cluster every 200 ms",
    file: "front.mkv",
    args: [...SRC, ...H264, "-cues_to_front", "1", "-cluster_time_limit", "200"],
    kind: "matroska clusters",
  },
  {
    name: "WebM, VP9 and Opus",
    file: "vp9.webm",
    args: [
      ...SRC,
      ...AUDIO,
      "-c:v",
      "libvpx-vp9",
      "-g",
      "20",
      "-deadline",
      "realtime",
      "-c:a",
      "libopus",
    ],
    kind: "matroska clusters",
  },
  {
    name: "WebM written to a pipe, VP8",
    file: "pipe-vp8.webm",
    args: [...SRC, "-c:v", "libvpx", "-g", "20", "-deadline", "realtime"],
    pipe: true,
    kind: "matroska clusters",
  },
  {
    name: "MKV, HEVC",
    file: "hevc.mkv",
    args: [
      ...SRC,
      "-c:v",
      "libx265",
      "-x265-params",
      "log-level=none:keyint=30",
      "-preset",
      "ultrafast",
    ],
    kind: "matroska clusters",
  },
  {
    name: "MKV, the larger of two video tracks second",
    file: "two.mkv",
    args: [
      ...SRC,
      "-filter_complex",
      "[0:v]split[a][b];[a]scale=80:48[s]",
      "-map",
      "[s]",
      "-map",
      "[b]",
      ...H264,
    ],
    kind: "matroska clusters",
  },
  {
    name: "fragmented MP4, a fragment per GOP, with audio",
    file: "frag.mp4",
    args: [...SRC, ...AUDIO, ...H264, "-movflags", "frag_keyframe+empty_moov"],
    kind: "mp4 fragments",
  },
  {
    name: "CMAF (negative composition offsets, base at the moof)",
    file: "cmaf.mp4",
    args: [
      ...SRC,
      ...AUDIO,
      ...H264,
      "-movflags",
      "cmaf+frag_keyframe+empty_moov+default_base_moof",
    ],
    kind: "mp4 fragments",
  },
  {
    name: "fragmented MP4, a fragment every 300 ms (not at keyframes)",
    file: "fragdur.mp4",
    args: [...SRC, ...H264, "-movflags", "frag_custom+empty_moov", "-frag_duration", "300000"],
    kind: "mp4 fragments",
  },
  {
    name: "fragmented MP4, a fragment per frame",
    file: "fragframe.mp4",
    args: [...SRC, ...H264, "-movflags", "frag_every_frame+empty_moov"],
    kind: "mp4 fragments",
  },
  {
    name: "AVI, H.264 and MP3",
    file: "h264.avi",
    args: [...SRC, ...AUDIO, ...H264, "-bf", "0", "-c:a", "mp3"],
    kind: "avi idx1",
  },
  {
    name: "AVI, MJPEG (every frame a keyframe)",
    file: "mjpeg.avi",
    args: [...SRC, "-c:v", "mjpeg"],
    kind: "avi idx1",
  },
  {
    name: "AVI with dropped frames (empty chunks)",
    file: "gaps.avi",
    args: [
      "-f",
      "lavfi",
      "-i",
      "testsrc2=s=160x96:r=25,select='not(between(n\\,10\\,40))'",
      "-fps_mode",
      "passthrough",
      ...H264,
      "-bf",
      "0",
    ],
    kind: "avi idx1",
  },
];

for (const c of CASES) {
  Deno.test({
    name: `container index: ${c.name} — ffprobe's key packets, from the ${c.kind}`,
    ignore: !hasNative,
    ...WORKERS,
    async fn() {
      const path = await make(c.file, c.args, c.pipe);
      const { info, stream, got } = await readerKeys(path);
      assert.ok(typeof got !== "string", `refused: ${got}`);
      assert.equal(got.kind, c.kind);
      const native = await nativeKeys(path, stream.index);
      assert.ok(native.length >= 2, `${native.length} keyframes`);
      assert.deepEqual(got.keys.map((k) => [k.ticks, k.size]), native);
      // vx probe lists the same, from the same reader.
      const [a, b] = stream.timeBase.split("/").map(Number);
      assert.deepEqual(
        info.keyframes!.map((k) => k.pts),
        native.map(([t]) => Math.round(t * a / b * 1e6) / 1e6),
      );
    },
  });
}

/** Bytes free where the tests write, from `df` (0 when it cannot say). */
const freeBytes = (() => {
  try {
    const out = new Deno.Command("df", {
      args: ["-B1", "--output=avail", Deno.env.get("TMPDIR") ?? "/tmp"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return Number(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)) || 0;
  } catch {
    return 0;
  }
})();

Deno.test({
  name: "container index: AVI over 1 GB (OpenDML: indx and ix## chunks) — ffprobe's key packets",
  // ffmpeg's AVI muxer writes OpenDML indexes only past 1 GB: the file is 1.1 GB of raw video.
  ignore: !hasNative || freeBytes < 4 * 2 ** 30,
  ...WORKERS,
  async fn() {
    const path = tempPath("ci-odml.avi");
    try {
      await run("ffmpeg", [
        ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=25"],
        ...["-frames:v", "360", "-c:v", "rawvideo", "-pix_fmt", "yuv420p", path],
      ]);
      const { stream, got } = await readerKeys(path);
      assert.ok(typeof got !== "string", `refused: ${got}`);
      assert.equal(got.kind, "avi odml");
      assert.deepEqual(
        got.keys.map((k) => [k.ticks, k.size]),
        await nativeKeys(path, stream.index),
      );
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  },
});

/** `readMatroskaKeys` over `path` in memory, with the stream facts `vx probe` gives. */
async function matroska(path: string, useCues: boolean) {
  const info = await probeFile(path);
  const stream = info.streams.find((s) => s.index === info.videoStream)!;
  const bytes = await Deno.readFile(path);
  const facts = {
    index: stream.index,
    timeBase: stream.timeBase,
    types: info.streams.map((s) => s.type),
  };
  const got = readMatroskaKeys((at, n) => bytes.subarray(at, at + n), bytes.length, facts, useCues);
  return { got, size: bytes.length };
}

Deno.test({
  name: "container index: Matroska Cues, checked block by block, give what the clusters give",
  ignore: !hasNative,
  ...WORKERS,
  async fn() {
    for (const file of ["h264.mkv", "front.mkv", "vp9.webm"]) {
      const c = CASES.find((c) => c.file === file)!;
      const path = await make(c.file, c.args, c.pipe);
      const cues = await matroska(path, true);
      const clusters = await matroska(path, false);
      assert.ok(typeof cues.got !== "string", `${cues.got}`);
      assert.ok(typeof clusters.got !== "string", `${clusters.got}`);
      assert.equal(cues.got.how, "cues", file);
      assert.deepEqual(cues.got.keys, clusters.got.keys, file);
      // The Cues path reads headers and the cued blocks' headers: far less than the clusters'.
      assert.ok(cues.got.bytesRead < clusters.got.bytesRead, file);
      assert.ok(cues.got.bytesRead < cues.size / 20, `${file}: ${cues.got.bytesRead} B`);
    }
    // A cue that points beside its block is a doubt: the clusters are walked instead, and give
    // the same keys.
    const path = await make("h264.mkv", CASES[0].args);
    const bytes = await Deno.readFile(path);
    const cues = bytes.findLastIndex((_, i) =>
      bytes[i] === 0x1c && bytes[i + 1] === 0x53 && bytes[i + 2] === 0xbb && bytes[i + 3] === 0x6b
    );
    const relative = bytes.findIndex((b, i) => i > cues && b === 0xf0 && bytes[i + 1] === 0x81);
    assert.ok(cues > 0 && relative > cues, "the file has Cues with relative positions");
    const moved = bytes.slice();
    moved[relative + 2] += 1;
    const bad = tempPath("ci-badcue.mkv");
    await Deno.writeFile(bad, moved);
    const [fromBad, fromGood] = [await matroska(bad, true), await matroska(path, false)];
    assert.ok(typeof fromBad.got !== "string" && typeof fromGood.got !== "string");
    assert.equal(fromBad.got.how, "clusters");
    assert.deepEqual(fromBad.got.keys, fromGood.got.keys);
    // Without Cues, the clusters are walked.
    const pipe = await matroska(await make("pipe.mkv", CASES[1].args, true), true);
    assert.ok(typeof pipe.got !== "string" && pipe.got.how === "clusters", `${pipe.got}`);
  },
});

Deno.test({
  name: "container index: structures a reader does not reproduce get a reason, not wrong keys",
  ignore: !hasNative,
  ...WORKERS,
  async fn() {
    // A fragmented MP4 whose first fragment's samples are in the moov.
    const path = await make("frag-moov.mp4", [...SRC, ...H264, "-movflags", "frag_keyframe"]);
    const { got } = await readerKeys(path);
    assert.equal(got, "samples both in the moov and in fragments");
    // AVI has no pts, and MPEG-4 with B-frames shows pictures out of decode order.
    const xvid = await make("xvid.avi", [...SRC, "-c:v", "mpeg4", "-bf", "2", "-g", "30"]);
    assert.match(String((await readerKeys(xvid)).got), /no pts/);
    // A Matroska file cut in a cluster: left to the demuxer, which says where it ends.
    const whole = await Deno.readFile(await make("h264.mkv", CASES[0].args));
    const cut = tempPath("ci-cut.mkv");
    await Deno.writeFile(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const file = fileSource(cut, Deno.openSync(cut));
    try {
      const h264 = await probeFile(await make("h264.mkv", CASES[0].args));
      const v = h264.streams.find((s) => s.index === h264.videoStream)!;
      const reason = containerKeys(file, h264.container, v, h264.streams, { total: 0 });
      assert.match(String(reason), /cut or damaged/);
    } finally {
      file.close();
    }
  },
});
