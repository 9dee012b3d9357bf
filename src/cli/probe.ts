/**
 * `vx probe`: what vx sees in a file before decoding, or what a model takes and gives. One JSON
 * line when stdout is not a terminal (or with `--json`); a readable summary on a terminal.
 *
 * @module
 */

import { probeFile } from "../pipeline/probe_file.ts";
import { type ProbeInfo, type StreamInfo, turnsSideways } from "../decode/probe.ts";
import { readModelShapes } from "../infer/onnx_header.ts";
import { tasksFitting } from "../tasks/from_model.ts";
import { VxError } from "../errors.ts";

/** Prints what `input` holds: a media file's container, streams and keyframes, or a model's. */
export async function runProbe(
  input: string,
  flags: { stream?: number; json?: boolean },
): Promise<void> {
  const json = flags.json || !Deno.stdout.isTerminal();
  if (input.toLowerCase().endsWith(".onnx")) {
    const model = await probeModel(input);
    console.log(json ? JSON.stringify(model) : showModel(model));
    return;
  }
  const info = await probeFile(input, flags.stream, { anyStreams: true });
  const streams = info.streams.map(withDisplaySize);
  console.log(
    json ? JSON.stringify({ file: input, ...info, streams }) : showMedia(input, info, streams),
  );
}

/** A model's declared inputs and outputs, and the tasks whose layout they fit. */
interface ModelProbe {
  file: string;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
  /** Tasks vx reads its outputs for; `tensor` takes any model. */
  tasks: string[];
}

async function probeModel(path: string): Promise<ModelProbe> {
  let shapes;
  try {
    shapes = readModelShapes(await Deno.readFile(path));
  } catch (e) {
    throw new VxError(path, e instanceof Error ? e.message : String(e));
  }
  const plain = (v: { name: string; shape: (number | string)[] }) => ({
    name: v.name,
    shape: v.shape,
  });
  return {
    file: path,
    inputs: shapes.inputs.map(plain),
    outputs: shapes.outputs.map(plain),
    tasks: [...tasksFitting(shapes.outputs), "tensor"],
  };
}

/**
 * A video stream with the size it is shown at, when a display rotation turns it (`rotation` is
 * ffprobe's: counter-clockwise).
 */
function withDisplaySize(
  s: StreamInfo,
): StreamInfo & { displayWidth?: number; displayHeight?: number } {
  if (s.type !== "video" || s.width === undefined || s.height === undefined) return s;
  const turned = turnsSideways(s.rotation);
  return {
    ...s,
    displayWidth: turned ? s.height : s.width,
    displayHeight: turned ? s.width : s.height,
  };
}

function showMedia(
  path: string,
  info: ProbeInfo,
  streams: ReturnType<typeof withDisplaySize>[],
): string {
  const lines = [
    `${path}: ${info.container}${info.duration === null ? "" : `, ${info.duration} s`}`,
  ];
  for (const s of streams) {
    const parts = [`${s.type} ${s.codec}`];
    if (s.width !== undefined) {
      let size = `${s.width}x${s.height}`;
      if (s.rotation) {
        const clockwise = (360 - s.rotation) % 360;
        size += ` shown ${s.displayWidth}x${s.displayHeight} (turned ${clockwise}° clockwise)`;
      }
      parts.push(size);
    }
    if (s.frameRate) parts.push(`${s.frameRate} fps`);
    if (s.reorderDepth) parts.push(`B-frames (reorder ${s.reorderDepth})`);
    if (s.attachedPic) parts.push("cover art");
    if (s.index === info.videoStream) parts.push("← decoded");
    lines.push(`  stream ${s.index}: ${parts.join(", ")}`);
  }
  if (info.noVideo !== undefined) lines.push(`  nothing to decode: ${info.noVideo}`);
  const keys = info.keyframes ?? [];
  if (info.videoStream !== undefined) {
    const shown = keys.slice(0, 12).map((k) => k.pts).join(", ");
    lines.push(
      `  ${keys.length} keyframe${keys.length === 1 ? "" : "s"} at ${shown}` +
        `${keys.length > 12 ? ", …" : ""} s (--json lists them all, with byte offsets)`,
    );
  }
  return lines.join("\n");
}

function showModel(m: ModelProbe): string {
  const shape = (v: { name: string; shape: (number | string)[] }) =>
    `${v.name} [${v.shape.join(",")}]`;
  const fits = m.tasks.filter((t) => t !== "tensor");
  return [
    `${m.file}: ONNX model`,
    ...m.inputs.map((v) => `  input  ${shape(v)}`),
    ...m.outputs.map((v) => `  output ${shape(v)}`),
    fits.length === 1
      ? `  task: ${fits[0]} (vx fast VIDEO --model ${m.file})`
      : fits.length > 1
      ? `  tasks: ${fits.join(" or ")} (say which with --task)`
      : "  task: none vx reads the outputs for; --task tensor writes them",
  ].join("\n");
}
