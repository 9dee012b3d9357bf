/**
 * `deno task bench:keyframes`: does vx read only the keyframes? `vx fast --task keyframes` and
 * `vx probe` against Debian's ffmpeg/ffprobe CLI on the same files, in one run, as ratios, so
 * the figures mean the same on any machine:
 *
 * 1. A large 1080p H.264 MP4 (40 keyframes whose packets are ~1.7% of its bytes, as in the
 *    8.3 GB file of the issue with ~3.5 MB of key packets), made once under `.cache/bench/`:
 *    vx fast against `ffmpeg -skip_frame nokey` (reads and parses every packet),
 *    `ffmpeg -discard:v nokey` with and without `-threads 1` (the demuxer drops non-key packets),
 *    the bytes vx read against the file's size, and `vx probe` against ffprobe's packet listing.
 * 2. The 20-keyframe 720p clip of `bench/run.ts`: a cold vx fast against `-discard:v nokey` and
 *    `-skip_frame nokey`.
 * 3. Open against closed GOPs (the same content with 3 B-frames): vx fast on each, and the read
 *    path (`index` | `skip` | `exact`) each run's `--debug` trace names.
 * 4. With `--containers` only (it adds minutes at 2 GiB, and twice the file on disk): does seeking
 *    from indexed keyframe to keyframe beat reading through, in containers whose demuxer ignores
 *    NONKEY? The large file stream-copied (video only) to Matroska (Cues) and AVI (idx1), cached
 *    next to it; native ffmpeg measures, having the same demuxers as ffmpeg.wasm. Per container:
 *    `-skip_frame nokey` reading through; the same with `-discard:v nokey` (read everything
 *    anyway?); one `ffmpeg -ss T -frames:v 1` per keyframe, their times summed (each a cold
 *    start); the same seeks in one process, `ffprobe -read_intervals T%+#1,…` decoding the frame
 *    at each T, as vx would seek inside one ffmpeg.wasm; and ffprobe's packet listing, what the
 *    keyframe list costs without an index reader. Bytes read come from one more run of each
 *    under `strace -P <file>` (sum of read() returns; "n/a" without strace). Exactness: for
 *    every keyframe, the frame `-ss T -copyts … -f framemd5` decodes must have pts T and the md5
 *    of the matching keyframe of a full decode of the MP4 (`select='eq(key,1)'`, cached); and
 *    `-read_intervals` must give one key frame at each T. The file repeats one GOP, so all its
 *    keyframes share one md5: the md5 shows a whole keyframe came out, the pts shows which.
 * 5. Also with `--containers`: vx on the same content in each container, by that container's own
 *    index: the MP4, Matroska (Cues), AVI (OpenDML above 1 GiB), fragmented MP4
 *    (`frag_keyframe`), the first 20 s written to a pipe as Matroska (no Cues), and the Matroska
 *    file by URL from a range server in this process; against vx on the MP4 and native
 *    `-skip_frame nokey` on the same file, with the share of the file read (or fetched), the
 *    index `--debug` names, and whether the records' pts are ffprobe's key packets, one for one.
 *
 * Every process is cold; variants run interleaved (A B C … A B C …) so drift hits all; wall time,
 * median (min–max). Every vx fast run writes a `--debug` trace, whose `vx.files[0]` gives
 * `bytesRead`, `path` and `pathReason` ("n/a" when the trace has none).
 *
 * Prints the tables; with `--write`, also rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:keyframes [--gib N] [--runs N] [--containers] [--write]
 *   --gib         size of the large file in GiB (default 2; 0.15 to 7)
 *   --runs        runs of each variant (default 3)
 *   --containers  also run section 4
 *
 * @module
 */

import { stats, writeSection } from "./measure.ts";
import { CACHE, clip720p, ROOT } from "./inputs.ts";
import { serveFile } from "./range_server.ts";

const GIB = 2 ** 30;
const MIB = 2 ** 20;

function flag(name: string, fallback: number): number {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Number(Deno.args[at + 1]) : fallback;
}
const gib = flag("--gib", 2);
const RUNS = flag("--runs", 3);
const WRITE = Deno.args.includes("--write");
const CONTAINERS = Deno.args.includes("--containers");
// With noise on every frame, x264's keyframes span ~55 KB (qp 51) to ~3.2 MB (qp 0) at 1080p,
// so 40 of them at 1.7% make ~0.13 to ~7.6 GiB.
if (!(gib >= 0.15 && gib <= 7) || !(Number.isInteger(RUNS) && RUNS >= 1)) {
  console.error(
    "usage: bench/keyframes.ts [--gib 0.15..7] [--runs N>=1] [--containers] [--write]",
  );
  Deno.exit(2);
}
/** Keyframes in the large file, and the share of its bytes their packets take. */
const KEYFRAMES = 40;
const KEY_SHARE = 0.017;
/** A hung run (another engineer's half-done change) fails its variant, not the bench. */
const TIMEOUT_MS = 600_000;
const DENO = Deno.execPath();

await Deno.mkdir(CACHE, { recursive: true });

// ---- Processes ----

/** Runs a tool to completion, quietly; throws with its last stderr lines on failure. */
async function tool(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${tail(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

function tail(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).trim().split("\n").slice(-3).join(" / ");
}

const ffmpeg = (args: string[]) => tool("ffmpeg", ["-v", "error", "-nostdin", "-y", ...args]);

/** Every video packet of `file`: its size and whether it is a key packet. */
async function packets(file: string): Promise<{ size: number; key: boolean }[]> {
  const csv = await tool("ffprobe", [
    ...["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size,flags"],
    ...["-of", "csv=p=0", file],
  ]);
  return csv.trim().split("\n").map((line) => {
    const [size, flags] = line.split(",");
    return { size: Number(size), key: flags.startsWith("K") };
  });
}

/**
 * Wall time of one cold process, stdout to /dev/null as a user's redirect would (not
 * `measure()`: its /proc polling and line capture add nothing to a wall-time ratio).
 */
async function wall(cmd: string, args: string[]): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).output();
  const ms = performance.now() - start;
  if (!out.success) throw new Error(`exit ${out.code}: ${tail(out.stderr)}`);
  return ms;
}

// ---- Inputs ----

interface BigFile {
  path: string;
  bytes: number;
  packets: number;
  keyframes: number;
  keyBytes: number;
  gopFrames: number;
  /** The quantiser it was made with; null when the file was there already. */
  qp: number | null;
}

/** libx264 at a constant quantiser: a frame's size then depends on `qp` alone. */
const x264 = (qp: number, gop: number) => [
  ...["-c:v", "libx264", "-preset", "ultrafast", "-qp", String(qp), "-pix_fmt", "yuv420p"],
  ...["-g", String(gop), "-keyint_min", String(gop), "-sc_threshold", "0", "-bf", "0", "-an"],
];
/** Fresh noise on every frame: P-frames cannot predict it, so they weigh nearly a keyframe. */
const SOURCE = ["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30", "-vf", "noise=alls=60:allf=t+u"];

/** Exits with one line when `CACHE` has less than `need` bytes free for making `path`. */
async function requireFree(path: string, need: number): Promise<void> {
  const free = await freeBytes(CACHE);
  if (free >= need) return;
  console.error(
    `bench: ${path} needs ~${(need / GIB).toFixed(1)} GiB free on ${CACHE}, which has ` +
      `${(free / GIB).toFixed(1)} GiB; free space, or choose a smaller --gib`,
  );
  Deno.exit(1);
}

/** Mean key and non-key packet sizes of a short 1080p sample encoded at `qp`. */
async function sample(qp: number, dir: string): Promise<{ key: number; p: number }> {
  const out = `${dir}/sample.mp4`;
  await ffmpeg([...SOURCE, "-frames:v", "10", ...x264(qp, 10), out]);
  const ps = await packets(out);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    key: mean(ps.filter((p) => p.key).map((p) => p.size)),
    p: mean(ps.filter((p) => !p.key).map((p) => p.size)),
  };
}

async function freeBytes(dir: string): Promise<number> {
  const out = await tool("df", ["-B1", "--output=avail", dir]);
  return Number(out.trim().split("\n").at(-1));
}

/**
 * The large file: one GOP encoded natively, stream-copied 40 times. The quantiser is bisected
 * so that 40 keyframes at 1.7% make the size asked for; the GOP's length then sets the share.
 */
async function bigFile(): Promise<BigFile> {
  const path = `${CACHE}1080p_${KEYFRAMES}kf_${gib}gib.mp4`;
  const meta = `${path}.json`;
  try {
    const info: BigFile = JSON.parse(await Deno.readTextFile(meta));
    if (info.bytes === (await Deno.stat(path)).size) return { ...info, path };
  } catch { /* not made yet, or made by hand */ }
  try {
    await Deno.stat(path);
    return await describe(path, null);
  } catch { /* not made yet */ }

  const target = gib * GIB;
  await requireFree(path, target * 1.1 + 512 * MIB);
  console.error(`bench: making ${path} (~${gib} GiB)`);
  const dir = await Deno.makeTempDir({ dir: CACHE, prefix: "big-" });
  let qp: number;
  try {
    const wantKey = (target * KEY_SHARE) / KEYFRAMES;
    // Keyframe size falls as qp rises: the smallest qp whose keyframe fits, or the one above.
    let lo = 0;
    let hi = 51;
    const seen = new Map<number, { key: number; p: number }>();
    const at = async (qp: number) => seen.get(qp) ?? seen.set(qp, await sample(qp, dir)).get(qp)!;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((await at(mid)).key <= wantKey) hi = mid;
      else lo = mid + 1;
    }
    qp = lo > 0 && Math.abs((await at(lo - 1)).key - wantKey) <
        Math.abs((await at(lo)).key - wantKey)
      ? lo - 1
      : lo;
    const { key, p } = await at(qp);
    const gop = Math.max(2, Math.round(1 + (key / KEY_SHARE - key) / p));
    const one = `${dir}/gop.mp4`;
    await ffmpeg([...SOURCE, "-frames:v", String(gop), ...x264(qp, gop), one]);
    const list = `${dir}/list.txt`;
    await Deno.writeTextFile(list, `file '${one}'\n`.repeat(KEYFRAMES));
    const part = `${dir}/big.mp4`;
    await ffmpeg(
      ["-f", "concat", "-safe", "0", "-i", list, "-c", "copy", "-movflags", "+faststart", part],
    );
    await Deno.rename(part, path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const info = await describe(path, qp);
  if (info.keyframes !== KEYFRAMES) {
    throw new Error(`${path}: ${info.keyframes} keyframes, want ${KEYFRAMES}`);
  }
  await Deno.writeTextFile(meta, JSON.stringify(info));
  return info;
}

/** Size and key packets of `path`, from ffprobe's packet listing. */
async function describe(path: string, qp: number | null): Promise<BigFile> {
  const ps = await packets(path);
  const keys = ps.filter((p) => p.key);
  return {
    path,
    bytes: (await Deno.stat(path)).size,
    packets: ps.length,
    keyframes: keys.length,
    keyBytes: keys.reduce((a, p) => a + p.size, 0),
    gopFrames: Math.round(ps.length / Math.max(1, keys.length)),
    qp,
  };
}

/** 20 s of moving 720p30 with 3 B-frames and a keyframe a second, open or closed GOPs. */
async function clipGop(open: boolean): Promise<string> {
  const video = `${CACHE}720p_20kf_bf3_${open ? "open" : "closed"}.mp4`;
  try {
    await Deno.stat(video);
    return video;
  } catch { /* make it */ }
  console.error("bench: making", video);
  const part = `${video}.part.mp4`;
  await ffmpeg([
    ...["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30", "-frames:v", "600"],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    ...["-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "3"],
    ...(open ? ["-x264-params", "open-gop=1"] : []),
    ...["-an", "-movflags", "+faststart", part],
  ]);
  const hasB = await tool("ffprobe", [
    ...["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=has_b_frames"],
    ...["-of", "csv=p=0", part],
  ]);
  if (Number(hasB.trim()) < 1) throw new Error(`${part}: no B-frames`);
  await Deno.rename(part, video);
  return video;
}

// ---- Variants ----

/** What `--debug`'s `vx.files[0]` says about the read, where vx records it. */
interface FileTrace {
  records?: number;
  bytesRead?: number;
  path?: string;
  index?: string;
  pathReason?: string;
  network?: { requests: number; bytesFetched: number };
}

interface Variant {
  /** As the table shows it. */
  name: string;
  cmd: string;
  args: string[];
  /** Where its `--debug` trace goes, for vx fast. */
  trace?: string;
  /** Runs of `cmd` one after another, their times summed, instead of `args` alone. */
  sequence?: string[][];
}

interface Result {
  ms: number[];
  error?: string;
  trace?: FileTrace;
}

const traceDir = await Deno.makeTempDir({ prefix: "vx-bench-keyframes-" });
let traces = 0;
const vxFast = (name: string, file: string): Variant => {
  const trace = `${traceDir}/${traces++}.json`;
  return {
    name,
    cmd: DENO,
    args: ["run", "-A", ROOT + "cli.ts", "fast", file, "--task", "keyframes", `--debug=${trace}`],
    trace,
  };
};
const native = (name: string, cmd: string, args: string[]): Variant => ({
  name,
  cmd,
  args: [...(cmd === "ffmpeg" ? ["-nostdin"] : []), "-v", "error", ...args],
});
const nullOut = ["-map", "0:v", "-f", "null", "-"];

async function readTrace(path: string): Promise<FileTrace | undefined> {
  try {
    const file = JSON.parse(await Deno.readTextFile(path))?.vx?.files?.[0];
    return file && typeof file === "object" ? file : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `variants` interleaved, `RUNS` rounds; a variant that fails is dropped, not fatal. */
async function rounds(label: string, variants: Variant[]): Promise<Map<string, Result>> {
  const results = new Map(variants.map((v) => [v.name, { ms: [] } as Result]));
  for (let i = 0; i < RUNS; i++) {
    for (const v of variants) {
      const r = results.get(v.name)!;
      if (r.error) continue;
      if (v.trace) await Deno.remove(v.trace).catch(() => {});
      try {
        let ms = 0;
        for (const args of v.sequence ?? [v.args]) ms += await wall(v.cmd, args);
        r.ms.push(ms);
        if (v.trace) r.trace = await readTrace(v.trace);
        console.error(`${label} run ${i + 1}/${RUNS} ${v.name}: ${r.ms.at(-1)!.toFixed(0)} ms`);
      } catch (e) {
        r.error = (e instanceof Error ? e.message : String(e)).slice(0, 200);
        console.error(`${label} ${v.name}: FAILED ${r.error}`);
      }
    }
  }
  return results;
}

// ---- Containers (--containers) ----

/** The large file stream-copied into a container whose demuxer seeks by its own index. */
interface Remux {
  /** As the tables show it. */
  name: string;
  path: string;
  bytes: number;
  /** Size of the MP4 it was copied from: a remade MP4 remakes it. */
  from: number;
  /** Keyframe times as ffprobe prints them: `pts_time`, or `dts_time` (AVI has no pts). */
  keys: string[];
}

const KEY_LIST = [
  ...["-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags"],
  ...["-of", "compact=p=0"],
];

/** The keyframe times of `file`, from ffprobe's packet listing (which reads all of it). */
async function keyTimes(file: string): Promise<string[]> {
  const out = await tool("ffprobe", ["-v", "error", ...KEY_LIST, file]);
  return out.trim().split("\n").flatMap((line) => {
    const f = Object.fromEntries(line.split("|").map((kv) => kv.split("=")));
    if (!f.flags?.startsWith("K")) return [];
    return [f.pts_time && f.pts_time !== "N/A" ? f.pts_time : f.dts_time];
  });
}

/**
 * `mp4` copied, video only, to `.${ext}` next to it, once (with `extra` muxer options); with its
 * keyframe list.
 */
async function remux(
  mp4: BigFile,
  ext: string,
  name: string,
  extra: string[] = [],
): Promise<Remux> {
  const path = mp4.path.replace(/\.mp4$/, "") + `.${ext}`;
  const meta = `${path}.json`;
  try {
    const info: Remux = JSON.parse(await Deno.readTextFile(meta));
    if (info.from === mp4.bytes && info.bytes === (await Deno.stat(path)).size) {
      return { ...info, name, path };
    }
  } catch { /* not made yet */ }
  await requireFree(path, mp4.bytes * 1.05 + 512 * MIB);
  console.error(`bench: making ${path}`);
  const part = `${path.slice(0, -ext.length)}part.${ext}`;
  await ffmpeg(["-i", mp4.path, "-map", "0:v", "-c", "copy", ...extra, part]);
  await Deno.rename(part, path);
  const keys = await keyTimes(path);
  if (keys.length !== mp4.keyframes) {
    throw new Error(`${path}: ${keys.length} keyframes, want ${mp4.keyframes}`);
  }
  const info: Remux = { name, path, bytes: (await Deno.stat(path)).size, from: mp4.bytes, keys };
  await Deno.writeTextFile(meta, JSON.stringify(info));
  return info;
}

/**
 * The first `seconds` of `mp4` as a live recorder leaves Matroska: written to a pipe, so with no
 * Cues and sizes left unknown. Made once, next to it.
 */
async function pipedMkv(mp4: BigFile, seconds: number): Promise<Remux> {
  const path = mp4.path.replace(/\.mp4$/, "") + `.first${seconds}s.piped.mkv`;
  const meta = `${path}.json`;
  try {
    const info: Remux = JSON.parse(await Deno.readTextFile(meta));
    if (info.from === mp4.bytes && info.bytes === (await Deno.stat(path)).size) return info;
  } catch { /* not made yet */ }
  console.error(`bench: making ${path}`);
  const out = await Deno.open(path, { write: true, create: true, truncate: true });
  const p = new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-nostdin", "-i", mp4.path, "-t", String(seconds), "-map", "0:v"]
      .concat(["-c", "copy", "-f", "matroska", "pipe:1"]),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await p.stdout.pipeTo(out.writable);
  if (!(await p.status).success) throw new Error(`${path}: ffmpeg failed`);
  const keys = await keyTimes(path);
  const info: Remux = {
    name: `Matroska, no Cues (first ${seconds} s, written to a pipe)`,
    path,
    bytes: (await Deno.stat(path)).size,
    from: mp4.bytes,
    keys,
  };
  await Deno.writeTextFile(meta, JSON.stringify(info));
  return info;
}

/** A decoded frame: its time in seconds and the md5 of its pixels. */
interface Frame {
  t: number;
  md5: string;
}

/** The frames of ffmpeg's `-f framemd5` output. */
function framemd5(out: string): Frame[] {
  const tb = /^#tb 0: (\d+)\/(\d+)/m.exec(out);
  const unit = tb ? Number(tb[1]) / Number(tb[2]) : NaN;
  return out.split("\n").filter((line) => line.trim() && !line.startsWith("#")).map((line) => {
    const [, , pts, , , md5] = line.split(",").map((f) => f.trim());
    return { t: Number(pts) * unit, md5 };
  });
}

/** Every keyframe of the MP4 as a full decode gives it, once (a decode of every frame). */
async function referenceKeyframes(mp4: BigFile): Promise<Frame[]> {
  const path = `${mp4.path}.keyframes.json`;
  try {
    const ref = JSON.parse(await Deno.readTextFile(path));
    if (ref.bytes === mp4.bytes) return ref.frames;
  } catch { /* not made yet */ }
  console.error(`bench: decoding all of ${mp4.path} for its keyframes (once)`);
  const frames = framemd5(
    await ffmpeg([
      ...["-copyts", "-i", mp4.path, "-map", "0:v", "-vf", "select='eq(key,1)'"],
      ...["-fps_mode", "passthrough", "-f", "framemd5", "-"],
    ]),
  );
  if (frames.length !== mp4.keyframes) {
    throw new Error(`${mp4.path}: full decode gave ${frames.length} keyframes`);
  }
  await Deno.writeTextFile(path, JSON.stringify({ bytes: mp4.bytes, frames }));
  return frames;
}

const haveStrace = CONTAINERS && await tool("strace", ["-V"]).then(() => true, () => false);

/**
 * One run of `cmd args`, untimed: its stdout, and the bytes it read from `file` (the sum of
 * what read() and friends returned on it, under `strace -P`; NaN without strace).
 */
async function traced(file: string, args: string[], log: string, cmd = "ffmpeg") {
  if (!haveStrace) return { bytes: NaN, out: await tool(cmd, args) };
  const out = await tool("strace", [
    ...["-f", "-o", log, "-P", await Deno.realPath(file)],
    ...["-e", "trace=read,pread64,readv,preadv", cmd, ...args],
  ]);
  let bytes = 0;
  for (const m of (await Deno.readTextFile(log)).matchAll(/= (\d+)$/gm)) bytes += Number(m[1]);
  return { bytes, out };
}

/** One container's variants; names start with the container's, as `rounds` keys them. */
function containerVariants(c: Remux) {
  const seek = c.keys.map((t) =>
    native("", "ffmpeg", [
      ...["-ss", t, "-i", c.path, "-map", "0:v", "-frames:v", "1", "-f", "null", "-"],
    ]).args
  );
  return {
    readThrough: native(`${c.name} read-through`, "ffmpeg", [
      ...["-skip_frame", "nokey", "-i", c.path, ...nullOut],
    ]),
    discard: native(`${c.name} -discard:v nokey`, "ffmpeg", [
      ...["-skip_frame", "nokey", "-discard:v", "nokey", "-i", c.path, ...nullOut],
    ]),
    seek: { name: `${c.name} seek`, cmd: "ffmpeg", args: seek[0], sequence: seek } as Variant,
    intervals: native(`${c.name} seek, one process`, "ffprobe", [
      ...["-select_streams", "v:0", "-read_intervals", c.keys.map((t) => `${t}%+#1`).join(",")],
      ...["-show_entries", "frame=key_frame,pts_time,pkt_dts_time", "-of", "compact=p=0", c.path],
    ]),
    list: native(`${c.name} key list`, "ffprobe", [...KEY_LIST, c.path]),
  };
}

/** What a container's untimed runs found: bytes read per variant, and the seeks' exactness. */
interface ContainerCheck {
  readThrough: number;
  discard: number;
  /** Summed over the keyframes. */
  seek: number;
  /** `-read_intervals`, in one process. */
  intervals: number;
  /** Seeks by `ffmpeg -ss` that gave the keyframe at T. */
  exact: number;
  /** Whether `-read_intervals` gave one key frame at each T. */
  intervalsExact: boolean;
  wrong: string[];
}

async function checkContainer(c: Remux, ref: Frame[], log: string): Promise<ContainerCheck> {
  const v = containerVariants(c);
  const check: ContainerCheck = {
    readThrough: (await traced(c.path, v.readThrough.args, log)).bytes,
    discard: (await traced(c.path, v.discard.args, log)).bytes,
    seek: 0,
    intervals: NaN,
    exact: 0,
    intervalsExact: false,
    wrong: [],
  };
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-3;
  const got = await traced(c.path, v.intervals.args, log, "ffprobe");
  check.intervals = got.bytes;
  const frames = got.out.split("\n").filter((line) => line.trim()).map((line) =>
    Object.fromEntries(line.split("|").map((kv) => kv.split("=")))
  );
  const at = (f: Record<string, string>) =>
    Number(f.pts_time !== "N/A" ? f.pts_time : f.pkt_dts_time);
  check.intervalsExact = frames.length === c.keys.length &&
    frames.every((f, k) => f.key_frame === "1" && near(at(f), Number(c.keys[k])));
  if (!check.intervalsExact) {
    check.wrong.push(
      `-read_intervals: ${frames.length} frames, ${
        frames.slice(0, 3).map((f) => `${at(f)} s key ${f.key_frame}`).join(", ")
      }…`,
    );
  }
  for (const [k, t] of c.keys.entries()) {
    const { bytes, out } = await traced(c.path, [
      ...["-nostdin", "-v", "error", "-ss", t, "-copyts", "-i", c.path],
      ...["-map", "0:v", "-frames:v", "1", "-f", "framemd5", "-"],
    ], log);
    check.seek += bytes;
    const got = framemd5(out)[0];
    if (got && near(got.t, Number(t)) && near(ref[k].t, Number(t)) && got.md5 === ref[k].md5) {
      check.exact++;
    } else {
      check.wrong.push(`${t} s: got ${got ? `${got.t.toFixed(3)} s ${got.md5}` : "no frame"}`);
    }
  }
  console.error(
    `containers ${c.name}: ${check.exact}/${c.keys.length} seeks exact, -read_intervals ` +
      `${check.intervalsExact ? "exact" : "not exact"}` +
      (check.wrong.length ? ` (${check.wrong.slice(0, 3).join("; ")})` : ""),
  );
  return check;
}

// ---- Runs ----

const big = await bigFile();
const share = big.keyBytes / big.bytes;
console.error(
  `bench: ${big.path}: ${(big.bytes / GIB).toFixed(2)} GiB, ${big.keyframes} keyframes, ` +
    `key packets ${(big.keyBytes / MIB).toFixed(1)} MiB (${(share * 100).toFixed(2)}%)`,
);
const F = big.path;
const largeVariants = [
  native("ffmpeg -skip_frame nokey", "ffmpeg", ["-skip_frame", "nokey", "-i", F, ...nullOut]),
  native("ffmpeg -threads 1 -discard:v nokey -an", "ffmpeg", [
    ...["-threads", "1", "-discard:v", "nokey", "-an", "-i", F, ...nullOut],
  ]),
  native("ffmpeg -discard:v nokey -an", "ffmpeg", [
    ...["-discard:v", "nokey", "-an", "-i", F, ...nullOut],
  ]),
  native("ffprobe packet listing (pts_time,flags)", "ffprobe", [
    ...["-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv", F],
  ]),
  vxFast("vx fast --task keyframes", F),
  { name: "vx probe", cmd: DENO, args: ["run", "-A", ROOT + "cli.ts", "probe", F] },
];
const large = await rounds("1080p", largeVariants);

const c720 = await clip720p();
const smallVariants = [
  vxFast("vx fast --task keyframes", c720),
  native("ffmpeg -discard:v nokey", "ffmpeg", ["-discard:v", "nokey", "-i", c720, ...nullOut]),
  native("ffmpeg -skip_frame nokey", "ffmpeg", ["-skip_frame", "nokey", "-i", c720, ...nullOut]),
];
const small = await rounds("720p", smallVariants);

const gopVariants = [
  vxFast("vx fast --task keyframes, open GOP", await clipGop(true)),
  vxFast("vx fast --task keyframes, closed GOP", await clipGop(false)),
];
const gops = await rounds("gop", gopVariants);

const containers: {
  remux: Remux;
  variants: ReturnType<typeof containerVariants>;
  check: ContainerCheck;
}[] = [];
let containerResults = new Map<string, Result>();
if (CONTAINERS) {
  const remuxes = [
    await remux(big, "mkv", "Matroska (Cues)"),
    await remux(big, "avi", "AVI (idx1)"),
  ];
  const ref = await referenceKeyframes(big);
  if (!haveStrace) console.error("bench: no strace; bytes read will read n/a");
  for (const c of remuxes) {
    containers.push({
      remux: c,
      variants: containerVariants(c),
      check: await checkContainer(c, ref, `${traceDir}/strace.log`),
    });
  }
  // Interleaved over both containers: A B C … of one, then of the other, each round.
  containerResults = await rounds(
    "containers",
    containers.flatMap((
      { variants: v },
    ) => [v.readThrough, v.discard, v.seek, v.intervals, v.list]),
  );
}
/** vx on the same content in each container, by its own index (`--containers`). */
interface IndexRun {
  remux: Remux;
  variant: Variant;
  /** The native read-through of the same file. */
  native?: Variant;
  /** The input is the file by URL, from a range server on 127.0.0.1. */
  url?: boolean;
  /** Keyframes vx gave whose pts match ffprobe's key list, of how many; or why not checked. */
  exact?: string;
}
let indexRuns: IndexRun[] = [];
let indexResults = new Map<string, Result>();
if (CONTAINERS) {
  const [mkv, avi] = containers.map((c) => c.remux);
  const frag = await remux(big, "frag.mp4", "fragmented MP4 (frag_keyframe)", [
    ...["-movflags", "frag_keyframe+empty_moov"],
  ]);
  const piped = await pipedMkv(big, 20);
  const mp4: Remux = {
    name: "MP4 (moov)",
    path: F,
    bytes: big.bytes,
    from: big.bytes,
    keys: await keyTimes(F),
  };
  const server = serveFile(mkv.path);
  const readThrough = (c: Remux) =>
    native(`ffmpeg -skip_frame nokey: ${c.name}`, "ffmpeg", [
      ...["-skip_frame", "nokey", "-i", c.path, ...nullOut],
    ]);
  indexRuns = [mp4, mkv, { ...avi, name: "AVI (OpenDML)" }, frag, piped].map((c) => ({
    remux: c,
    variant: vxFast(`vx fast: ${c.name}`, c.path),
    native: readThrough(c),
  }));
  indexRuns.push({
    remux: { ...mkv, name: "Matroska by URL (127.0.0.1)" },
    variant: vxFast("vx fast: Matroska by URL", server.url),
    url: true,
  });
  for (const r of indexRuns) r.exact = await exactness(r.variant, r.remux.keys);
  indexResults = await rounds(
    "index",
    indexRuns.flatMap((r) => r.native ? [r.variant, r.native] : [r.variant]),
  );
  await server.close();
}
await Deno.remove(traceDir, { recursive: true });

/** One untimed run of `v`: do its records' pts match `keys` (ffprobe's times), one for one? */
async function exactness(v: Variant, keys: string[]): Promise<string> {
  const out = await new Deno.Command(v.cmd, {
    args: v.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).output();
  if (!out.success) return `failed: ${tail(out.stderr)}`;
  const pts = new TextDecoder().decode(out.stdout).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => typeof r.pts === "number").map((r) => r.pts);
  const want = keys.map(Number);
  const same = pts.filter((t, i) => Math.abs(t - want[i]) < 5e-7).length;
  return pts.length === want.length && same === want.length
    ? `${same}/${want.length}`
    : `**${same}/${want.length}** (${pts.length} records)`;
}

// ---- Report ----

const median = (r: Result | undefined) => r && !r.error ? stats(r.ms).median : NaN;
function cell(r: Result): string {
  if (r.error) return `failed: ${r.error.replaceAll("|", "\\|").slice(0, 80)}`;
  const s = stats(r.ms);
  return `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
}
const na = (x: unknown) => x === undefined || x === null || x === "" ? "n/a" : String(x);
function traceCell(v: Variant, r: Result): string {
  if (!v.trace || r.error) return "";
  if (!r.trace) return "n/a";
  const t = r.trace;
  const read = typeof t.bytesRead === "number" ? `${(t.bytesRead / MIB).toFixed(1)} MiB` : "n/a";
  const why = t.pathReason ? ` (${t.pathReason})` : "";
  return `path ${na(t.path)}${why}; read ${read}; ${na(t.records)} records`;
}
const rows = (input: string, variants: Variant[], results: Map<string, Result>) =>
  variants.map((v) => {
    const r = results.get(v.name)!;
    return `| ${input} | ${v.name} | ${cell(r)} | ${traceCell(v, r)} |`;
  });

type Check = [what: string, value: number, target: number, percent?: boolean];
const L = (name: string) => large.get(name);
const bytesRead = L("vx fast --task keyframes")?.trace?.bytesRead;
const checks: Check[] = [
  [
    "1080p: vx fast / ffmpeg -skip_frame nokey",
    median(L("vx fast --task keyframes")) / median(L("ffmpeg -skip_frame nokey")),
    0.3,
  ],
  [
    "1080p: vx fast / ffmpeg -threads 1 -discard:v nokey",
    median(L("vx fast --task keyframes")) / median(L("ffmpeg -threads 1 -discard:v nokey -an")),
    2.5,
  ],
  [
    "1080p: vx bytes read / file size",
    typeof bytesRead === "number" ? bytesRead / big.bytes : NaN,
    0.05,
    true,
  ],
  [
    "1080p: vx probe / ffprobe packet listing",
    median(L("vx probe")) / median(L("ffprobe packet listing (pts_time,flags)")),
    0.5,
  ],
  [
    "720p: vx fast / ffmpeg -discard:v nokey",
    median(small.get("vx fast --task keyframes")) / median(small.get("ffmpeg -discard:v nokey")),
    3,
  ],
  [
    "720p: vx fast / ffmpeg -skip_frame nokey",
    median(small.get("vx fast --task keyframes")) / median(small.get("ffmpeg -skip_frame nokey")),
    NaN,
  ],
  [
    "open / closed GOP, vx fast",
    median(gops.get("vx fast --task keyframes, open GOP")) /
    median(gops.get("vx fast --task keyframes, closed GOP")),
    1.5,
  ],
];
const show = (x: number, percent = false) =>
  Number.isNaN(x) ? "n/a" : percent ? `${(x * 100).toFixed(2)}%` : x.toFixed(2);
const checkRows = checks.map(([what, value, target, percent]) =>
  `| ${what} | ${show(value, percent)} | ${
    Number.isNaN(target) ? "" : `≤ ${show(target, percent)}`
  } | ${Number.isNaN(target) || Number.isNaN(value) ? "" : value <= target ? "yes" : "**no**"} |`
);

const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
const memGib = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]) /
  2 ** 20;
const ffVersion = /ffmpeg version (\S+)/.exec(await tool("ffmpeg", ["-version"]))?.[1] ?? "?";
const name = (p: string) => p.slice(ROOT.length);
/** Section 4's table and one verdict per container; empty without `--containers`. */
function containerReport(): string[] {
  if (!containers.length) return [];
  const mib = (bytes: number) => Number.isNaN(bytes) ? "n/a" : (bytes / MIB).toFixed(1);
  const lines = containers.map(({ remux: c, variants: v, check }) => {
    const ms = (x: Variant) => median(containerResults.get(x.name));
    const read = ms(v.readThrough);
    const n = c.keys.length;
    const perProcess = ms(v.seek) / read;
    const inProcess = ms(v.intervals) / read;
    const exact = check.exact === n && check.intervalsExact;
    const row = [
      `${c.name}, ${(c.bytes / GIB).toFixed(2)} GiB`,
      ...[v.readThrough, v.discard, v.seek, v.intervals].map((x) =>
        cell(containerResults.get(x.name)!)
      ),
      `${show(perProcess)}; ${show(inProcess)}`,
      [check.readThrough, check.discard, check.seek, check.intervals].map(mib).join(" / "),
      cell(containerResults.get(v.list.name)!),
      `${check.exact}/${n}; ${check.intervalsExact ? "yes" : "**no**"}`,
    ];
    const speed = Number.isNaN(inProcess)
      ? "seek against read-through: n/a (a variant failed)"
      : inProcess < 1
      ? `seek beats read-through by ${(1 / inProcess).toFixed(1)}× in one process`
      : `seek does **not** beat read-through in one process (${show(inProcess)}× its time)`;
    const discard = Number.isNaN(check.discard)
      ? "n/a"
      : `${check.discard >= 0.9 * c.bytes ? "ignored" : "honoured"} (read ${
        show(check.discard / c.bytes, true)
      } of the file)`;
    const verdict =
      `- ${c.name}: ${speed}, reading ${
        show(check.intervals / check.readThrough, true)
      } of its bytes (as ${n} processes: ${show(perProcess)}× its time); ${
        exact ? "exact" : "**not exact**"
      }; ${inProcess < 1 && exact ? "faster and exact" : "not both faster and exact"}. ` +
      `\`-discard:v nokey\` ${discard}; ffprobe's key list takes ${
        show(ms(v.list) / read)
      }× the read-through.`;
    return { row: `| ${row.join(" | ")} |`, verdict };
  });
  return [
    "",
    "### Seeking by index against reading through (`--containers`)",
    "",
    `\`${name(big.path.replace(/\.mp4$/, ".{mkv,avi}"))}\`: the 1080p file stream-copied ` +
    "(`-c copy`, video only). Read-through: `ffmpeg -skip_frame nokey -i F -map 0:v -f null -`; " +
    "discard: the same with `-discard:v nokey`; seek, N processes " +
    `(N = ${big.keyframes}, one per keyframe T): \`ffmpeg -ss T -i F ` +
    "-map 0:v -frames:v 1 -f null -`, summed, each a cold start; seek, one " +
    "process: `ffprobe -select_streams v:0 -read_intervals T1%+#1,T2%+#1,… -show_entries " +
    "frame=…`, which seeks to each T by the index and decodes its frame, as one ffmpeg.wasm " +
    "would. Key list: ffprobe's packet listing (`pts_time,dts_time,flags`), the keyframe times " +
    "without an index reader. MiB read: one untimed run each " +
    `${haveStrace ? "under `strace -P F`" : "(no strace: n/a)"}, N processes summed. ` +
    "Exact: every `-ss T -copyts … -f framemd5` frame has pts T and the md5 of that keyframe " +
    "in a full decode of the MP4; `-read_intervals` gives one key frame at each T.",
    "",
    "| container | read-through ms | -discard:v nokey ms | seek, N processes ms (sum) | " +
    "seek, one process ms | seek / read-through: N processes; one process | MiB read: " +
    "read-through / discard / N processes / one process | key list ms | exact: -ss; " +
    "-read_intervals |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...lines.map((l) => l.row),
    "",
    ...lines.map((l) => l.verdict),
  ];
}

/** The table of vx by each container's index, and its targets; empty without `--containers`. */
function indexReport(): string[] {
  if (!indexRuns.length) return [];
  const vxMp4 = median(indexResults.get(indexRuns[0].variant.name));
  const rowsOut: string[] = [];
  const targets: Check[] = [];
  for (const r of indexRuns) {
    const res = indexResults.get(r.variant.name)!;
    const t = res.trace;
    const bytes = r.url ? t?.network?.bytesFetched : t?.bytesRead;
    const share = typeof bytes === "number" ? bytes / r.remux.bytes : NaN;
    const ms = median(res);
    const nat = r.native ? median(indexResults.get(r.native.name)) : NaN;
    rowsOut.push(
      `| ${r.remux.name}, ${(r.remux.bytes / GIB).toFixed(2)} GiB | ${cell(res)} | ` +
        `${show(ms / vxMp4)} | ${r.native ? cell(indexResults.get(r.native.name)!) : ""} | ` +
        `${show(ms / nat)} | ${show(share, true)}${r.url ? " fetched" : ""} | ` +
        `${na(t?.path)} ${
          t?.index ? `(${t.index})` : t?.pathReason ? `(${t.pathReason})` : ""
        } | ` +
        `${r.exact} |`,
    );
    if (r === indexRuns[0]) continue;
    const piped = r.remux.path.endsWith(".piped.mkv");
    if (!r.url && !piped) targets.push([`${r.remux.name}: vx / vx on the MP4`, ms / vxMp4, 1.5]);
    targets.push([
      `${r.remux.name}: ${r.url ? "bytes fetched" : "bytes read"} / file size`,
      share,
      piped ? 0.1 : 0.05,
      true,
    ]);
  }
  return [
    "",
    "### vx by each container's own index (`--containers`)",
    "",
    "The same 1080p content: the MP4, its `-c copy` remuxes (Matroska with Cues; AVI, over 1 GiB " +
    "so OpenDML; fragmented MP4 with `-movflags frag_keyframe+empty_moov`), its first 20 s " +
    "written to a pipe as Matroska (no Cues, unknown sizes), and the Matroska file by URL from a " +
    "range server in the bench process. vx: `vx fast F --task keyframes --debug`, whose trace " +
    "gives the bytes read (by URL: fetched), the path and the index. Native: `ffmpeg " +
    "-skip_frame nokey -i F -map 0:v -f null -`. Exact: one more run's records against " +
    "ffprobe's key packet list of the same file (pts_time, or dts_time for AVI), one for one.",
    "",
    "| input | vx ms | ÷ vx on the MP4 | native -skip_frame nokey ms | vx ÷ native | read | " +
    "path (index) | exact |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rowsOut,
    "",
    "| target (medians) | value | target | met |",
    "| --- | --- | --- | --- |",
    ...targets.map(([what, value, target, percent]) =>
      `| ${what} | ${show(value, percent)} | ≤ ${show(target, percent)} | ${
        Number.isNaN(value) ? "n/a" : value <= target ? "yes" : "**no**"
      } |`
    ),
    `| every container: exact | ${
      indexRuns.every((r) => /^\d+\/\d+$/.test(r.exact ?? "")) ? "yes" : "**no**"
    } | all | |`,
  ];
}

const table = [
  "## keyframes (`deno task bench:keyframes`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}, ${memGib.toFixed(0)} GiB; ` +
  `Deno ${Deno.version.deno}, ffmpeg ${ffVersion} (Debian). ` +
  `Date: ${new Date().toISOString().slice(0, 10)}. ${RUNS} run${
    RUNS > 1 ? "s" : ""
  } each, interleaved, every process ` +
  "cold; wall ms, median (min–max). Native commands also get `-v error` (ffmpeg `-nostdin`) and " +
  "write to `-f null -` or /dev/null. The first native run warms the page cache; the files fit " +
  "in memory, so the medians are warm-cache reads.",
  "",
  `- 1080p: \`${name(F)}\`, 1080p30 H.264 (x264 ultrafast, qp ${
    na(big.qp)
  }, noise, ${big.gopFrames}-frame GOPs, no ` +
  `B-frames), ${big.packets} packets, ${big.keyframes} keyframes; ` +
  `${(big.bytes / GIB).toFixed(2)} GiB, key packets ${(big.keyBytes / MIB).toFixed(1)} MiB ` +
  `(${(share * 100).toFixed(2)}% of the file).`,
  `- 720p: \`${name(c720)}\`, 20 s 720p30 H.264, 20 keyframes (bench/run.ts's clip).`,
  "- GOP: `.cache/bench/720p_20kf_bf3_{open,closed}.mp4`, 20 s 720p30 testsrc2, `-bf 3`, " +
  "one with `-x264-params open-gop=1`.",
  "",
  "| input | command | wall ms | vx trace (`vx.files[0]`) |",
  "| --- | --- | --- | --- |",
  ...rows("1080p", largeVariants, large),
  ...rows("720p", smallVariants, small),
  ...rows("GOP", gopVariants, gops),
  "",
  "| ratio (medians) | value | target | met |",
  "| --- | --- | --- | --- |",
  ...checkRows,
  ...containerReport(),
  ...indexReport(),
].join("\n");
console.log(table);
if (WRITE) await writeSection(ROOT, "keyframes", table);
