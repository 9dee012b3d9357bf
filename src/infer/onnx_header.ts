/**
 * Reading a model's declared input shapes straight from the ONNX protobuf, without creating a
 * session: the decoder can start on the right frame size while the session is still being
 * created (which takes most of a second in onnxruntime-web).
 *
 * Only the few fields on the way are decoded (ModelProto.graph → GraphProto.input →
 * ValueInfoProto.type → TypeProto.tensor_type → shape → dim); everything else, the weights
 * included, is skipped by its length.
 *
 * @module
 */

/** A shape as declared: numbers, or the names of symbolic dimensions. */
export type DeclaredShape = (number | string)[];

class Reader {
  at: number;
  constructor(readonly b: Uint8Array, from = 0, readonly end = b.length) {
    this.at = from;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.end) throw new Error("truncated varint");
      const byte = this.b[this.at++];
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
  }
  /** Reads a tag; returns [field, wire type], or undefined at the end. */
  tag(): [number, number] | undefined {
    if (this.at >= this.end) return undefined;
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 2) {
      const len = this.varint(); // read first: `this.at += this.varint()` would use the old `at`
      this.at += len;
    } else if (wire === 5) this.at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.at > this.end) throw new Error("field runs past its message");
  }
  /** A length-delimited field as a sub-reader. */
  sub(): Reader {
    const len = this.varint();
    const r = new Reader(this.b, this.at, this.at + len);
    this.at += len;
    if (this.at > this.end) throw new Error("message runs past its parent");
    return r;
  }
}

function fields(r: Reader, visit: (field: number, wire: number) => boolean): void {
  for (let t = r.tag(); t; t = r.tag()) {
    if (!visit(t[0], t[1])) r.skip(t[1]);
  }
}

/** A graph input or output as declared: its name and shape. */
export interface DeclaredValue {
  name: string;
  shape: DeclaredShape;
  /** Its element type, ONNX's `TensorProto.DataType` (1 is float32), when declared. */
  elemType?: number;
}

/**
 * The input shapes a model declares, in order, from its bytes. Throws when the bytes are not an
 * ONNX model.
 *
 * @example
 * ```ts
 * import { readInputShapes } from "./onnx_header.ts";
 * console.log(readInputShapes(await Deno.readFile("yolox_nano.onnx")));
 * // [{ name: "images", shape: [1, 3, 416, 416] }]
 * ```
 */
export function readInputShapes(model: Uint8Array): DeclaredValue[] {
  return readModelShapes(model).inputs;
}

/**
 * The input and output shapes a model declares, in order, from its bytes: enough to tell
 * whether a model fits a task before a session exists. Throws when the bytes are not an ONNX
 * model.
 *
 * @example
 * ```ts
 * import { readModelShapes } from "./onnx_header.ts";
 * const { outputs } = readModelShapes(await Deno.readFile("yolox_nano.onnx"));
 * console.log(outputs); // [{ name: "output", shape: [1, 3549, 85] }]
 * ```
 */
export function readModelShapes(
  model: Uint8Array,
): { inputs: DeclaredValue[]; outputs: DeclaredValue[] } {
  try {
    return parseShapes(model);
  } catch (e) {
    throw new Error(`not an ONNX model (${e instanceof Error ? e.message : e})`);
  }
}

function parseShapes(model: Uint8Array): { inputs: DeclaredValue[]; outputs: DeclaredValue[] } {
  const inputs: DeclaredValue[] = [];
  const outputs: DeclaredValue[] = [];
  const initializers = new Set<string>();
  const top = new Reader(model);
  let sawGraph = false;
  fields(top, (f, w) => {
    if (f !== 7 || w !== 2) return false; // ModelProto.graph
    sawGraph = true;
    const graph = top.sub();
    fields(graph, (gf, gw) => {
      if (gw !== 2) return false;
      if (gf === 5) {
        // TensorProto initializer: its name is field 8.
        const init = graph.sub();
        fields(init, (tf, tw) => {
          if (tf !== 8 || tw !== 2) return false;
          const s = init.sub();
          initializers.add(new TextDecoder().decode(s.b.subarray(s.at, s.end)));
          return true;
        });
        return true;
      }
      if (gf !== 11 && gf !== 12) return false; // GraphProto.input, GraphProto.output
      const value = graph.sub();
      let name = "";
      let shape: DeclaredShape = [];
      let elemType: number | undefined;
      fields(value, (vf, vw) => {
        if (vw !== 2) return false;
        if (vf === 1) {
          const s = value.sub();
          name = new TextDecoder().decode(s.b.subarray(s.at, s.end));
          return true;
        }
        if (vf !== 2) return false; // ValueInfoProto.type
        const type = value.sub();
        fields(type, (tf, tw) => {
          if (tf !== 1 || tw !== 2) return false; // TypeProto.tensor_type
          const tensor = type.sub();
          fields(tensor, (sf, sw) => {
            if (sf === 1 && sw === 0) { // Tensor.elem_type
              elemType = tensor.varint();
              return true;
            }
            if (sf !== 2 || sw !== 2) return false; // Tensor.shape
            shape = readDims(tensor.sub());
            return true;
          });
          return true;
        });
        return true;
      });
      const declared: DeclaredValue = { name, shape };
      if (elemType !== undefined) declared.elemType = elemType;
      (gf === 11 ? inputs : outputs).push(declared);
      return true;
    });
    return true;
  });
  if (!sawGraph) throw new Error("no graph");
  // Older exports list weights among the inputs too.
  return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
}

function readDims(shape: Reader): DeclaredShape {
  const out: DeclaredShape = [];
  fields(shape, (f, w) => {
    if (f !== 1 || w !== 2) return false; // TensorShapeProto.dim
    const dim = shape.sub();
    let value: number | string = "?";
    fields(dim, (df, dw) => {
      if (df === 1 && dw === 0) {
        value = dim.varint();
        return true;
      }
      if (df === 2 && dw === 2) {
        const s = dim.sub();
        value = new TextDecoder().decode(s.b.subarray(s.at, s.end)) || "?";
        return true;
      }
      return false;
    });
    out.push(value);
    return true;
  });
  return out;
}
