/**
 * Keyframe decoding: one ffmpeg run that selects exactly the keyframes of a file's first video
 * stream, scales them to a task's input, and hands each one out as soon as it is decoded.
 *
 * Exactly the keyframes: `-skip_frame nokey` lets decoders that honour it (H.264, HEVC) skip
 * the work for other frames, but VP9 and others ignore it and emit every frame, so the
 * `select` filter then keeps only frames the decoder marks as key. `showinfo` after it reports
 * each kept frame's pts and decoded size in the log, which arrives, in order, just before the
 * frame's pixels reach the output device.
 *
 * @module
 */

import {
  type FFmpegCore,
  type LogLine,
  MJPEG_ARGS,
  mountInput,
  mountSink,
  RUNS_PER_CORE,
} from "../../wasm/ffmpeg.ts";
import { now as clock } from "../clock.ts";
import type { FrameSpec } from "../tasks/task.ts";
import { type OutputGeometry, outputGeometry } from "./geometry.ts";
import { type IndexPlan, indexPlan, readIndex, samplesMp4 } from "./mp4_index.ts";
import { isIdrSample, nalLayout } from "./nal.ts";
import { type ByteSource, fileSource, isUrl, readBytes } from "../input/source.ts";
import { concat } from "../bytes.ts";
import { HttpInputError, httpSource } from "../input/http_source.ts";
import { probeMp4 } from "./mp4_probe.ts";
import {
  bestError,
  type KeyPacket,
  keyPacketTicks,
  lastError,
  pickVideo,
  plainReason,
  probe,
  ProbeError,
  type ProbeInfo,
  type StreamInfo,
  ticksToSeconds,
} from "./probe.ts";

/** What to decode and how. */
export interface DecodeRequest {
  path: string;
  spec: FrameSpec;
  /** Also write each keyframe, at source size, as `<jpegDir>/<jpegPrefix>_<index>.jpg`. */
  jpegDir?: string;
  jpegPrefix?: string;
  /** Abort the ffmpeg run after this many ms. */
  timeoutMs?: number;
  /** The video stream to decode, by index; default: the one ffmpeg would pick. */
  stream?: number;
  /**
   * One Int32 cell: the next key sample to take, when several decode workers share a file that
   * takes the index path (each key is decoded on its own, so they split the keys by taking them
   * in turn: see {@linkcode KeyClaims}). Other paths ignore it.
   */
  claim?: SharedArrayBuffer;
  /**
   * This worker joins a file another worker decodes from its index, through `claim`: when the
   * file does not take the index path it decodes nothing.
   */
  help?: boolean;
  /** The file `path` must be, by device and inode, when it is opened (see `vx serve`). */
  identity?: { dev: number; ino: number };
  /**
   * Tests only: the decode worker's first attempt traps (as wasm does) once it has sent this
   * many frames, so that the retry on a fresh core is exercised.
   */
  trapAfter?: number;
}

/**
 * Which key samples of an index-path file a decode worker takes next. Alone, it takes them in
 * order from the first on each attempt (a retry after a trap starts over; the caller skips keys
 * it sent). Sharing a file, it takes {@linkcode KeyClaims.CHUNK} keys at a time from the shared
 * cell, so that consecutive IDR keys can still share an ffmpeg run; a retry first takes again the
 * keys it was handed and had not sent.
 */
export class KeyClaims {
  /** Keys a shared worker claims at once: four 720p keys are ~50 ms of decoding. */
  static readonly CHUNK = 4;
  readonly #cell: Int32Array | undefined;
  #own = 0;
  /** Shared: the rest of the chunk claimed last, keys to take again, and keys handed out. */
  #chunk: number[] = [];
  #again: number[] = [];
  #handed: number[] = [];

  constructor(cell?: SharedArrayBuffer) {
    this.#cell = cell ? new Int32Array(cell) : undefined;
  }

  /** Whether other workers share the file's keys. */
  get shared(): boolean {
    return this.#cell !== undefined;
  }

  /** A new attempt at the file; keys below `sent` are done. */
  restart(sent: number): void {
    if (!this.#cell) {
      this.#own = 0;
      return;
    }
    this.#again = [...this.#again, ...this.#handed.filter((k) => k >= sent)].sort((a, b) => a - b);
    this.#handed = [];
  }

  /** The next key's index (at or past the key count: none left). */
  next(): number {
    if (!this.#cell) return this.#own++;
    const key = this.#again.shift() ?? this.#chunk.shift() ?? this.#claim();
    this.#handed.push(key);
    return key;
  }

  /** Takes `index` when it is the next key this worker has (without claiming more); else false. */
  nextIf(index: number): boolean {
    if (!this.#cell) return this.#own === index && (this.#own++, true);
    const from = this.#again.length > 0 ? this.#again : this.#chunk;
    if (from[0] !== index) return false;
    from.shift();
    this.#handed.push(index);
    return true;
  }

  #claim(): number {
    const first = Atomics.add(this.#cell!, 0, KeyClaims.CHUNK);
    for (let k = 1; k < KeyClaims.CHUNK; k++) this.#chunk.push(first + k);
    return first;
  }
}

/** One decoded keyframe. `data` owns its buffer, so it can be transferred. */
export interface DecodedFrame {
  index: number;
  pts: number;
  srcWidth: number;
  srcHeight: number;
  width: number;
  height: number;
  data: Uint8Array<ArrayBuffer>;
  image?: string;
  /**
   * {@linkcode clock} times: decoding this frame began (after the previous frame left), the
   * decoder handed it to the filters (`showinfo`), and its scaled pixels were complete. Reading
   * and demuxing interleave with decoding inside one ffmpeg call, so the first interval covers
   * read, demux and decode together; the second is scaling, letterboxing and pixel format.
   */
  decodeStart: number;
  filterStart: number;
  decodeEnd: number;
  /** Bytes read from the file, and ms spent reading them, since the previous frame was done. */
  readBytes: number;
  readMs: number;
}

/** A keyframe the decoder reported errors in: not emitted, reported instead. */
export interface CorruptKeyframe {
  index: number;
  pts: number;
  reason: string;
}

/**
 * How a decode went. What it handed out is what `emit` and `onCorrupt` were given: the caller
 * counts those (a decode worker counts them across a retry, which hands out only the rest).
 */
export interface DecodeSummary {
  stream: StreamInfo;
  probe: ProbeInfo;
  /** {@linkcode clock} times of the probe that precedes decoding. */
  probeStart: number;
  probeEnd: number;
  /** Set when skipping non-key frames was not exact for this file: why it was decoded whole. */
  exact?: string;
  /**
   * How the keyframes were found: `index`, only the key samples an MP4/MOV index points to, each
   * decoded on its own; `skip`, every packet demuxed and the decoder skipping non-key frames;
   * `exact`, every frame decoded (see `exact` for why).
   */
  path: DecodePath;
  /** Why the index was not used (`skip` and `exact`). */
  pathReason?: string;
  /** Bytes read from the input file, for the probe, the index and the decode together. */
  bytesRead: number;
  /**
   * ffmpeg runs the index path made (several IDR key samples share one, others have one each);
   * undefined on the other paths (one run, or two when the exact way follows).
   */
  runs?: number;
  /** For a URL: HTTP requests made, bytes fetched and ms waiting for them. */
  network?: { requests: number; bytes: number; waitMs: number };
}

/** How a file's keyframes were found; see {@linkcode DecodeSummary}. */
export type DecodePath = "index" | "skip" | "exact";

/** A file that cannot be decoded; the message names the reason, not the file. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Dimensions above this are refused before decoding: 16384² is ffmpeg's own sanity bound. */
const MAX_SIDE = 16384;

let runs = 0;

const SHOWINFO = /\bn:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:(\S+)\s.*?\bs:(\d+)x(\d+)/;
/** Decoder complaints that mean the picture it is working on is damaged. */
const DECODE_ERROR =
  /error while decoding|concealing|corrupt|invalid|illegal|overread|out of range|damaged|missing/i;
/** Demuxer complaints that mean the file ends before its own index says. */
const TRUNCATED = /partial file|corrupt input packet|Packet corrupt|truncat|End of file/i;
/** Codecs the build recognises but cannot decode in software. */
const UNDECODABLE: Readonly<Record<string, string>> = {
  av1: "cannot decode av1 video: this ffmpeg.wasm build has no software AV1 decoder",
};
/** `-debug_ts`: a packet about to be decoded, by stream index and pts (`NOPTS` when none). */
const PACKET = /^demuxer\+ffmpeg -> ist_index:(\d+) type:\w+ pkt_pts:(\S+)/;
/** `-dump`: each packet's stream, then its key flag, printed before its `-debug_ts` line. */
const DUMP_STREAM = /^stream #(\d+):/;
const DUMP_KEY = /^\s*keyframe=(\d)/;
const TIMEBASE = /Parsed_showinfo.*config in time_base:\s*(\d+)\/(\d+)/;

/**
 * Decodes the keyframes of `req.path` with `core`, calling `emit` for each in pts order while
 * ffmpeg still runs. `emit` may block (for backpressure). Throws {@linkcode DecodeError} when
 * the file cannot be decoded.
 *
 * The keyframes are the key packets of the video stream, as `probe` lists them. The fast way
 * decodes only those (`-skip_frame nokey`), and checks, frame by frame, that what comes out is
 * each key packet in turn at its pts. Where a decoder does not skip exactly (H.264 open GOPs with
 * B-frames come out reversed, with one missing; MPEG-4 part 2 in AVI loses its first keyframe),
 * or a key packet carries no pts, it stops at the first wrong frame and the rest of the file is
 * decoded the exact way: every frame, keeping those at the key packets' pts.
 *
 * `fresh`, when given, replaces a core that has made {@linkcode RUNS_PER_CORE} runs with a fresh
 * instance between keyframes (the index path runs ffmpeg once a keyframe).
 */
export async function decodeKeyframes(
  core: FFmpegCore,
  req: DecodeRequest,
  emit: (frame: DecodedFrame) => void,
  onCorrupt: (note: CorruptKeyframe) => void = () => {},
  fresh?: () => Promise<FFmpegCore>,
  claims: KeyClaims = new KeyClaims(),
  onIndexed?: (keys: number) => void,
): Promise<DecodeSummary> {
  const file = openInput(req.path);
  if (req.identity && !sameFile(file, req.identity)) {
    file.close();
    throw new DecodeError("the file changed between its check and its opening (refused)");
  }
  const inPath = `/in_${runs++}`;
  let unmount: (() => void) | undefined;
  const read = { bytes: 0, ms: 0, total: 0 };
  /** Mounts the input afresh; `signal` ends its reads. */
  const mount = (signal?: AbortSignal) => {
    unmount?.();
    unmount = mountInput(core, inPath, file, (bytes, ms) => {
      read.bytes += bytes;
      read.ms += ms;
      read.total += bytes;
    }, signal);
  };
  try {
    mount();
    const probeStart = clock();
    let info: ProbeInfo;
    let stream: StreamInfo;
    // An MP4's index answers what ffmpeg's probe would, without a probe run (~60 ms at 720p).
    const index = readIndex(file, read);
    const indexed = typeof index === "string" ? index : probeMp4(index);
    try {
      info = typeof indexed === "string" ? probe(core, inPath) : indexed;
      stream = pickVideo(info.streams, req.stream);
    } catch (e) {
      if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
      throw e;
    }
    if (UNDECODABLE[stream.codec]) throw new DecodeError(UNDECODABLE[stream.codec]);
    let { width: sw = 0, height: sh = 0 } = stream;
    if (!(sw > 0 && sh > 0)) throw new DecodeError(`video stream has no size (${stream.codec})`);
    if (sw > MAX_SIDE || sh > MAX_SIDE) {
      throw new DecodeError(`video dimensions ${sw}x${sh} exceed ${MAX_SIDE}x${MAX_SIDE}`);
    }
    // ffmpeg rotates the picture upright before our filters run.
    if (stream.rotation === 90 || stream.rotation === 270) [sw, sh] = [sh, sw];
    const geom = outputGeometry(req.spec, sw, sh);
    const probeEnd = clock();

    const out = new Output(req, emit, onCorrupt);
    const ctx: RunContext = { core, req, inPath, stream, geom, sw, sh, read, out };
    const started = performance.now();
    const plan = indexPlan(index, info.container, stream);
    let exact: string | undefined;
    let indexRuns: number | undefined;
    if (typeof plan !== "string") {
      onIndexed?.(plan.keys.length);
      indexRuns = await runIndexed(ctx, file, plan, started, claims, fresh);
    } else if (!req.help) exact = runSkipping(ctx, mount);
    // Sharing the keys, this worker sees some of them: the scheduler judges the whole file.
    if (!claims.shared && out.emitted === 0 && out.corrupt.length > 0) {
      throw new DecodeError(`every keyframe is damaged (${out.corrupt[0].reason})`);
    }
    return {
      stream,
      probe: info,
      probeStart,
      probeEnd,
      exact,
      path: typeof plan !== "string" ? "index" : exact === undefined ? "skip" : "exact",
      pathReason: typeof plan === "string" ? plan : undefined,
      bytesRead: read.total,
      runs: indexRuns,
      network: file.network && { ...file.network },
    };
  } finally {
    try {
      unmount?.();
    } catch { /* already gone */ }
    file.close();
  }
}

/**
 * The `skip` way, and `exact` after it when skipping was wrong: returns why it was, if it was.
 * `mount` mounts the input afresh (reads end once its signal is aborted).
 */
function runSkipping(ctx: RunContext, mount: (signal?: AbortSignal) => void): string | undefined {
  const { core, inPath, stream, read } = ctx;
  const abort = new AbortController();
  mount(abort.signal);
  read.bytes = 0;
  read.ms = 0;
  const fast = runOnce(ctx, { kind: "fast", abort });
  if (fast.wrong !== undefined) {
    // What came out before the first wrong frame was right and has gone out; the exact way
    // starts again from the top and hands out only the keyframes after it.
    mount();
    let keys: KeyPacket[];
    try {
      keys = keyPacketTicks(core, inPath, stream);
    } catch (e) {
      if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
      throw e;
    }
    // It hands out the keys after the last one settled, numbered on from it: on a damaged file
    // the fast run's listing (`-dump`) and this one can differ, and a keyframe's index must
    // never go to two pictures, nor one time to two indices.
    const after = ctx.out.lastPts;
    const rest = keys.map((k) => k.ticks).filter((t) => ticksToSeconds(t, stream.timeBase) > after);
    runOnce(ctx, { kind: "exact", keys: rest, base: ctx.out.next });
  }
  return fast.wrong;
}

/** What every run over one file shares. */
interface RunContext {
  core: FFmpegCore;
  req: DecodeRequest;
  inPath: string;
  stream: StreamInfo;
  geom: OutputGeometry;
  sw: number;
  sh: number;
  /**
   * Bytes read from the input and ms spent reading since the last frame, and bytes read in all;
   * the device adds.
   */
  read: { bytes: number; ms: number; total: number };
  out: Output;
}

/**
 * How a run picks keyframes. `fast`: the decoder skips non-key frames and each frame is checked
 * against the key packets demuxed so far; the first wrong one aborts the run. `exact`: every
 * frame is decoded and those at `keys` (pts in the stream's time base, sorted) are kept, as
 * keyframes `base` on.
 */
type Plan =
  | { kind: "fast"; abort: AbortController }
  | { kind: "exact"; keys: number[]; base: number };

/** What one selected frame will become, decided when `showinfo` reports it. */
interface Meta {
  /** Keyframe index, or -1 for a frame that is not handed out. */
  index: number;
  pts: number;
  w: number;
  h: number;
  at: number;
  damage?: string;
}

/**
 * Hands out keyframes and notes in index order across runs: the exact run skips what the fast
 * run already gave, and a keyframe the decoder never produced becomes a note in its place.
 */
class Output {
  /** Indices below this are settled: emitted, or noted as corrupt. */
  next = 0;
  /** The pts of the last keyframe settled, in seconds. */
  lastPts = -Infinity;
  emitted = 0;
  corrupt: CorruptKeyframe[] = [];

  constructor(
    readonly req: DecodeRequest,
    readonly emit: (frame: DecodedFrame) => void,
    readonly onCorrupt: (note: CorruptKeyframe) => void,
  ) {}

  frame(f: DecodedFrame, damage: string | undefined): void {
    if (f.index < this.next) {
      if (f.image !== undefined) Deno.removeSync(f.image);
      return;
    }
    this.next = f.index + 1;
    this.lastPts = f.pts;
    if (damage !== undefined) {
      // A damaged keyframe is reported, never inferred: its pixels are concealment guesses.
      if (f.image !== undefined) Deno.removeSync(f.image);
      this.#noted({ index: f.index, pts: f.pts, reason: damage });
    } else {
      this.emit(f);
      this.emitted++;
    }
  }

  note(n: CorruptKeyframe): void {
    if (n.index < this.next) return;
    this.next = n.index + 1;
    this.lastPts = n.pts;
    this.#noted(n);
  }

  #noted(n: CorruptKeyframe): void {
    this.corrupt.push(n);
    this.onCorrupt(n);
  }
}

/** Result of one ffmpeg run; `wrong` says why the fast way was not exact. */
interface RunResult {
  wrong?: string;
}

function runOnce(ctx: RunContext, plan: Plan): RunResult {
  const { core, req, stream, geom, out, read } = ctx;
  const run = runs++;
  const rawPath = `/raw_${run}`;
  const jpgPath = `/jpg_${run}`;
  const unmount: (() => void)[] = [];
  try {
    const metas: Meta[] = [];
    const logs: string[] = [];
    let tb: [number, number] | undefined;
    const [sn, sd] = stream.timeBase.split("/").map(Number);
    /** `showinfo`'s pts in the stream's time base, which is the filter's unless ffmpeg chose. */
    const streamTicks = (n: number) => tb ? Math.round((n * tb[0] * sd) / (tb[1] * sn)) : n;
    // Decoder errors belong to the packet being decoded, which `-debug_ts` names just before
    // (by pts) — not to the frame coming out next, which can be several frames older.
    const decoderLine = new RegExp(`^\\[${stream.codec}\\w* @ `);
    const damaged = new Map<string, string>();
    let packet: string | undefined;
    let truncated: string | undefined;

    // The fast way's check: key packets demuxed and not yet seen decoded, in pts order.
    const waiting: number[] = [];
    let dumpStream = -1;
    let dumpKey = false;
    let wrong: string | undefined;
    let matched = 0;
    let lastKey = -Infinity;
    const fail = (why: string) => {
      if (wrong !== undefined || plan.kind !== "fast") return;
      wrong = why;
      plan.abort.abort();
    };
    const seconds = (ticks: number) => ticksToSeconds(ticks, stream.timeBase);
    // The exact way's keyframes, by pts, and the index of the next one to come.
    const keyIndex = plan.kind === "exact" ? new Map(plan.keys.map((t, i) => [t, i])) : undefined;
    let nextKey = 0;
    const missing = (upTo: number) => {
      if (plan.kind !== "exact") return;
      for (; nextKey < upTo; nextKey++) {
        pending.push({
          note: {
            index: plan.base + nextKey,
            pts: seconds(plan.keys[nextKey]),
            reason: NO_PICTURE,
          },
        });
      }
    };

    core.setLogger((l: LogLine) => {
      const m = l.message;
      if (m.includes("Parsed_showinfo")) {
        const s = SHOWINFO.exec(m);
        if (s) {
          const ticks = /^-?\d+$/.test(s[2]) ? streamTicks(Number(s[2])) : NaN;
          const meta: Meta = {
            index: -1,
            pts: NaN,
            w: Number(s[4]),
            h: Number(s[5]),
            at: clock(),
            damage: damaged.get(s[2]),
          };
          if (plan.kind === "fast") {
            if (wrong !== undefined) { /* aborted: nothing more goes out */ }
            else if (waiting.length > 0 && waiting[0] === ticks) {
              waiting.shift();
              meta.index = matched++;
              meta.pts = seconds(ticks);
            } else {
              fail(
                `a keyframe came out at ${s[3]} s where ${
                  waiting.length ? `${seconds(waiting[0])} s` : "none"
                } was due`,
              );
            }
          } else {
            const k = keyIndex!.get(ticks);
            if (k !== undefined && k >= nextKey) {
              missing(k);
              nextKey = k + 1;
              meta.index = plan.base + k;
              meta.pts = seconds(ticks);
            }
          }
          metas.push(meta);
          return;
        }
        const t = TIMEBASE.exec(m);
        if (t) tb = [Number(t[1]), Number(t[2])];
        return;
      }
      const d = DUMP_STREAM.exec(m);
      if (d) {
        dumpStream = Number(d[1]);
        return;
      }
      const k = DUMP_KEY.exec(m);
      if (k) {
        dumpKey = k[1] === "1";
        return;
      }
      const p = PACKET.exec(m);
      if (p) {
        if (Number(p[1]) !== stream.index) return;
        packet = p[2];
        if (plan.kind === "fast" && dumpStream === stream.index && dumpKey) {
          const t = Number(p[2]);
          if (!Number.isInteger(t)) fail("a key packet carries no pts");
          // Before the stream's start: cut by an edit list, never shown.
          else if (stream.startPts !== undefined && t < stream.startPts) { /* not a keyframe */ }
          else if (t <= lastKey) fail("key packets out of pts order");
          else {
            lastKey = t;
            waiting.push(t);
          }
        }
        dumpKey = false;
        return;
      }
      if (
        m.startsWith("demuxer ->") || m.startsWith("decoder ->") ||
        /^(filter|encoder|muxer) /.test(m) || /^\s+(duration|dts|size)=/.test(m)
      ) {
        return;
      }
      if (decoderLine.test(m) && DECODE_ERROR.test(m) && packet !== undefined) {
        damaged.set(packet, `decoder error: ${lastError([m]) ?? m}`);
      } else if (TRUNCATED.test(m)) {
        truncated ??= lastError([m]) ?? m;
      }
      logs.push(m);
      if (logs.length > 200) logs.splice(0, 100);
    });

    const jpegs: (string | null)[] = [];
    /** Frames by their place in this run's output (`n`, which pairs them with JPEGs), and notes. */
    const pending:
      ({ frame: DecodedFrame; n: number; damage?: string } | { note: CorruptKeyframe })[] = [];
    let lastEmit = clock();
    const flush = (final: boolean) => {
      while (pending.length > 0) {
        const item = pending[0];
        if ("note" in item) {
          pending.shift();
          out.note(item.note);
          continue;
        }
        const f = item.frame;
        if (req.jpegDir !== undefined) {
          if (jpegs.length > item.n) f.image = jpegs[item.n] ?? undefined;
          else if (!final) return;
        }
        pending.shift();
        out.frame(f, item.damage);
        lastEmit = clock();
      }
    };

    let frame = new Uint8Array(geom.frameBytes);
    let filled = 0;
    let produced = 0;
    unmount.push(mountSink(core, rawPath, (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(chunk.length - at, geom.frameBytes - filled);
        frame.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === geom.frameBytes) {
          const now = clock();
          const meta = metas[produced];
          if (meta !== undefined && meta.index >= 0) {
            pending.push({
              frame: {
                index: meta.index,
                pts: meta.pts,
                srcWidth: meta.w,
                srcHeight: meta.h,
                width: geom.width,
                height: geom.height,
                data: frame,
                decodeStart: lastEmit,
                // A frame can pass showinfo while the one before waits for its JPEG.
                filterStart: Math.min(Math.max(meta.at, lastEmit), now),
                decodeEnd: now,
                readBytes: read.bytes,
                readMs: read.ms,
              },
              n: produced,
              damage: meta.damage,
            });
            read.bytes = 0;
            read.ms = 0;
            frame = new Uint8Array(geom.frameBytes);
          }
          produced++;
          filled = 0;
          flush(false);
        }
      }
    }));

    const args = ["-hide_banner", "-nostats", "-loglevel", "info"];
    if (plan.kind === "fast") args.push("-skip_frame", "nokey", "-dump");
    // -copyts: the stream's own timestamps, as probe lists them (ffmpeg would start at 0).
    args.push("-copyts", "-debug_ts", "-i", ctx.inPath);
    const select = plan.kind === "fast"
      ? `select='eq(key\\,1)'`
      : `select='${ptsSelect(plan.keys)}'`;
    const chain = `${select},showinfo=checksum=0`;
    if (req.jpegDir !== undefined) {
      const dir = req.jpegDir;
      const prefix = req.jpegPrefix ?? "frame";
      unmount.push(mountJpegSink(core, jpgPath, () => {
        // Named by keyframe index, so a second run neither clashes with nor renumbers the first.
        const meta = metas[jpegs.length];
        if (meta !== undefined && meta.index >= 0) {
          const path = `${dir}/${prefix}_${meta.index}.jpg`;
          jpegs.push(path);
          return path;
        }
        jpegs.push(null);
        return null;
      }, () => flush(false)));
    }
    args.push(...outputArgs(req, geom, `[0:${stream.index}]${chain}`, rawPath, jpgPath));
    core.setTimeout(req.timeoutMs ?? -1);
    const started = performance.now();
    let rc: number;
    try {
      rc = core.exec(...args);
    } finally {
      core.reset();
    }
    flush(true);
    if (wrong !== undefined) return { wrong };
    if (rc !== 0 && req.timeoutMs !== undefined && performance.now() - started >= req.timeoutMs) {
      throw new DecodeError(`timed out after ${req.timeoutMs / 1000} s`);
    }
    if (rc !== 0) {
      throw new DecodeError(plainReason(bestError(logs) ?? `ffmpeg exited with code ${rc}`));
    }
    if (truncated !== undefined) {
      throw new DecodeError(`truncated or damaged file (${truncated})`);
    }
    if (plan.kind === "fast" && waiting.length > 0) {
      return { wrong: `no picture came out for the keyframe at ${seconds(waiting[0])} s` };
    }
    missing(plan.kind === "exact" ? plan.keys.length : 0);
    flush(true);
    if (out.next === 0) {
      throw new DecodeError(
        plainReason(
          lastError(logs.filter((l) => /error|invalid/i.test(l))) ?? "no keyframe decoded",
        ),
      );
    }
    return {};
  } finally {
    unmountAll(unmount);
  }
}

/**
 * The output half of an ffmpeg command: `filtered` (an input pad and its filters) scaled to the
 * task's input as raw frames into `rawPath`, and, with `req.jpegDir`, each frame at source size
 * as JPEG into `jpgPath`.
 */
function outputArgs(
  req: DecodeRequest,
  geom: OutputGeometry,
  filtered: string,
  rawPath: string,
  jpgPath: string,
): string[] {
  const raw = ["-map", "[raw]", "-fps_mode", "passthrough", "-f", "rawvideo"]
    .concat(["-flush_packets", "1", rawPath]);
  if (req.jpegDir === undefined) {
    return ["-filter_complex", `${filtered},${geom.filter}[raw]`, ...raw];
  }
  return [
    "-filter_complex",
    `${filtered},split=2[a][b];[a]${geom.filter}[raw];[b]format=yuvj420p[jpg]`,
    ...raw,
    "-map",
    "[jpg]",
    "-fps_mode",
    "passthrough",
    ...MJPEG_ARGS,
    "-f",
    "image2pipe",
    "-flush_packets",
    "1",
    jpgPath,
  ];
}

/**
 * Makes `fsPath` a device that collects JPEGs as ffmpeg writes them: at the end of each picture
 * it asks `name` where to write it (null: drop it), writes it, and calls `done`.
 */
function mountJpegSink(
  core: FFmpegCore,
  fsPath: string,
  name: () => string | null,
  done: () => void,
): () => void {
  let jpeg: Uint8Array[] = [];
  return mountSink(core, fsPath, (chunk) => {
    jpeg.push(chunk.slice());
    // mjpeg packets end with EOI (FF D9); byte stuffing keeps it out of entropy data.
    if (chunk.length >= 2 && chunk[chunk.length - 2] === 0xff && chunk.at(-1) === 0xd9) {
      const path = name();
      if (path !== null) Deno.writeFileSync(path, concat(jpeg));
      jpeg = [];
      done();
    }
  });
}

/** The most key samples one run of the index path decodes, and the most bytes they may hold. */
const RUN_SAMPLES = 16;
const RUN_BYTES = 16 << 20;

/** A key sample on its way through a run of the index path. */
interface Taken {
  /** Its index among the file's keyframes, and its pts in seconds. */
  index: number;
  pts: number;
  bytes: Uint8Array;
  readMs: number;
}

/**
 * Decodes the key samples of `plan`, each of them at the pts the index gives it and never
 * another. A run of ffmpeg decodes a file made of key samples only (`samplesMp4`), so only
 * their bytes are read:
 *
 * - An IDR sample starts the decoder afresh, so consecutive IDR samples share one run, each
 *   picture named by its pts in that file: a run's start-up, ~5 ms of wasm once V8 has tiered
 *   the core up and far more before, is paid once for up to {@linkcode RUN_SAMPLES} of them.
 *   Measured on the 2-core bench machine (2026-11-30, the 20-keyframe 720p clip, a cold worker):
 *   ~110 ms less than a run each.
 * - Any other key sample (an open-GOP H.264 I-picture with a recovery point, an HEVC CRA) gets a
 *   run of its own, where it decodes on its own; so do all samples when JPEGs are written, and for
 *   a URL (where a run's samples would all be fetched before its first picture). Decode workers
 *   sharing the file run the keys of one {@linkcode KeyClaims.CHUNK} at most.
 *
 * A shared run that does not give each of its pictures in order, undamaged, is not trusted past
 * the first that it did not give: that sample is decoded again in a run of its own, where it is
 * given or noted as it would be alone, and the samples after it share a run again.
 */
async function runIndexed(
  ctx: RunContext,
  file: ByteSource,
  plan: IndexPlan,
  started: number,
  claims: KeyClaims,
  fresh?: () => Promise<FFmpegCore>,
): Promise<number> {
  const { req, stream, geom, out, read } = ctx;
  let core = ctx.core;
  const run = runs++;
  let made = 0;
  const kfPath = `/kf_${run}.mp4`;
  const rawPath = `/raw_${run}`;
  const jpgPath = `/jpg_${run}`;
  const decoderLine = new RegExp(`^\\[${stream.codec}\\w* @ `);
  const layout = req.jpegDir !== undefined || file.network !== undefined
    ? undefined
    : nalLayout(plan.track.boxes.stsd);
  const seconds = (ticks: number) => ticksToSeconds(ticks, stream.timeBase);
  /** Where the raw device's bytes go: the picture being filled, in the run under way. */
  let sink: ((chunk: Uint8Array) => void) | undefined;
  let jpeg: string | null = null;
  let jpegIndex = 0;
  const unmount: (() => void)[] = [];
  /** The output devices, on the core in use. */
  const mountOutputs = () => {
    unmount.push(mountSink(core, rawPath, (chunk) => sink?.(chunk)));
    if (req.jpegDir !== undefined) {
      const dir = req.jpegDir;
      const prefix = req.jpegPrefix ?? "frame";
      unmount.push(mountJpegSink(core, jpgPath, () => {
        return jpeg ??= `${dir}/${prefix}_${jpegIndex}.jpg`;
      }, () => {}));
    }
  };
  const unmountOutputs = () => unmountAll(unmount.splice(0));

  /** Reads key `index`'s sample, or throws when it lies past the end of the file. */
  const take = (index: number): Taken => {
    const key = plan.keys[index];
    const pts = seconds(key.ticks);
    if (key.offset + key.size > plan.size) {
      throw new DecodeError(
        `truncated or damaged file (keyframe ${index} at ${pts} s lies past the end of the file)`,
      );
    }
    const readStart = performance.now();
    const bytes = readBytes(file, key.offset, key.size);
    // The next key sample (this worker's, when it decodes the file alone) is fetched while this
    // one decodes: a URL's round trips hide behind the decoder.
    const next = claims.shared ? undefined : plan.keys[index + 1];
    if (next) file.prefetch?.(next.offset, next.size);
    read.total += bytes.length;
    return { index, pts, bytes, readMs: performance.now() - readStart };
  };

  /**
   * One ffmpeg run over `batch`. Alone, a sample that gives no picture is noted; shared, the
   * samples from the first one the run did not give in order, undamaged, are returned.
   */
  const decode = (batch: Taken[]): Taken[] => {
    let left = -1;
    if (req.timeoutMs !== undefined) {
      left = req.timeoutMs - (performance.now() - started);
      if (left <= 0) throw new DecodeError(`timed out after ${req.timeoutMs / 1000} s`);
    }
    const alone = batch.length === 1;
    core.FS.writeFile(kfPath, samplesMp4(plan.track, batch.map((t) => t.bytes), plan.ftyp));
    /** What `showinfo` said of each picture, in order: its place in `batch` and its size. */
    const shown: { at: number; w: number; h: number; time: number }[] = [];
    /** Alone: the decoder's first complaint. */
    let damage: string | undefined;
    /** Shared: the sample being decoded (its pts in the run's file, from `-debug_ts`). */
    let packet = -1;
    let given = 0;
    let broken = false;
    /** Shared: the first sample a decoder complaint was put down to (`-debug_ts`). */
    let firstDamaged = Infinity;
    let last: DecodedFrame | undefined;
    let decodeStart = clock();
    let frame = new Uint8Array(geom.frameBytes);
    let filled = 0;
    jpeg = null;
    jpegIndex = batch[0].index;
    const logs: string[] = [];
    core.setLogger((l: LogLine) => {
      const m = l.message;
      if (m.includes("Parsed_showinfo")) {
        const s = SHOWINFO.exec(m);
        if (s) shown.push({ at: Number(s[2]), w: Number(s[4]), h: Number(s[5]), time: clock() });
        return;
      }
      const p = alone ? null : PACKET.exec(m);
      if (p) {
        packet = Number(p[2]);
        return;
      }
      if (!alone && /^(demuxer|decoder|filter|encoder|muxer) /.test(m)) return;
      if (decoderLine.test(m) && DECODE_ERROR.test(m)) {
        // Shared, a damaged sample's concealment can reach the next picture (seen with H.264):
        // the run is trusted only up to the sample being decoded, which runs again alone.
        if (alone) damage ??= `decoder error: ${lastError([m]) ?? m}`;
        else firstDamaged = Math.min(firstDamaged, packet);
      }
      logs.push(m);
      if (logs.length > 200) logs.splice(0, 100);
    });
    sink = (chunk) => {
      for (let at = 0; at < chunk.length;) {
        const n = Math.min(chunk.length - at, geom.frameBytes - filled);
        frame.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled < geom.frameBytes) continue;
        filled = 0;
        const info = shown[given];
        // A picture out of order, or not named by its sample: from here the run is not trusted.
        if (
          broken || info === undefined || info.at !== given || given >= batch.length ||
          given >= firstDamaged
        ) {
          broken = true;
          continue;
        }
        const t = batch[given++];
        const f: DecodedFrame = {
          index: t.index,
          pts: t.pts,
          srcWidth: info.w,
          srcHeight: info.h,
          width: geom.width,
          height: geom.height,
          data: frame,
          decodeStart,
          filterStart: Math.max(decodeStart, info.time),
          decodeEnd: clock(),
          readBytes: t.bytes.length,
          readMs: t.readMs,
        };
        // Alone, it waits for the run's end, when its JPEG (if any) is written too.
        if (alone) last = f;
        else out.frame(f, undefined);
        frame = new Uint8Array(geom.frameBytes);
        decodeStart = clock();
      }
    };
    const args = ["-hide_banner", "-nostats", "-loglevel", "info", "-nofind_stream_info"];
    // Shared, each decoder complaint is put down to the sample `-debug_ts` names before it.
    if (!alone) args.push("-debug_ts");
    args.push("-i", kfPath);
    args.push(...outputArgs(req, geom, "[0:0]showinfo=checksum=0", rawPath, jpgPath));
    core.setTimeout(left > 0 ? Math.ceil(left) : -1);
    const execStart = performance.now();
    let rc: number;
    made++;
    try {
      rc = core.exec(...args);
    } finally {
      sink = undefined;
      core.reset();
      core.FS.unlink(kfPath);
    }
    if (rc !== 0 && left > 0 && performance.now() - execStart >= left) {
      throw new DecodeError(`timed out after ${req.timeoutMs! / 1000} s`);
    }
    if (last !== undefined) {
      last.image = jpeg ?? undefined;
      out.frame(last, damage);
    }
    if (given === batch.length) return [];
    if (!alone) return batch.slice(given);
    const t = batch[0];
    if (jpeg !== null) Deno.removeSync(jpeg);
    const why = rc !== 0 ? bestError(logs) ?? `ffmpeg exited with code ${rc}` : undefined;
    out.note({
      index: t.index,
      pts: t.pts,
      reason: damage ?? (why ? `decoder error: ${plainReason(why)}` : NO_PICTURE),
    });
    return [];
  };

  /** Replaces a core that has made its share of runs (see `RUNS_PER_CORE`). */
  const renew = async () => {
    if (fresh && core.runs >= RUNS_PER_CORE) {
      unmountOutputs();
      core = await fresh();
      mountOutputs();
    }
  };

  mountOutputs();
  try {
    let carried: Taken | undefined;
    for (;;) {
      let first = carried;
      carried = undefined;
      if (!first) {
        const index = claims.next();
        if (index >= plan.keys.length) break;
        first = take(index);
      }
      const batch = [first];
      // The IDR samples this worker has next, in order, join this run.
      if (layout && isIdrSample(first.bytes, layout)) {
        let bytes = first.bytes.length;
        for (let index = first.index + 1; batch.length < RUN_SAMPLES; index++) {
          const key = plan.keys[index];
          if (!key || bytes + key.size > RUN_BYTES || !claims.nextIf(index)) break;
          const t = take(index);
          if (!isIdrSample(t.bytes, layout)) {
            carried = t;
            break;
          }
          batch.push(t);
          bytes += t.bytes.length;
        }
      }
      await renew();
      // What a shared run did not give: its first sample alone, then the others shared again.
      for (let rest = decode(batch); rest.length > 0;) {
        await renew();
        decode(rest.slice(0, 1));
        rest = rest.slice(1);
        if (rest.length > 0) {
          await renew();
          rest = decode(rest);
        }
      }
    }
  } finally {
    unmountOutputs();
  }
  return made;
}

const NO_PICTURE = "the decoder gave no picture for this keyframe";

/** Removes devices, last mounted first; one already gone is no error. */
function unmountAll(unmount: (() => void)[]): void {
  for (const u of unmount.reverse()) {
    try {
      u();
    } catch { /* already gone */ }
  }
}

/**
 * A `select` expression true exactly for frames whose pts is one of `keys` (sorted): a binary
 * search of nested `if`s, which ffmpeg evaluates lazily, so each frame costs log2(keys) compares.
 */
export function ptsSelect(keys: readonly number[]): string {
  if (keys.length === 0) return "0";
  const tree = (lo: number, hi: number): string => {
    if (hi - lo === 1) return `eq(pts\\,${keys[lo]})`;
    const mid = (lo + hi) >> 1;
    return `if(lt(pts\\,${keys[mid]})\\,${tree(lo, mid)}\\,${tree(mid, hi)})`;
  };
  return tree(0, keys.length);
}

/** One line on a file's damaged keyframes, for its error report. */
export function describeDamage(corrupt: readonly CorruptKeyframe[], good: number): string {
  const c = corrupt[0];
  const more = corrupt.length > 1 ? ` (and ${corrupt.length - 1} more)` : "";
  return `keyframe ${c.index} at ${c.pts} s is damaged${more}: ${c.reason}; ` +
    `the other ${good} keyframes were processed`;
}

/** Whether the opened `source` is the file of device and inode `id`. */
function sameFile(source: ByteSource, id: { dev: number; ino: number }): boolean {
  const own = source.identity?.();
  return own !== undefined && own.dev === id.dev && own.ino === id.ino;
}

/** Opens an input file for reading; throws {@linkcode DecodeError} with a plain reason. */
export function openInput(path: string): ByteSource {
  if (isUrl(path)) {
    try {
      return httpSource(path);
    } catch (e) {
      if (e instanceof HttpInputError) throw new DecodeError(e.message);
      throw e;
    }
  }
  try {
    const stat = Deno.statSync(path);
    if (stat.isDirectory) throw new DecodeError("is a directory");
    if (!stat.isFile) {
      throw new DecodeError("a pipe or device, not a file (vx fast - reads a pipe)");
    }
    if (stat.size === 0) throw new DecodeError("empty file");
    return fileSource(path, Deno.openSync(path, { read: true }));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    if (e instanceof Deno.errors.NotFound) throw new DecodeError("no such file");
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new DecodeError("permission denied");
    }
    throw new DecodeError(e instanceof Error ? e.message : String(e));
  }
}
