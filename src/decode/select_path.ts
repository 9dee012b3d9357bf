/**
 * Frames beyond the keyframes (`--select every:S`, `at:T…`, `scenes`): the demuxer reads the
 * video stream's packets, and vx decodes only what the selected frames need.
 *
 * For times, packets are held a GOP (a key packet and the packets up to the next one) at a time.
 * "The frame shown at t" (the greatest pts ≤ t) is known once the GOP after it is read: no
 * later packet shows a frame before the last frame of the GOPs read (a leading picture of an
 * open GOP comes after every picture before its key). Then:
 * - a GOP without a selected frame is never decoded;
 * - one whose only selected frame is its key frame gets that packet decoded alone;
 * - otherwise the GOP is decoded from its key up to the packet of its last selected frame, and
 *   on into the next GOP only when that one has selected frames before its key (open GOP);
 *   pictures no other refers to (H.264, HEVC: `disposable.ts`) are sent only when selected.
 * With a container index (`keys`), the demuxer seeks over two or more GOPs without a target, so
 * a few times in a long file read a few GOPs.
 *
 * For scenes, every frame is decoded and scored on a small grey copy, as ffmpeg's `scene` score
 * does on the full picture (see {@linkcode sceneScore}).
 *
 * Frames not selected are dropped here, in the decode worker: only the selected ones are
 * converted to the task's input and cross to inference.
 *
 * @module
 */

import { CoreError, type CoreFrame, type Decoder, type Input } from "../../wasm/decoder.ts";
import { now as clock } from "../clock.ts";
import { checkDeadline, type DecodeContext, type DecodedFrame, DecodeError } from "./keyframes.ts";
import { bestError, plainReason, ticksToSeconds } from "./probe.ts";
import type { SelectedWhy, Selection } from "./selection.ts";
import type { KeyClaims } from "./key_claims.ts";
import {
  type NalFraming,
  nalFraming,
  type PictureRefs,
  pictureRefs,
  readsReferences,
} from "./disposable.ts";

/** What a selection cost, for `--debug`. */
export interface SelectSummary {
  /** Frames the decoder gave, and frames selected (records and damaged ones). */
  decoded: number;
  selected: number;
  /** Packets read from the file, and sent to the decoder. */
  packets: number;
  sent: number;
  /** Seeks over GOPs without a target. */
  seeks: number;
  /** ms spent in the decoder and its conversions. */
  decodeMs: number;
  /** `at:` times past the last frame, in seconds. */
  pastEnd: number[];
}

/** Two times this close (seconds) are the same: pts are rounded to µs (`ticksToSeconds`). */
const EPS = 1e-6;

/** The side of the grey picture scenes are scored on; see BENCHMARKS.md (select). */
const SCENE_WIDTH = 256;

interface Packet {
  bytes: Uint8Array;
  ticks: number;
  dts: number;
  key: boolean;
  /** Shown: not cut by an edit list. */
  shown: boolean;
  /** What its picture is to the others; read when first asked (null: not told). */
  refs?: PictureRefs | null;
}

interface Pick {
  why: SelectedWhy;
  at?: number;
  score?: number;
}

interface Gop {
  /** Its place among the file's GOPs: its key's in `keys`, else counted. */
  n: number;
  packets: Packet[];
  /** The shown frames' pts, ascending (ticks). */
  shown: number[];
  /** Selected frames, by pts (ticks). */
  picks: Map<number, Pick>;
}

/** Decodes the frames `sel` selects from `input`'s video stream, handing them to `ctx.out`. */
export function decodeSelected(
  ctx: DecodeContext,
  input: Input,
  sel: Exclude<Selection, { kind: "keyframes" }>,
  keys?: readonly number[],
  claims?: KeyClaims,
): SelectSummary {
  const summary: SelectSummary = {
    decoded: 0,
    selected: 0,
    packets: 0,
    sent: 0,
    seeks: 0,
    decodeMs: 0,
    pastEnd: [],
  };
  let shots: Shots;
  try {
    shots = new Shots(ctx, input.decoder(ctx.stream.index), input.upright(ctx.stream.index));
  } catch (e) {
    if (e instanceof CoreError) throw new DecodeError(plainReason(e.message));
    throw e;
  }
  input.select(ctx.stream.index, false);
  try {
    if (sel.kind === "scenes") new SceneRun(ctx, shots, sel, summary, claims).run(input);
    else new TimeRun(ctx, shots, new Targets(sel), summary, keys, claims).run(input);
  } finally {
    summary.decodeMs = shots.decodeMs;
    shots.close();
  }
  if (shots.count === 0 && !claims?.shared) throw new DecodeError("no frame decoded");
  return summary;
}

/**
 * The packets of `ctx.stream` from `input`, each with its pts (a key packet with no pts, as AVI
 * stores them, takes its dts: refused where frames are reordered). Throws {@linkcode DecodeError}
 * on a read error.
 */
function* packets(ctx: DecodeContext, input: Input, summary: SelectSummary): Generator<Packet> {
  const { stream, core } = ctx;
  const reorders = (stream.reorderDepth ?? 0) > 0;
  const logs: string[] = [];
  for (;;) {
    checkDeadline(ctx);
    let p;
    core.setLogger((l) => {
      if (!l.decoder && l.level <= 24) logs.push(l.line);
    });
    try {
      p = input.read();
    } catch (e) {
      if (!(e instanceof CoreError)) throw e;
      const why = plainReason(bestError(logs) ?? e.message);
      throw new DecodeError(`truncated or damaged file (${why})`);
    } finally {
      core.setLogger(undefined);
    }
    if (logs.length > 100) logs.splice(0, 50);
    if (p === null) return;
    if (p.stream !== stream.index) continue;
    let ticks = p.pts;
    if (Number.isNaN(ticks)) {
      if (reorders || Number.isNaN(p.dts)) {
        throw new DecodeError(
          "the container gives no frame times (pts), which --select needs; " +
            "--select keyframes reads this file",
        );
      }
      ticks = p.dts;
    }
    summary.packets++;
    const shown = !p.discard && (stream.startPts === undefined || ticks >= stream.startPts);
    yield { bytes: input.data(p.size).slice(), ticks, dts: p.dts, key: p.key, shown };
  }
}

/** The targets of `every:S` or `at:`, in seconds from the first frame, taken in order. */
class Targets {
  #i = 0;
  constructor(readonly sel: Extract<Selection, { kind: "every" | "at" }>) {}

  /** The next target not yet resolved; undefined when none is left. */
  peek(): number | undefined {
    const s = this.sel;
    return s.kind === "every" ? this.#i * s.seconds : s.times[this.#i];
  }

  take(): void {
    this.#i++;
  }

  /** Whether a target not yet resolved lies in [lo, hi). */
  any(lo: number, hi: number): boolean {
    const s = this.sel;
    if (s.kind === "every") {
      const k = Math.max(this.#i, Math.ceil((lo - EPS) / s.seconds));
      return k * s.seconds < hi - EPS;
    }
    const t = s.times.slice(this.#i).find((t) => t >= lo - EPS);
    return t !== undefined && t < hi - EPS;
  }

  /** The targets left, unresolved. */
  rest(): number[] {
    return this.sel.kind === "at" ? this.sel.times.slice(this.#i) : [];
  }
}

/** `every:S` and `at:`: the frames shown at target times. */
class TimeRun {
  /** Read GOPs not yet decoded, oldest first; and the one decoded last (an open GOP's refs). */
  #window: Gop[] = [];
  #prev?: Gop;
  /** GOPs sent to the decoder since it last started afresh; the last one's packets not sent. */
  #live: Gop[] = [];
  #rest?: Packet[];
  /** The first frame's pts (seconds) and the greatest shown pts read (relative seconds). */
  #t0?: number;
  #max = -Infinity;
  #seekable: boolean;
  /** How the stream's NAL units are framed, for telling references (null: not known). */
  #framing?: NalFraming | null;

  constructor(
    readonly ctx: DecodeContext,
    readonly shots: Shots,
    readonly targets: Targets,
    readonly summary: SelectSummary,
    readonly keys?: readonly number[],
    readonly claims?: KeyClaims,
  ) {
    this.#seekable = keys !== undefined && keys.length > 1;
  }

  /** Sharing the file: the GOP this worker decodes next (those before it are others'). */
  #claimed?: number;
  #count = 0;

  /** Whether this worker decodes GOP `n`: always alone; sharing, when it claimed it. */
  #mine(n: number): boolean {
    if (!this.claims?.shared) return true;
    this.#claimed ??= this.claims.next();
    while (this.#claimed < n) this.#claimed = this.claims.next();
    return this.#claimed === n;
  }

  run(input: Input): void {
    let gop: Gop | undefined;
    let landing: number | undefined;
    for (const p of packets(this.ctx, input, this.summary)) {
      // A key packet's place among the index's keys (-1: not one of them, or no index).
      const k = p.key && this.keys ? this.keys.indexOf(p.ticks) : -1;
      if (landing !== undefined) {
        const wanted = landing;
        landing = undefined;
        // A seek that lands past the key asked for could miss targets: read from the start.
        if (p.ticks > wanted || !p.key) {
          this.#seekable = false;
          input.seek(this.ctx.stream.index, this.keys![0]);
          this.summary.seeks++;
          gop = undefined;
          continue;
        }
      }
      if (p.key && gop && gop.packets.length > 0) {
        this.#complete(gop);
        gop = undefined;
        const next = this.#seekTarget(k);
        if (next === null) break;
        if (next !== undefined) {
          this.#finishSegment();
          try {
            input.seek(this.ctx.stream.index, next);
            this.summary.seeks++;
            landing = next;
            continue;
          } catch (e) {
            // A demuxer that cannot seek here reads on.
            if (!(e instanceof CoreError)) throw e;
            this.#seekable = false;
          }
        }
      }
      if (!gop) {
        gop = { n: k >= 0 ? k : this.#count, packets: [], shown: [], picks: new Map() };
        this.#count = gop.n + 1;
      }
      gop.packets.push(p);
      if (p.shown) gop.shown.push(p.ticks);
    }
    if (gop && gop.packets.length > 0) this.#complete(gop);
    this.#resolveEnd();
    this.#finishSegment();
    // Every GOP with a target is decoded or claimed: none is left for a worker joining now.
    this.claims?.exhaust();
  }

  #seconds(ticks: number): number {
    return ticksToSeconds(ticks, this.ctx.stream.timeBase);
  }

  /** Relative seconds of `ticks`. */
  #rel(ticks: number): number {
    return this.#seconds(ticks) - (this.#t0 ?? 0);
  }

  /** A GOP is read whole: targets up to its last frame are resolved, and older GOPs decoded. */
  #complete(gop: Gop): void {
    gop.shown.sort((a, b) => a - b);
    this.#window.push(gop);
    if (gop.shown.length > 0) {
      this.#t0 ??= this.#seconds(gop.shown[0]);
      this.#max = Math.max(this.#max, this.#rel(gop.shown[gop.shown.length - 1]));
    }
    this.#resolve(this.#max);
    while (this.#window.length > 1) this.#decode(this.#window.shift()!);
  }

  /** Picks the frame shown at each target up to `limit` (relative seconds). */
  #resolve(limit: number): void {
    for (
      let t = this.targets.peek();
      t !== undefined && t <= limit + EPS;
      t = this.targets.peek()
    ) {
      this.targets.take();
      const found = this.#shownAt(t);
      if (found && !found.gop.picks.has(found.ticks)) {
        found.gop.picks.set(found.ticks, { why: "time", at: t });
      }
    }
  }

  /** The frame with the greatest pts ≤ `t` among the GOPs held, and its GOP. */
  #shownAt(t: number): { gop: Gop; ticks: number } | undefined {
    for (let i = this.#window.length - 1; i >= 0; i--) {
      const gop = this.#window[i];
      for (let j = gop.shown.length - 1; j >= 0; j--) {
        if (this.#rel(gop.shown[j]) <= t + EPS) return { gop, ticks: gop.shown[j] };
      }
    }
    return undefined;
  }

  /** At the end: the last targets, up to one frame past the last frame for `at:`. */
  #resolveEnd(): void {
    if (this.targets.sel.kind === "at") {
      this.#resolve(this.#max + this.#frameSeconds() - EPS);
      this.summary.pastEnd = this.targets.rest();
    } else this.#resolve(this.#max);
  }

  /** One frame's duration, from the stream's rate or the last frames' spacing. */
  #frameSeconds(): number {
    const rate = this.ctx.stream.frameRate;
    if (rate !== undefined && rate > 0) return 1 / rate;
    const last = this.#window.at(-1)?.shown ?? [];
    return last.length > 1 ? this.#rel(last[1]) - this.#rel(last[0]) : 0;
  }

  /**
   * Where to seek at the index's key `k` (the GOP before it read whole): the key of the next
   * GOP with a target, when two or more GOPs without one lie between; null when no target is
   * left; undefined to read on.
   */
  #seekTarget(k: number): number | null | undefined {
    const keys = this.keys;
    if (!this.#seekable || !keys || this.#t0 === undefined || k < 0) return undefined;
    const rel = (i: number) => i < 0 ? -Infinity : i >= keys.length ? Infinity : this.#rel(keys[i]);
    // A target in [K(i-1), K(i+1)) is shown by GOP i-1 or i, or by GOP i's leading frames.
    const needed = (i: number) => this.targets.any(rel(i - 1), rel(i + 1));
    let next = k;
    while (next < keys.length && !needed(next)) next++;
    if (next >= keys.length) return this.targets.peek() === undefined ? null : undefined;
    return next >= k + 2 ? keys[next] : undefined;
  }

  /** Decodes every GOP held (no target is left in them), and drains the decoder. */
  #finishSegment(): void {
    while (this.#window.length > 0) this.#decode(this.#window.shift()!);
    this.#drain();
    this.#prev = undefined;
  }

  /** Decodes what of `gop` its picks need (every target it can show is resolved). */
  #decode(gop: Gop): void {
    const prev = this.#prev;
    this.#prev = gop;
    if (gop.picks.size === 0) return this.#drain();
    // Another worker's GOP: its records take their places in the order all the same.
    if (!this.#mine(gop.n)) {
      this.#drain();
      return this.shots.skip(gop.picks.size);
    }
    const key = gop.packets[0];
    const leading = [...gop.picks.keys()].some((t) => t < key.ticks);
    if (leading && this.#rest && this.#live.at(-1) === prev) this.#send(this.#rest);
    else {
      this.#drain();
      // Leading frames refer to the GOP before: decoded (its frames dropped) when it was not.
      if (leading && prev) {
        this.#live.push(prev);
        this.#send(prev.packets);
      }
    }
    this.#live.push(gop);
    const last = gop.packets.findLastIndex((p) => gop.picks.has(p.ticks));
    this.#send(gop.packets.slice(0, last + 1), gop.picks);
    this.#rest = gop.packets.slice(last + 1);
  }

  /**
   * Sends `list` to the decoder, but for the packets whose picture is neither in `picks` nor a
   * reference of another: those frames would only be dropped.
   */
  #send(list: readonly Packet[], picks?: ReadonlyMap<number, Pick>): void {
    const top = this.#topLayer();
    for (const p of list) {
      checkDeadline(this.ctx);
      if (!picks?.has(p.ticks) && this.#unreferenced(p, top)) continue;
      this.summary.sent++;
      this.shots.send(p, this.#onFrame);
    }
  }

  /** What `p`'s picture is to the others (null: not told, so a reference to all). */
  #refs(p: Packet): PictureRefs | null {
    if (p.refs !== undefined) return p.refs;
    if (this.#framing === undefined) {
      const { codec } = this.ctx.stream;
      this.#framing = readsReferences(codec) ? nalFraming(p.bytes) ?? null : null;
    }
    p.refs = this.#framing === null
      ? null
      : pictureRefs(this.ctx.stream.codec, p.bytes, this.#framing) ?? null;
    return p.refs;
  }

  /**
   * Whether no picture refers to `p`'s: a non-reference picture of the top sub-layer among the
   * packets held (the GOPs read and not yet decoded, those being decoded, the one decoded last).
   * H.264 has one sub-layer; in HEVC, higher sub-layers may refer to a lower one's.
   */
  #unreferenced(p: Packet, top: number): boolean {
    const refs = this.#refs(p);
    return refs !== null && refs.nonReference && refs.temporalId >= top;
  }

  #topLayer(): number {
    let top = 0;
    for (const g of [...this.#window, ...this.#live, this.#prev]) {
      for (const p of g?.packets ?? []) top = Math.max(top, this.#refs(p)?.temporalId ?? 0);
    }
    return top;
  }

  /** Ends the decoding in progress: the decoder gives what it holds, and starts afresh. */
  #drain(): void {
    if (this.#live.length === 0) return;
    this.shots.drain(this.#onFrame);
    // A pick the decoder gave no frame for is reported in its place.
    for (const g of this.#live) this.shots.missed(g.picks, Infinity);
    this.#live = [];
    this.#rest = undefined;
  }

  readonly #onFrame = (f: CoreFrame): void => {
    this.summary.decoded++;
    if (Number.isNaN(f.pts)) return;
    // Frames leave in pts order: a pick before this frame that has not come will not.
    for (const g of this.#live) if (g.picks.size > 0) this.shots.missed(g.picks, f.pts);
    const gop = this.#live.find((g) => g.picks.has(f.pts));
    if (!gop) return;
    const pick = gop.picks.get(f.pts)!;
    gop.picks.delete(f.pts);
    this.summary.selected++;
    this.shots.take(f, pick);
  };
}

/**
 * ffmpeg's scene score (`libavfilter/f_select.c`) between two grey pictures of one size: the
 * mean absolute difference of their pixels (MAFD), and how much it changed since the previous
 * pair's; the smaller of the two, over 100, clipped to [0, 1]. A cut changes the picture once,
 * so both are high; motion or a fade changes it every frame, so the second stays low.
 *
 * @example
 * ```ts
 * import { sceneScore } from "./select_path.ts";
 * const black = new Uint8Array(16), white = new Uint8Array(16).fill(255);
 * sceneScore(black, white, 0).score; // 1
 * ```
 */
export function sceneScore(
  prev: Uint8Array,
  cur: Uint8Array,
  prevMafd: number,
): { score: number; mafd: number } {
  let sad = 0;
  for (let i = 0; i < cur.length; i++) sad += Math.abs(cur[i] - prev[i]);
  const mafd = sad / cur.length;
  const diff = Math.abs(mafd - prevMafd);
  return { score: Math.min(1, Math.max(0, Math.min(mafd, diff) / 100)), mafd };
}

/**
 * Sharing scenes, the file is cut into parts at keys, each at least this long and this many
 * packets (more than a decoder holds back to reorder, so that the frames a part's first two
 * depend on come out within it): each worker reads every packet and so counts the same parts.
 */
const PART_SECONDS = 4;
const PART_PACKETS = 40;

/**
 * `scenes`: every frame decoded, the first of each shot selected.
 *
 * Decode workers sharing a file take its parts in turn. A frame's score needs the two frames
 * before it, so a worker that starts afresh at its part's key cannot score the part's first two
 * frames: the worker of the part before decodes on into this part's first frames and scores
 * those. A worker's records (its parts', and the two frames past them) take their indices after
 * the records of the parts before: each worker says in the claim cell how many records come up
 * to the end of its run of parts, and the next waits for that count (the first part's records
 * leave at once).
 */
class SceneRun {
  #prev?: Uint8Array;
  #mafd = 0;
  #hidden = new Set<number>();
  /** Frames to score without selecting: after a fresh start, the two a score needs first. */
  #unscored = 0;
  /** Frames before this pts are not this worker's (a fresh start's leading pictures). */
  #from = -Infinity;
  /** Sharing: what this worker does with the packets it reads now. */
  #state: "own" | "head" | "idle" = "own";
  /** The part the packets read are in, where it began, and its packets so far. */
  #part = -1;
  #partStart = 0;
  #partPackets = 0;
  /** Scoring the next part's first frames: its key's pts, and frames left to score. */
  #headStart = Infinity;
  #headLeft = 0;
  /** This run of parts: its first and last, its records not yet handed out, its first index. */
  #first = 0;
  #last = 0;
  #held: Held[] = [];
  #base?: number;
  #claimed?: number;

  constructor(
    readonly ctx: DecodeContext,
    readonly shots: Shots,
    readonly sel: Extract<Selection, { kind: "scenes" }>,
    readonly summary: SelectSummary,
    readonly claims?: KeyClaims,
  ) {
    // Sharing, a worker takes up the parts it claims.
    if (this.#shared) this.#state = "idle";
  }

  get #shared(): boolean {
    return this.claims?.shared === true;
  }

  run(input: Input): void {
    const onFrame = (f: CoreFrame) => this.#frame(f);
    for (const p of packets(this.ctx, input, this.summary)) {
      if (this.#shared) this.#partOf(p);
      if (!p.shown) this.#hidden.add(p.ticks);
      if (this.#state === "idle") continue;
      this.summary.sent++;
      this.shots.send(p, onFrame);
      if (this.#state === "head" && this.#headLeft === 0) this.#endRun();
      else if (this.#held.length > 0) this.#tryBase();
    }
    // Every part is counted, and so claimed.
    this.claims?.exhaust();
    if (this.#state === "idle") return;
    this.shots.drain(onFrame);
    if (this.#shared) this.#endRun();
  }

  /** Counts the parts as `p` is read: at a part's key, this worker takes it up or leaves it. */
  #partOf(p: Packet): void {
    const seconds = ticksToSeconds(p.ticks - this.#partStart, this.ctx.stream.timeBase);
    const starts = this.#part < 0 ||
      (this.#partPackets >= PART_PACKETS && seconds >= PART_SECONDS);
    this.#partPackets++;
    if (!p.key || !starts) return;
    // A head still short of its frames when the next part begins: what the decoder holds ends it.
    if (this.#state === "head") {
      this.shots.drain((f) => this.#frame(f));
      this.#endRun();
    }
    const part = ++this.#part;
    this.#partStart = p.ticks;
    this.#partPackets = 1;
    const mine = this.#mine(part);
    if (this.#state === "own") {
      if (mine) this.#last = part;
      else {
        this.#state = "head";
        this.#headStart = p.ticks;
        this.#headLeft = 2;
      }
    } else if (mine) {
      // A fresh start: the part's first two frames were scored by the worker before.
      this.#state = "own";
      this.#first = this.#last = part;
      this.#prev = undefined;
      this.#mafd = 0;
      this.#unscored = part === 0 ? 0 : 2;
      this.#from = p.ticks;
      this.#base = undefined;
      this.#tryBase();
    }
  }

  /** Whether this worker takes part `n` (the parts before it are others'). */
  #mine(n: number): boolean {
    this.#claimed ??= this.claims!.next();
    while (this.#claimed < n) this.#claimed = this.claims!.next();
    return this.#claimed === n;
  }

  /** Ends this worker's run of parts: its records take their indices and leave. */
  #endRun(): void {
    const claims = this.claims!;
    if (this.#state === "head") this.shots.flush();
    this.#state = "idle";
    this.#headStart = Infinity;
    const base = this.#base ?? claims.waitFor(this.#first - 1, () => checkDeadline(this.ctx));
    if (base === undefined) throw new DecodeError("the decode worker sharing this file stopped");
    this.#setBase(base);
    claims.publish(this.#last, this.shots.count);
  }

  /** Hands out the run's records once the count of those before is known. */
  #tryBase(): void {
    const base = this.claims!.published(this.#first - 1);
    if (base !== undefined) this.#setBase(base);
  }

  #setBase(base: number): void {
    if (this.#base === undefined) {
      this.#base = base;
      this.shots.count = base;
    }
    for (const h of this.#held) this.shots.give(h);
    this.#held = [];
  }

  #frame(f: CoreFrame): void {
    this.summary.decoded++;
    if (Number.isNaN(f.pts) || this.#hidden.delete(f.pts) || f.damaged) return;
    if (f.pts < this.#from || this.#state === "idle") return;
    if (f.pts >= this.#headStart) {
      if (this.#headLeft === 0) return;
      this.#headLeft--;
    }
    const grey = this.shots.grey(f);
    let pick: Pick | undefined;
    if (!this.#prev) pick = { why: "first" };
    else if (grey.length === this.#prev.length) {
      const { score, mafd } = sceneScore(this.#prev, grey, this.#mafd);
      this.#mafd = mafd;
      if (score > this.sel.threshold) pick = { why: "scene", score: Math.round(score * 1e4) / 1e4 };
    }
    if (!pick && this.sel.keyframes && f.key) pick = { why: "keyframe" };
    this.#prev = grey;
    if (this.#unscored > 0) {
      this.#unscored--;
      return;
    }
    if (!pick) return;
    this.summary.selected++;
    if (!this.#shared) return this.shots.take(f, pick);
    const held = this.shots.hold(f, pick);
    if (this.#base !== undefined) this.shots.give(held);
    else this.#held.push(held);
  }
}

/** A selected frame converted (its JPEG too, when asked for), or why it cannot be: no index yet. */
type Held =
  | { note: { pts: number; reason: string } }
  | { frame: Omit<DecodedFrame, "index" | "image">; jpeg?: Uint8Array };

/**
 * One decoder, and the selected frames it gives, converted to the task's input and handed out in
 * pts order, each with the next index.
 */
class Shots {
  readonly #d: Decoder;
  readonly #chain: string;
  readonly #jpegChain: string;
  readonly #greyChain: string;
  readonly #greySize: number;
  #since = clock();
  /** The pts of the last frame handed out (ticks). */
  #last = -Infinity;
  count = 0;
  decodeMs = 0;

  constructor(readonly ctx: DecodeContext, decoder: Decoder, upright: string) {
    this.#d = decoder;
    this.#chain = `${upright}${ctx.geom.filter}`;
    this.#jpegChain = `${upright}format=yuvj420p`;
    const { width = 0, height = 0 } = ctx.stream;
    const turned = upright.startsWith("transpose");
    const [w, h] = turned ? [height, width] : [width, height];
    const gw = Math.min(SCENE_WIDTH, w - (w % 2));
    const gh = Math.max(2, Math.round((h * gw) / w / 2) * 2);
    this.#greyChain = `${upright}scale=${gw}:${gh}:flags=fast_bilinear,format=gray`;
    this.#greySize = gw * gh;
  }

  flush(): void {
    this.#d.flush();
  }

  /** Sends `p`, handing each frame the decoder then gives to `onFrame`. */
  send(p: Packet, onFrame: (f: CoreFrame) => void): void {
    const start = performance.now();
    try {
      this.#d.send(p.bytes, p.ticks, p.dts, p.key);
    } catch (e) {
      // A packet the decoder refuses costs its frame, which a pick then misses.
      if (!(e instanceof CoreError)) throw e;
    }
    this.decodeMs += performance.now() - start;
    this.#receive(onFrame);
  }

  /** Drains the decoder: every frame it holds goes to `onFrame`; then it starts afresh. */
  drain(onFrame: (f: CoreFrame) => void): void {
    try {
      this.#d.send(null);
    } catch (e) {
      if (!(e instanceof CoreError)) throw e;
    }
    this.#receive(onFrame);
    this.#d.flush();
  }

  #receive(onFrame: (f: CoreFrame) => void): void {
    for (;;) {
      const start = performance.now();
      let f: CoreFrame | null;
      try {
        f = this.#d.receive();
      } catch (e) {
        if (!(e instanceof CoreError)) throw e;
        f = null;
      }
      this.decodeMs += performance.now() - start;
      if (!f) return;
      onFrame(f);
    }
  }

  /** The frame just received as a small grey picture (for scene scores). */
  grey(_f: CoreFrame): Uint8Array {
    const start = performance.now();
    const { data } = this.#d.convert(this.#greyChain, this.#greySize);
    this.decodeMs += performance.now() - start;
    return data;
  }

  /** Picks in `picks` before `ticks` that no frame was handed out for: reported as missed. */
  missed(picks: Map<number, Pick>, ticks: number): void {
    for (const t of [...picks.keys()].sort((a, b) => a - b)) {
      if (t >= ticks) break;
      this.#note(t, "the decoder gave no picture for this frame");
      picks.delete(t);
    }
  }

  /** `n` selected frames another worker hands out: their indices are theirs. */
  skip(n: number): void {
    this.count += n;
  }

  /** Hands out the frame just received, selected for `pick`, with the next index. */
  take(f: CoreFrame, pick: Pick): void {
    this.give(this.hold(f, pick));
  }

  /**
   * The frame just received, selected for `pick`, converted to the task's input, to be handed
   * out by {@linkcode Shots.give} once its index is known; or a note of why it cannot be.
   */
  hold(f: CoreFrame, pick: Pick): Held {
    // Every pick takes its index, so that workers sharing a file agree on them.
    const { ctx } = this;
    const pts = ticksToSeconds(f.pts, ctx.stream.timeBase);
    if (f.pts <= this.#last) return { note: { pts, reason: "the decoder gave this frame twice" } };
    this.#last = f.pts;
    if (f.damaged) return { note: { pts, reason: "decoder error in this frame" } };
    const filterStart = clock();
    const start = performance.now();
    const { data, width, height } = this.#d.convert(this.#chain, ctx.geom.frameBytes);
    if (width !== ctx.geom.width || height !== ctx.geom.height) {
      throw new CoreError(`the filters gave ${width}x${height}, not the task's input size`);
    }
    const jpeg = ctx.req.jpegDir !== undefined ? this.#d.jpeg(this.#jpegChain) : undefined;
    this.decodeMs += performance.now() - start;
    const turned = this.#chain.startsWith("transpose");
    const decodeEnd = clock();
    const decodeStart = this.#since;
    this.#since = decodeEnd;
    const frame = {
      pts,
      srcWidth: turned ? f.height : f.width,
      srcHeight: turned ? f.width : f.height,
      width,
      height,
      data,
      decodeStart,
      filterStart,
      decodeEnd,
      readBytes: 0,
      readMs: 0,
      key: f.key,
      why: pick.why,
      at: pick.at,
      score: pick.score,
    };
    return { frame, jpeg };
  }

  /** Hands out `held` with the next index. */
  give(held: Held): void {
    const { ctx } = this;
    const index = this.count++;
    if ("note" in held) return ctx.out.give({ note: { index, ...held.note } });
    let image: string | undefined;
    if (held.jpeg) {
      image = `${ctx.req.jpegDir}/${ctx.req.jpegPrefix ?? "frame"}_${index}.jpg`;
      Deno.writeFileSync(image, held.jpeg);
    }
    const { read } = ctx;
    ctx.out.give({
      frame: { ...held.frame, index, image, readBytes: read.bytes, readMs: read.ms },
    });
    read.bytes = 0;
    read.ms = 0;
  }

  #note(ticks: number, reason: string): void {
    this.#last = Math.max(this.#last, ticks);
    this.give({ note: { pts: ticksToSeconds(ticks, this.ctx.stream.timeBase), reason } });
  }

  close(): void {
    this.#d.close();
  }
}
