/**
 * The vx command line, loaded by `cli.ts`. It parses arguments and dispatches to one module per
 * command in `src/cli/` (`fast.ts`, `bulk.ts`, `serve.ts`, `probe.ts`; `demo` is `src/demo.ts`). What
 * decodes and infers is imported only by the commands that run it, so a run through a server
 * (`--server`) loads neither the decoder core nor onnxruntime-web.
 *
 * @module
 */

import { Command, CommanderError } from "npm:commander@14.0.2";
import { UsageError, VxError } from "../errors.ts";
import { VERSION } from "../version.ts";
import {
  type BulkFlags,
  debugDefault,
  DEFAULT_TRACE,
  type FastFlags,
  integer,
  number,
  repeated,
  type ServeFlags,
  taskOptions,
} from "./flags.ts";
import { runFast } from "./fast.ts";
import { runBulk } from "./bulk.ts";
import { DEFAULT_MAX_SPOOL_MB } from "../input/spool.ts";

const SERVER_HELP =
  "run on this vx server: unix:PATH (vx serve --socket PATH) or http://HOST:PORT (env VX_SERVER)";

function program(onExit: (code: number) => void): Command {
  const prog = new Command("vx")
    .description("Keyframes of video files through ONNX models, entirely in WebAssembly.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
      // Plain help: commander's own colour check reads NO_COLOR, FORCE_COLOR and CLICOLOR_FORCE,
      // which a run without env access (the installed `vx`) may not read.
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
  taskOptions(
    prog.command("fast")
      .description("one file, lowest latency: records stream out as keyframes decode")
      .argument("<input>", "video file, http(s) URL, or - for standard input"),
  )
    .option("--out <path>", "write JSONL records here instead of stdout (-: stdout)")
    .option("--overwrite", "replace --out if it already holds results")
    .option("--server <address>", SERVER_HELP)
    .option(
      "--max-spool-mb <n>",
      `the most a pipe input (-, /dev/stdin) may hold (default ${DEFAULT_MAX_SPOOL_MB})`,
      number(1, 1e7),
    )
    .option("--sequential", "decode all keyframes first, then infer (baseline)")
    .option(
      "--decode-first",
      "decode all keyframes first, then infer them on every worker (what streaming buys)",
    )
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option(
      "--timeout <s>",
      "give up on the file after this many seconds (default 300)",
      number(0.01, 1e6),
    )
    .option(
      "--debug [path]",
      `write a JSON trace of the run (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action((input: string, flags: FastFlags) => runFast(input, flags));
  taskOptions(
    prog.command("bulk")
      .description("many files, most work per core: a worker pool with bounded memory")
      .argument("<inputs...>", "files, directories (recursive) or @list.txt"),
  )
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option("--max-inflight-mb <m>", "bound on decoded frames awaiting inference", number(1, 1e6))
    .option("--out <path>", "write JSONL records here instead of stdout (-: stdout)")
    .option("--resume", "with --out: skip files that already have a status record")
    .option("--retry-failed", "with --resume: run again the files whose status is an error")
    .option("--overwrite", "replace --out if it already holds results")
    .option("--shard <i/n>", "only the i-th of n deterministic shards of the inputs")
    .option("--server <address>", SERVER_HELP)
    .option("--timeout <s>", "per-file watchdog in seconds (default 300)", number(0.01, 1e6))
    .option(
      "--debug [path]",
      `write a JSON trace of the run (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action(async (inputs: string[], flags: BulkFlags) => onExit(await runBulk(inputs, flags)));
  taskOptions(
    prog.command("serve")
      .description("the warm engine behind HTTP: POST /extract, GET /healthz, GET /metrics"),
    { pictures: false },
  )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free one)", integer(0, 65535), 8080)
    .option("--socket <path>", "listen on this Unix domain socket (mode 0600) instead of TCP")
    .option(
      "--models <dir>",
      "requests may name the models under this directory (repeatable)",
      repeated,
      [],
    )
    .option(
      "--keep-alive <s>",
      "close an engine unused for this many seconds",
      number(0, 1e7),
      300,
    )
    .option(
      "--max-engines <n>",
      "engines kept at once, one per distinct setting; least recently used first out",
      integer(1, 64),
      2,
    )
    .option("--root <dir>", '{"path"} requests are confined to this directory (default: .)')
    .option("--max-upload-mb <m>", "uploads beyond this get 413", number(0.001, 1e7), 2048)
    .option(
      "--queue <n>",
      "requests that may wait for a slot; beyond, 503 (default 32)",
      integer(0, 1e6),
    )
    .option("--concurrency <n>", "requests running at once (default 2)", integer(1, 1e4))
    .option(
      "--grace <s>",
      "on SIGTERM/SIGINT, time the requests under way get",
      number(0, 86400),
      30,
    )
    .option("--temp-dir <dir>", "where uploads are spooled (default: a fresh system temp dir)")
    .option("--jobs <n>", "inference workers (default: one per core)", number(1, 64))
    .option("--max-inflight-mb <m>", "bound on decoded frames awaiting inference", number(1, 1e6))
    .option("--timeout <s>", "per-file watchdog in seconds (default 300)", number(0.01, 1e6))
    .option(
      "--debug [path]",
      `write a JSON trace of the server's life at exit (--debug=PATH; default ${DEFAULT_TRACE})`,
    )
    .action(async (flags: ServeFlags) =>
      onExit(await (await import("./serve.ts")).runServe(flags))
    );
  prog.command("probe")
    .description(
      "what vx sees before decoding (container, streams, keyframes), or a model's inputs, " +
        "outputs and task",
    )
    .argument("<input>", "video file, or an .onnx model")
    .option("--stream <n>", "list the keyframes of this video stream", integer(0, 1e6))
    .option("--json", "one JSON line (the default when stdout is not a terminal)")
    .action(async (input: string, flags: { stream?: number; json?: boolean }) =>
      (await import("./probe.ts")).runProbe(input, flags)
    );
  prog.command("models")
    .description("the models kept in the model cache (a --model given by URL)")
    .option(
      "--model-cache <dir>",
      "the cache (default $XDG_CACHE_HOME/vx/models or ~/.cache/vx/models)",
    )
    .option("--json", "one JSON line a model (the default when stdout is not a terminal)")
    .action(async (flags: { modelCache?: string; json?: boolean }) =>
      (await import("./models.ts")).runModels(flags)
    );
  prog.command("demo")
    .description("make a sample video with burned-in text and run fast OCR on it")
    .option("--report <file.html>", "also write the run's HTML report")
    .action(async (flags: { report?: string }) => (await import("../demo.ts")).runDemo(flags));
  return prog;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  let code = 0;
  try {
    await program((c) => (code = c)).parseAsync(debugDefault(args), { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`vx: ${e.message}`);
      return 2;
    }
    if (e instanceof VxError) {
      console.error(`vx: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.BrokenPipe) {
      // Whoever read stdout went away (`vx fast a.mp4 | head -3`): it had what it wanted. The
      // work left was cancelled when the records stopped being taken; nothing to report.
      return 0;
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      // Deno says: Requires write access to "<path>", run again with the --allow-write flag
      const m = /Requires (\w+) access to "([^"]+)"/.exec(e.message);
      console.error(
        m
          ? `vx: ${m[2]}: ${m[1]} access not granted (deno run --allow-${m[1]}=...)`
          : `vx: ${e.message}`,
      );
      return 1;
    }
    console.error(`vx: internal error: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
}
