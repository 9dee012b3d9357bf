/**
 * `--report FILE.html`: one self-contained HTML file showing what a run found. Per input file, a
 * grid of its keyframes (the JPEGs inlined as `data:` URIs) with their pts and their results
 * drawn over each picture as SVG; a table of files with status, keyframes, time and counts per
 * label, each linking to its grid; a filter by label. No network (a Content-Security-Policy
 * forbids it), no script from elsewhere: inline CSS and one small inline script for the filter.
 *
 * Written as the run goes, by appending: each keyframe's figure and each file's row is one
 * whole chunk, and browsers render a document that ends without its closing tags, so a killed
 * run leaves a readable report of what finished. The file rows and the totals are appended
 * after the grids yet shown above them: the body is a flex column and they carry a lower CSS
 * `order`.
 *
 * @module
 */

import { UsageError, VxError } from "../errors.ts";
import { openOutput } from "../record_sink.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../records.ts";
import { inkOn } from "../draw/palette.ts";
import { type Mark, marksOf } from "../draw/plan.ts";
import type { TaskResult } from "../tasks/task.ts";

/** The policy every report carries: pictures from `data:` only, inline style and script only. */
export const REPORT_CSP =
  "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

/** Options of {@linkcode HtmlReport.create}. */
export interface ReportOptions {
  /** Shown at the top: what was run, e.g. the command line. */
  title?: string;
  /** What to do when the report file is not empty (default: replace it); see `src/record_sink.ts`. */
  existing?: "refuse" | "overwrite";
}

/** Width of a grid cell in CSS pixels, which tag text is sized for. */
const CELL_PX = 360;
/** Tag text height in CSS pixels at that width. */
const TAG_PX = 13;

const STYLE = `
:root{color-scheme:dark;--bg:#16181d;--card:#22252b;--fg:#e6e6e6;--dim:#9aa0a8}
body{margin:0;padding:16px;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,sans-serif;
display:flex;flex-direction:column;gap:8px}
h1{font-size:18px;margin:0}h2{font-size:16px;margin:16px 0 8px;word-break:break-all}
.top{order:-5}.totals{order:-4}.bar{order:-3}.row.head{order:-2;font-weight:600;color:var(--dim)}
.row{order:-1;display:grid;grid-template-columns:minmax(0,3fr) 5em 6em 6em minmax(0,3fr);gap:8px;
padding:4px 8px;background:var(--card);color:inherit;text-decoration:none;border-radius:4px}
a.row:hover,a.row:focus{outline:1px solid var(--dim)}
.row>span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.ok{color:#6fdc8c}.error,.why{color:#ff8080}.err{color:#ff8080;white-space:pre-wrap}
section.file{order:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(${CELL_PX}px,1fr));gap:12px}
figure{margin:0;background:var(--card);border-radius:4px;overflow:hidden}
.pic{position:relative;line-height:0}
.pic img{display:block;width:100%;height:auto}
.pic svg{position:absolute;left:0;top:0;width:100%;height:100%;overflow:visible}
.pic .none{fill:#333}
figcaption{padding:4px 8px;color:var(--dim);font-size:12px}
figcaption .v{color:var(--fg)}
.r{cursor:pointer;outline:none}
.r rect{fill:none;stroke:var(--c);stroke-width:2px;vector-effect:non-scaling-stroke}
.r:hover rect,.r:focus rect{stroke-width:4px}
.r text{fill:var(--k);stroke:var(--c);paint-order:stroke;stroke-linejoin:round;
font-family:system-ui,sans-serif;font-weight:600}
.r .s{visibility:hidden}
.r:hover .s,.r:focus .s{visibility:visible}
select{font:inherit;background:var(--card);color:inherit;border:1px solid var(--dim);border-radius:4px}
`;

/** The label filter: built from the overlays present, so a killed run's report has one too. */
const SCRIPT = `
addEventListener("DOMContentLoaded", () => {
  const shapes = [...document.querySelectorAll("g.r")];
  const counts = new Map();
  for (const g of shapes) counts.set(g.dataset.label, (counts.get(g.dataset.label) || 0) + 1);
  if (counts.size === 0) return;
  const bar = document.createElement("div");
  bar.className = "bar";
  const select = document.createElement("select");
  select.id = "filter";
  select.add(new Option("every label (" + shapes.length + ")", ""));
  for (const [label, n] of [...counts].sort((a, b) => b[1] - a[1])) {
    select.add(new Option(label + " (" + n + ")", label));
  }
  select.onchange = () => {
    const v = select.value;
    for (const g of shapes) g.style.display = !v || g.dataset.label === v ? "" : "none";
    for (const f of document.querySelectorAll("figure.kf")) {
      f.hidden = v !== "" && ![...f.querySelectorAll("g.r")].some((g) => g.dataset.label === v);
    }
  };
  const label = document.createElement("label");
  label.append("Show ", select);
  bar.append(label);
  document.body.append(bar);
});
`;

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number as SVG writes it: at most two decimals, no trailing zeros. */
const n = (v: number) => String(Math.round(v * 100) / 100);

function base64(bytes: Uint8Array): string {
  // btoa wants a binary string; build it in slices to keep argument lists short.
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** One result drawn as SVG: its outline (or a line in the corner) and its tag. */
function overlay(m: Mark, line: number, width: number, fs: number): string {
  const style = `--c:#${m.color};--k:#${inkOn(m.color)}`;
  const title = m.text !== undefined
    ? `${m.text} (${m.score.toFixed(2)})`
    : `${m.label} ${m.score.toFixed(2)}`;
  const tag = m.text !== undefined ? m.text : m.label;
  const score = ` ${m.score.toFixed(2)}`;
  const textAttrs = `font-size="${n(fs)}" stroke-width="${n(fs * 0.35)}"`;
  let shape: string, tx: number, ty: number;
  if (m.box) {
    const [x1, y1, x2, y2] = m.box;
    shape = `<rect x="${n(x1)}" y="${n(y1)}" width="${n(x2 - x1)}" height="${n(y2 - y1)}"/>`;
    // Above the box where there is room, else just inside its top edge.
    tx = Math.min(x1, Math.max(0, width - fs * 4));
    ty = y1 >= fs * 1.3 ? y1 - fs * 0.35 : y1 + fs * 1.1;
  } else {
    shape = "";
    tx = fs * 0.4;
    ty = fs * (1.2 + 1.4 * line);
  }
  return `<g class="r" tabindex="0" data-label="${escapeHtml(m.label)}" ` +
    `data-score="${m.score}" style="${style}"><title>${escapeHtml(title)}</title>${shape}` +
    `<text x="${n(tx)}" y="${n(ty)}" ${textAttrs}>${escapeHtml(tag)}` +
    `<tspan class="s">${escapeHtml(score)}</tspan></text></g>`;
}

/** What a result that is not a place shows in the caption: an embedding's or tensor's size. */
function describe(results: readonly TaskResult[]): string {
  return results.map((r) => {
    if ("embedding" in r) return `embedding of ${r.embedding.length} values`;
    if ("dims" in r) return `${r.name} [${r.dims.join(",")}]`;
    return "";
  }).filter(Boolean).join(", ");
}

interface FileSection {
  id: number;
  path: string;
  keyframes: number;
  counts: Map<string, number>;
}

/**
 * A report being written. Records go in with {@linkcode HtmlReport.add} as they come out of a
 * run; {@linkcode HtmlReport.end} writes the totals and closes the document.
 *
 * @example
 * ```ts
 * import { extract } from "../pipeline/fast.ts";
 * import { HtmlReport } from "./html.ts";
 * const report = await HtmlReport.create("report.html", { title: "vx fast clip.mp4" });
 * for await (const r of extract("clip.mp4", { task: "ocr", framesDir: "frames" })) {
 *   await report.add(r);
 * }
 * await report.end();
 * ```
 */
export class HtmlReport {
  #file: Deno.FsFile;
  #started = performance.now();
  #files = new Map<string, FileSection>();
  #open: FileSection | undefined;
  #totals = new Map<string, number>();
  #keyframes = 0;
  #statuses = { ok: 0, error: 0 };
  #ended = false;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Creates (or replaces) the report at `path`, locked for this run, and writes its head. Throws
   * a {@linkcode VxError} naming `path` when it cannot be created (a missing directory, say) or
   * another run holds it, a `UsageError` when it is not empty and `existing` is `refuse`, and
   * Deno's permission error when write access was not granted.
   */
  static async create(path: string, options: ReportOptions = {}): Promise<HtmlReport> {
    let file: Deno.FsFile;
    try {
      file = await openOutput(path, options.existing ?? "overwrite");
    } catch (e) {
      if (e instanceof VxError || e instanceof UsageError) throw e;
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) throw e;
      const reason = e instanceof Error ? e.message.replace(/:.*$/s, "") : String(e);
      throw new VxError(path, `cannot write the report: ${reason.toLowerCase()}`);
    }
    const report = new HtmlReport(file);
    const title = options.title ?? "vx report";
    await report.#write(
      `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
        `<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">` +
        `<meta name="viewport" content="width=device-width,initial-scale=1">` +
        `<link rel="icon" href="data:,">` +
        `<title>${escapeHtml(title)}</title><style>${STYLE}</style><script>${SCRIPT}</script>` +
        `</head><body><header class="top"><h1>${escapeHtml(title)}</h1></header>` +
        `<div class="row head"><span>file</span><span>status</span><span>keyframes</span>` +
        `<span>time</span><span>results</span></div>\n`,
    );
    return report;
  }

  /**
   * Adds a record: a keyframe's figure (its JPEG, read from `record.image`, inlined) to its
   * file's grid, or a file's row for a status record. A keyframe without an image gets a blank
   * picture of its size, with its results drawn on it; so does one whose JPEG cannot be read,
   * and then the reason is returned (the figure says it too).
   */
  async add(record: VxRecord): Promise<string | undefined> {
    if ("status" in record) return void await this.#status(record);
    let chunk = "";
    let file = this.#open;
    if (file?.path !== record.file) {
      chunk += this.#close();
      file = this.#section(record.file);
      chunk += `<section class="file" id="f${file.id}"><h2>${escapeHtml(record.file)}</h2>` +
        `<div class="grid">`;
      this.#open = file;
    }
    const { html, unreadable } = await this.#figure(file, record);
    await this.#write(chunk + html + "\n");
    return unreadable;
  }

  /**
   * Closes the document: the row of a file still open (a `fast` run, which has no status
   * records: `error` when given, else ok), then the totals. Closes the file; later calls do
   * nothing.
   */
  async end(error?: string): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    try {
      const open = this.#open;
      let chunk = "";
      if (open) {
        chunk += this.#close();
        chunk += this.#row(
          open,
          error === undefined
            ? {
              file: open.path,
              status: "ok",
              keyframes: open.keyframes,
              ms: Math.round(performance.now() - this.#started),
            }
            : { file: open.path, status: "error", error },
        );
      } else if (error !== undefined) {
        chunk += `<p class="err top">${escapeHtml(error)}</p>`;
      }
      const counts = [...this.#totals].sort((a, b) => b[1] - a[1])
        .map(([label, c]) => `${escapeHtml(label)} ${c}`).join(", ");
      const files = this.#statuses.ok + this.#statuses.error;
      chunk += `<div class="totals">${files} file${files === 1 ? "" : "s"} ` +
        `(${this.#statuses.ok} ok, ${this.#statuses.error} failed), ${this.#keyframes} ` +
        `keyframes${counts ? `; ${counts}` : ""}</div></body></html>\n`;
      await this.#write(chunk);
    } finally {
      this.#file.close();
    }
  }

  #section(path: string): FileSection {
    let s = this.#files.get(path);
    if (!s) {
      s = { id: this.#files.size, path, keyframes: 0, counts: new Map() };
      this.#files.set(path, s);
    }
    return s;
  }

  /** Markup that ends the open file's grid and section. */
  #close(): string {
    if (!this.#open) return "";
    this.#open = undefined;
    return `</div></section>`;
  }

  async #status(status: StatusRecord): Promise<void> {
    let chunk = "";
    const open = this.#open;
    let file = this.#files.get(status.file);
    if (open?.path === status.file) chunk += this.#close();
    else if (!file) {
      // A file that ended without a keyframe: its section holds the reason.
      chunk += this.#close();
      file = this.#section(status.file);
      chunk += `<section class="file" id="f${file.id}"><h2>${escapeHtml(status.file)}</h2>` +
        (status.status === "error" ? `<p class="err">${escapeHtml(status.error)}</p>` : "") +
        `</section>`;
    }
    chunk += this.#row(file ?? this.#section(status.file), status);
    await this.#write(chunk + "\n");
  }

  #row(file: FileSection, status: StatusRecord): string {
    this.#statuses[status.status]++;
    const counts = [...file.counts].sort((a, b) => b[1] - a[1])
      .map(([label, c]) => `${escapeHtml(label)} ${c}`).join(", ");
    const detail = status.status === "ok"
      ? `<span>${status.keyframes}</span><span>${(status.ms / 1000).toFixed(1)} s</span>`
      : `<span>${file.keyframes}</span><span></span>`;
    const results = status.status === "error"
      ? `<span class="why" title="${escapeHtml(status.error)}">${escapeHtml(status.error)}</span>`
      : `<span title="${counts}">${counts}</span>`;
    return `<a class="row" href="#f${file.id}"><span title="${escapeHtml(file.path)}">` +
      `${escapeHtml(file.path)}</span><span class="${status.status}">${status.status}</span>` +
      `${detail}${results}</a>`;
  }

  async #figure(
    file: FileSection,
    r: FrameRecord,
  ): Promise<{ html: string; unreadable?: string }> {
    file.keyframes++;
    this.#keyframes++;
    const marks = marksOf(r.results);
    for (const m of marks) {
      file.counts.set(m.label, (file.counts.get(m.label) ?? 0) + 1);
      this.#totals.set(m.label, (this.#totals.get(m.label) ?? 0) + 1);
    }
    const { width: W, height: H } = r;
    const alt = `keyframe ${r.index} of ${r.file} at ${r.pts} s`;
    let jpeg: Uint8Array | undefined;
    let unreadable: string | undefined;
    if (r.image !== undefined) {
      try {
        jpeg = await Deno.readFile(r.image);
      } catch (e) {
        const reason = e instanceof Error ? e.message.replace(/:.*$/s, "") : String(e);
        unreadable = `cannot read ${r.image} for the report: ${reason.toLowerCase()}`;
      }
    }
    const picture = jpeg === undefined
      ? `<svg viewBox="0 0 ${W} ${H}" style="position:static"><rect class="none" width="${W}" ` +
        `height="${H}"/></svg>`
      : `<img src="data:image/jpeg;base64,${base64(jpeg)}" ` +
        `width="${W}" height="${H}" alt="${escapeHtml(alt)}">`;
    // Tag text sized so it reads ~TAG_PX CSS pixels tall when the picture fills a grid cell.
    const fs = TAG_PX * W / CELL_PX;
    let line = 0;
    const shapes = marks.map((m) => overlay(m, m.box ? 0 : line++, W, fs)).join("");
    const other = describe(r.results);
    const html = `<figure class="kf" id="f${file.id}k${r.index}" data-index="${r.index}" ` +
      `data-pts="${r.pts}"><div class="pic">${picture}` +
      (shapes ? `<svg viewBox="0 0 ${W} ${H}">${shapes}</svg>` : "") +
      `</div><figcaption>#${r.index} · <span class="v">${r.pts.toFixed(3)} s</span>` +
      (marks.length ? ` · ${marks.length} result${marks.length === 1 ? "" : "s"}` : "") +
      (other ? ` · ${escapeHtml(other)}` : "") +
      (unreadable ? ` · <span class="err">${escapeHtml(unreadable)}</span>` : "") +
      `</figcaption></figure>`;
    return { html, unreadable };
  }

  async #write(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    let at = 0;
    while (at < bytes.length) at += await this.#file.write(bytes.subarray(at));
  }
}

/** Options of {@linkcode reportRecords}. */
export interface ReportRecordsOptions extends ReportOptions {
  /**
   * `records` is a stream of files each ending with its status record (`bulk`): a keyframe whose
   * JPEG cannot be read for the report makes its file's status an error naming the JPEG, and the
   * other files go on. Otherwise that ends the run with a {@linkcode VxError}.
   */
  perFile?: boolean;
  /**
   * The JPEGs are only for the report (no `--frames-dir`): each is deleted once inlined, and the
   * record passed on loses its `image`.
   */
  consumeImages?: boolean;
}

/**
 * Passes `records` on unchanged, writing each into an HTML report at `path` first (see
 * {@linkcode HtmlReport}). When `records` throws, the report ends with the error, then the error
 * goes on. Throws Deno's error when the report cannot be written; see `perFile` for a keyframe
 * whose JPEG cannot be read.
 *
 * @example
 * ```ts
 * import { extract } from "../pipeline/fast.ts";
 * import { reportRecords } from "./html.ts";
 * const records = extract("clip.mp4", { task: "ocr", framesDir: "frames" });
 * for await (const r of reportRecords(records, "report.html")) console.log(r.pts);
 * ```
 */
export async function* reportRecords<R extends VxRecord>(
  records: AsyncIterable<R>,
  path: string | HtmlReport,
  options: ReportRecordsOptions = {},
): AsyncGenerator<R> {
  const report = typeof path === "string" ? await HtmlReport.create(path, options) : path;
  let error: string | undefined;
  try {
    /** Per file, the first keyframe the report could not show (`perFile`). */
    const failed = new Map<string, string>();
    for await (const record of records) {
      let r = record;
      if ("status" in r) {
        const why = failed.get(r.file);
        failed.delete(r.file);
        if (why !== undefined) r = { file: r.file, status: "error", error: why } as R;
      }
      const unreadable = await report.add(r);
      if (unreadable !== undefined && !("status" in r)) {
        if (!options.perFile) throw new VxError(r.file, `keyframe ${r.index}: ${unreadable}`);
        if (!failed.has(r.file)) failed.set(r.file, `keyframe ${r.index}: ${unreadable}`);
      }
      if (options.consumeImages && !("status" in r) && r.image !== undefined) {
        await Deno.remove(r.image).catch(() => {});
        const { image: _, ...rest } = r as FrameRecord;
        yield rest as R;
      } else yield r;
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    throw e;
  } finally {
    await report.end(error);
  }
}
