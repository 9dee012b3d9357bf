/**
 * Worker for `bench/ffmpeg_cores.ts`: loads one ffmpeg core once (timed), then times keyframe
 * decodes of the files it is sent, as the decode worker runs them (`-skip_frame nokey`, scaled
 * to the detector's 416 px), each file several times in the same warm core.
 *
 * @module
 */

import { type CoreKind, loadCore } from "../wasm/ffmpeg.ts";

type Cmd = { kind: CoreKind; files: string[]; repeat: number; threads: string };

const scope = self as unknown as {
  postMessage(msg: unknown): void;
  onmessage: ((e: MessageEvent<Cmd>) => void) | null;
};

scope.onmessage = async (e) => {
  const { kind, files, repeat, threads } = e.data;
  const t0 = performance.now();
  const core = await loadCore(undefined, kind);
  const loadMs = performance.now() - t0;
  const log: string[] = [];
  core.setLogger((l) => log.push(l.message));
  const results: { file: string; ms: number[] }[] = [];
  for (const file of files) {
    core.FS.writeFile("/in", await Deno.readFile(file));
    const ms: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      const rc = core.exec(
        "-hide_banner",
        "-nostdin",
        "-skip_frame",
        "nokey",
        "-threads",
        threads,
        "-i",
        "/in",
        "-vf",
        "scale=416:416:force_original_aspect_ratio=decrease",
        "-pix_fmt",
        "rgb24",
        "-f",
        "null",
        "-",
      );
      ms.push(performance.now() - t);
      core.reset();
      if (rc !== 0) throw new Error(`${file}: ffmpeg exited ${rc}: ${log.slice(-3).join(" | ")}`);
    }
    core.FS.unlink("/in");
    results.push({ file, ms });
  }
  scope.postMessage({ loadMs, results });
};
