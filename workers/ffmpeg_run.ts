/**
 * A worker that runs one ffmpeg command over files copied into the core's memory filesystem;
 * used to make fixtures and samples (never on the decode path, which streams instead).
 *
 * @module
 */

import { loadCore } from "../wasm/ffmpeg.ts";
import type { RunCommand, RunEvent } from "../src/fixtures/ffmpeg_messages.ts";

const scope = self as unknown as {
  postMessage(msg: RunEvent): void;
  onmessage: ((e: MessageEvent<RunCommand>) => void) | null;
};

scope.onmessage = async (e) => {
  const { args, inputs, outputs, core: kind } = e.data;
  const log: string[] = [];
  try {
    const core = await loadCore(undefined, kind);
    core.setLogger((l) => log.push(l.message));
    for (const [fsPath, hostPath] of Object.entries(inputs)) {
      core.FS.writeFile(fsPath, await Deno.readFile(hostPath));
    }
    const rc = core.exec(...args);
    if (rc !== 0) throw new Error(`ffmpeg exited ${rc}: ${log.slice(-3).join(" | ")}`);
    for (const [fsPath, hostPath] of Object.entries(outputs)) {
      await Deno.writeFile(hostPath, core.FS.readFile(fsPath));
    }
    scope.postMessage({ ok: true, log });
    // The mt core's pthread workers would keep this worker alive.
    self.close();
  } catch (err) {
    scope.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err), log });
  }
};
