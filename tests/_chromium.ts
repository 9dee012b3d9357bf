/**
 * Headless Chromium for the report tests: Debian's `chromium` package (CI installs it in
 * `.ci/run`). Tests that need it are ignored when it is absent.
 *
 * @module
 */

/** The Chromium binary on PATH, if any. */
export const CHROMIUM: string | undefined = (() => {
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      const out = new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync();
      if (out.success) return name;
    } catch { /* not installed */ }
  }
  return undefined;
})();

/** What a headless Chromium run printed: its stderr log, and stdout (the DOM, for `dumpDom`). */
export interface ChromiumRun {
  stdout: string;
  /** `INFO:CONSOLE` lines: everything the page logged, errors and CSP violations included. */
  console: string[];
}

async function run(args: string[], url: string): Promise<ChromiumRun> {
  const out = await new Deno.Command(CHROMIUM!, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--force-device-scale-factor=1",
      "--enable-logging=stderr",
      "--v=0",
      ...args,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`chromium failed (${out.code}): ${stderr.slice(-500)}`);
  return {
    stdout: new TextDecoder().decode(out.stdout),
    console: stderr.split("\n").filter((l) => l.includes(":CONSOLE")),
  };
}

/** Opens `path` from disk and writes a `width`×`height` PNG screenshot to `png`. */
export function screenshot(
  path: string,
  png: string,
  width: number,
  height: number,
): Promise<ChromiumRun> {
  return run([`--screenshot=${png}`, `--window-size=${width},${height}`], `file://${path}`);
}

/** Opens `path` from disk and returns the DOM after its scripts ran, serialised. */
export function dumpDom(path: string): Promise<ChromiumRun> {
  return run(["--dump-dom"], `file://${path}`);
}
