/**
 * The vx command line. It only parses arguments and calls `mod.ts`.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { extract, UsageError, VxError } from "./mod.ts";
import { openSink } from "./src/output.ts";
import { runDemo } from "./src/demo.ts";
import type { TaskName } from "./src/tasks/task.ts";

const VERSION = "0.1.0";

function number(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    }
    return n;
  };
}

function taskOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--task <task>", "what to run on each keyframe")
        .choices(["ocr", "detect", "keyframes"])
        .default("ocr"),
    )
    .option("--model <path>", "ONNX model (detect: YOLOX or Ultralytics YOLOv8/11 layout)")
    .option("--labels <coco|path>", "class labels: coco, or a file with one label a line")
    .option("--score <n>", "minimum score to report", number(0, 1))
    .option("--threads <n>", "inference threads", number(1, 64))
    .option("--frames-dir <dir>", "also write each keyframe as a JPEG here");
}

interface FastFlags {
  task: TaskName;
  model?: string;
  labels?: string;
  score?: number;
  threads?: number;
  framesDir?: string;
  out?: string;
  sequential?: boolean;
}

async function runFast(input: string, flags: FastFlags): Promise<void> {
  if (flags.task === "detect" && !flags.model) {
    throw new UsageError("--task detect needs --model PATH");
  }
  const sink = await openSink(flags.out);
  try {
    for await (const record of extract(input, flags)) await sink.write(record);
  } finally {
    sink.close();
  }
}

function program(): Command {
  const prog = new Command("vx")
    .description("Keyframes of video files through ONNX models, entirely in WebAssembly.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) });
  taskOptions(
    prog.command("fast")
      .description("one file, lowest latency: records stream out as keyframes decode")
      .argument("<input>", "video file"),
  )
    .option("--out <path>", "write JSONL records here instead of stdout")
    .option("--sequential", "decode all keyframes first, then infer (baseline)")
    .action((input: string, flags: FastFlags) => runFast(input, flags));
  prog.command("demo")
    .description("make a sample video with burned-in text and run fast OCR on it")
    .action(() => runDemo());
  return prog;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    await program().parseAsync(args, { from: "user" });
    return 0;
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
    console.error(`vx: internal error: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
