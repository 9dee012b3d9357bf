/**
 * Giving a model's graph inputs and outputs other fixed dimensions, in memory, before a session
 * is created: a fully convolutional detector exported at 416×416 runs at 416×256 once its
 * declared input says so (issue 26, BENCHMARKS.md "Rectangular inputs").
 *
 * Only the messages on the way to the edited shapes are re-encoded (ModelProto.graph →
 * GraphProto.input/output → ValueInfoProto.type → TypeProto.tensor_type → shape); every other
 * field, the weights included, is copied byte for byte. The graph's `value_info` (shapes of
 * intermediate tensors, a hint only) is dropped, since it would contradict the new sizes.
 * Whether the graph really computes at the new size (a Reshape to a constant shape does not)
 * only a session can tell: this edits declarations, nothing else.
 *
 * @module
 */

import { concat } from "../bytes.ts";

/** A shape that cannot replace the declared one (not a malformed model). */
class Misfit extends Error {}

/** A field of a message: its number, wire type and where its bytes lie. */
interface Field {
  field: number;
  wire: number;
  /** From its tag to its end: the bytes to copy as they are. */
  start: number;
  /** A length-delimited field's payload. */
  payload: number;
  end: number;
}

function varint(b: Uint8Array, at: { i: number }, end: number): number {
  let result = 0;
  let scale = 1;
  for (;;) {
    if (at.i >= end) throw new Error("truncated varint");
    const byte = b[at.i++];
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) return result;
    scale *= 128;
  }
}

function* fields(b: Uint8Array, from: number, end: number): Generator<Field> {
  const at = { i: from };
  while (at.i < end) {
    const start = at.i;
    const tag = varint(b, at, end);
    const wire = tag & 7;
    let payload = at.i;
    if (wire === 0) varint(b, at, end);
    else if (wire === 1) at.i += 8;
    else if (wire === 5) at.i += 4;
    else if (wire === 2) {
      const len = varint(b, at, end);
      payload = at.i;
      at.i += len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (at.i > end) throw new Error("field runs past its message");
    yield { field: Math.floor(tag / 8), wire, start, payload, end: at.i };
  }
}

function encodeVarint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A length-delimited field of `parts`, concatenated. */
function message(field: number, parts: Uint8Array[]): Uint8Array[] {
  const len = parts.reduce((n, p) => n + p.length, 0);
  return [new Uint8Array([...encodeVarint(field * 8 + 2), ...encodeVarint(len)]), ...parts];
}

/** `TensorShapeProto` with every dimension a `dim_value`. */
function shapeProto(dims: readonly number[]): Uint8Array[] {
  const dimParts = dims.flatMap((d) => message(1, [new Uint8Array([0x08, ...encodeVarint(d)])]) // Dimension.dim_value
  );
  return message(2, dimParts); // TypeProto.Tensor.shape
}

/**
 * Rewrites the declared dimensions of the graph inputs and outputs named in `dims` (each to a
 * fixed, numeric shape) and drops the graph's `value_info`; returns the new model's bytes and
 * leaves `model` as it was.
 *
 * Throws when the bytes are not an ONNX model, when a name in `dims` is neither a graph input
 * nor output, or when a new shape's rank differs from the declared one.
 *
 * @example
 * ```ts
 * import { reshapeModel } from "./onnx_reshape.ts";
 * import { readModelShapes } from "./onnx_header.ts";
 * import { tinyYolox } from "../fixtures/tiny_yolox.ts";
 * const wide = reshapeModel(tinyYolox(), { images: [1, 3, 64, 96], output: [1, 126, 85] });
 * console.log(readModelShapes(wide).inputs[0].shape); // [1, 3, 64, 96]
 * ```
 */
export function reshapeModel(
  model: Uint8Array,
  dims: Readonly<Record<string, readonly number[]>>,
): Uint8Array {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  let sawGraph = false;
  try {
    for (const f of fields(model, 0, model.length)) {
      if (f.field !== 7 || f.wire !== 2) {
        out.push(model.subarray(f.start, f.end));
        continue;
      }
      sawGraph = true;
      out.push(...message(7, graph(model, f, dims, seen)));
    }
  } catch (e) {
    if (e instanceof Misfit) throw new Error(e.message);
    throw new Error(`not an ONNX model (${e instanceof Error ? e.message : e})`);
  }
  if (!sawGraph) throw new Error("not an ONNX model (no graph)");
  const missing = Object.keys(dims).filter((n) => !seen.has(n));
  if (missing.length > 0) {
    throw new Error(`the graph has no input or output named ${missing.join(", ")}`);
  }
  return concat(out);
}

function graph(
  b: Uint8Array,
  g: Field,
  dims: Readonly<Record<string, readonly number[]>>,
  seen: Set<string>,
): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (const f of fields(b, g.payload, g.end)) {
    if (f.field === 13) continue; // GraphProto.value_info: hints that no longer hold
    if ((f.field === 11 || f.field === 12) && f.wire === 2) { // input, output
      const edited = valueInfo(b, f, dims, seen);
      if (edited) {
        parts.push(...message(f.field, edited));
        continue;
      }
    }
    parts.push(b.subarray(f.start, f.end));
  }
  return parts;
}

/** The ValueInfoProto's fields with its shape replaced; undefined when it is not to change. */
function valueInfo(
  b: Uint8Array,
  v: Field,
  dims: Readonly<Record<string, readonly number[]>>,
  seen: Set<string>,
): Uint8Array[] | undefined {
  let name: string | undefined;
  for (const f of fields(b, v.payload, v.end)) {
    if (f.field === 1 && f.wire === 2) {
      name = new TextDecoder().decode(b.subarray(f.payload, f.end));
    }
  }
  const want = name === undefined ? undefined : dims[name];
  if (name === undefined || want === undefined) return undefined;
  seen.add(name);
  const parts: Uint8Array[] = [];
  for (const f of fields(b, v.payload, v.end)) {
    if (f.field !== 2 || f.wire !== 2) { // ValueInfoProto.type
      parts.push(b.subarray(f.start, f.end));
      continue;
    }
    const type: Uint8Array[] = [];
    for (const t of fields(b, f.payload, f.end)) {
      if (t.field !== 1 || t.wire !== 2) { // TypeProto.tensor_type
        type.push(b.subarray(t.start, t.end));
        continue;
      }
      const tensor: Uint8Array[] = [];
      let rank: number | undefined;
      for (const s of fields(b, t.payload, t.end)) {
        if (s.field === 2 && s.wire === 2) {
          rank = [...fields(b, s.payload, s.end)].filter((d) => d.field === 1).length;
          continue; // replaced below
        }
        tensor.push(b.subarray(s.start, s.end));
      }
      if (rank !== undefined && rank !== want.length) {
        throw new Misfit(`${name} has rank ${rank}, not ${want.length}`);
      }
      tensor.push(...shapeProto(want));
      type.push(...message(1, tensor));
    }
    parts.push(...message(2, type));
  }
  return parts;
}
