/**
 * Runs a command as a child process and measures what a user would feel: wall time, time to the
 * first line on stdout (the first record), peak resident memory and CPU time, the last two
 * polled from `/proc/<pid>` while it runs.
 *
 * @module
 */

/** One run's figures. */
export interface RunFigures {
  wallMs: number;
  firstMs: number;
  peakRssMb: number;
  cpuMs: number;
  lines: string[];
}

const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux.

function poll(pid: number, acc: { rss: number; cpu: number }) {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    acc.rss = Math.max(acc.rss, hwm);
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    acc.cpu = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch { /* exited */ }
}

/** Runs `cmd args…`, failing on a non-zero exit. */
export async function measure(cmd: string, args: string[]): Promise<RunFigures> {
  const start = performance.now();
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const acc = { rss: 0, cpu: 0 };
  const timer = setInterval(() => poll(child.pid, acc), 20);
  let firstMs = NaN;
  const lines: string[] = [];
  let buf = "";
  const dec = new TextDecoder();
  const stderr = new Response(child.stderr).text();
  for await (const chunk of child.stdout) {
    if (Number.isNaN(firstMs)) firstMs = performance.now() - start;
    buf += dec.decode(chunk, { stream: true });
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
    poll(child.pid, acc);
  }
  const status = await child.status;
  const wallMs = performance.now() - start;
  clearInterval(timer);
  if (!status.success) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${status.code}\n${await stderr}`);
  }
  return { wallMs, firstMs, peakRssMb: acc.rss, cpuMs: acc.cpu, lines };
}

/** Median, min and max of a list. */
export function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s.at(-1)! };
}

/**
 * Replaces the section `name` of BENCHMARKS.md (between `<!-- name -->` and `<!-- /name -->`),
 * or appends it, so each bench rewrites only its own figures.
 */
export async function writeSection(root: string, name: string, text: string): Promise<void> {
  const path = root + "BENCHMARKS.md";
  let doc = "# Benchmarks\n";
  try {
    doc = await Deno.readTextFile(path);
  } catch { /* first bench */ }
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const block = `${open}\n${text.trim()}\n${close}`;
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  doc = a >= 0 && b > a
    ? doc.slice(0, a) + block + doc.slice(b + close.length)
    : `${doc.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(path, doc);
  await formatMarkdown(path);
}

/** `deno fmt` on a Markdown file: CI checks formatting, and tables come out aligned. */
export async function formatMarkdown(path: string): Promise<void> {
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path] }).output();
}

/** A stage's cost: the process's minor page faults during it, and its wall time. */
export interface Stage {
  name: string;
  faults: number;
  ms: number;
}

/** The process's minor page faults so far (`/proc/self/stat`, field 10). */
export function minorFaults(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}
