/**
 * What the commands that run files share: `--report` and `--draw` around their records, the
 * report's title, the `--debug` trace written at the end, and backend notices on stderr.
 *
 * @module
 */

import type { TraceRecorder } from "../debug/trace.ts";
import type { VxRecord } from "../records.ts";
import type { FastFlags } from "./flags.ts";

/**
 * `--report` and `--draw` around a run's records. The report reads each JPEG before it is drawn
 * on (the report draws results as SVG over the plain picture). Without `--frames-dir`, the
 * report's JPEGs go to a temporary directory, each deleted once inlined; `cleanup` removes it.
 */
export async function presentation(
  flags: FastFlags & { resume?: boolean },
  title: string,
  perFile?: boolean,
) {
  // Opened (and locked) before any work, as `--out` is; a run that replaces its output (or
  // resumes it: the report shows that run's files) may replace the report.
  // Imported when asked for: the draw worker's module is not every run's.
  const [{ drawRecords }, { HtmlReport, reportRecords }] = await Promise.all([
    import("../draw/drawer.ts"),
    import("../report/html.ts"),
  ]);
  const report = flags.report === undefined ? undefined : await HtmlReport.create(flags.report, {
    title,
    existing: flags.overwrite || flags.resume ? "overwrite" : "refuse",
  });
  const temp = report !== undefined && flags.framesDir === undefined
    ? await Deno.makeTempDir({ prefix: "vx-report-" })
    : undefined;
  return {
    framesDir: flags.framesDir ?? temp,
    wrap<R extends VxRecord>(records: AsyncIterable<R>): AsyncIterable<R> {
      if (report !== undefined) {
        // bulk: a file whose keyframe cannot be shown gets an error status; the others go on.
        records = reportRecords(records, report, {
          consumeImages: temp !== undefined,
          perFile: perFile ?? false,
        });
      }
      // bulk: a file whose keyframe cannot be drawn gets an error status; the others go on.
      return flags.draw ? drawRecords(records, { ...flags, perFile: perFile ?? false }) : records;
    },
    cleanup: async () => {
      // A run that failed before its first record never iterated the report: close it here.
      await report?.end();
      if (temp !== undefined) await Deno.remove(temp, { recursive: true }).catch(() => {});
    },
  };
}

/** The run as the report's title shows it. */
export function runTitle(command: string, inputs: string[], flags: FastFlags): string {
  return [
    `vx ${command}`,
    ...inputs,
    `--task ${flags.task}`,
    flags.model && `--model ${flags.model}`,
  ]
    .filter(Boolean).join(" ");
}

/**
 * Writes the `--debug` trace, after a failed run too. A trace that cannot be written is reported
 * on stderr, not thrown, so it never hides the run's own error.
 */
export async function writeTrace(tracer: TraceRecorder | undefined, path: string | undefined) {
  if (!tracer || path === undefined) return;
  try {
    await tracer.write(path);
    console.error(`vx: trace written to ${path} (open it in https://ui.perfetto.dev)`);
  } catch (e) {
    console.error(`vx: cannot write the trace to ${path}: ${e instanceof Error ? e.message : e}`);
  }
}

/** A backend fallback, as one line on stderr (stdout carries only records). */
export const onNotice = (line: string) => console.error(`vx: ${line}`);
