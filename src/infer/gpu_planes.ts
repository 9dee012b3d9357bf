/**
 * Planar 8-bit frames to a float32 model input on the GPU: the frame's bytes are uploaded as
 * they are and a compute shader reorders the planes and scales them into a GPU-resident tensor
 * that onnxruntime-web's WebGPU session reads in place. Measured on an NVIDIA H200 for
 * YOLOX-Nano (BENCHMARKS.md, `bench/webgpu.ts`): 32.6 ms a frame against 117 ms with the float
 * input built on the CPU and uploaded by onnxruntime-web. On llvmpipe it changes nothing.
 *
 * @module
 */

/** Three numbers, one per output channel. */
export type PerChannel = readonly [number, number, number];

/**
 * Which source plane feeds each output channel, and the affine map applied to its bytes:
 * `byte * scale + offset`, where both may differ per channel (a mean and std folded in).
 */
export interface PlaneLayout {
  /** `order[c]` is the source plane of output channel `c`. */
  order: readonly [number, number, number];
  /** One factor for every channel, or one per output channel. */
  scale: number | PerChannel;
  /** Added after scaling, per output channel; none when absent. */
  offset?: PerChannel;
}

/** The layout's factor and offset for output channel `c`. */
function affine(layout: PlaneLayout, c: number): [number, number] {
  const scale = typeof layout.scale === "number" ? layout.scale : layout.scale[c];
  return [scale, layout.offset?.[c] ?? 0];
}

/**
 * What the shader computes, on the CPU: output channel `c` is plane `layout.order[c]` of
 * `frame` times its scale plus its offset, written into `out` (a new array when not given). The
 * CPU path of tasks that take planar frames, and the wasm rerun of a frame whose WebGPU run
 * failed.
 *
 * @example
 * ```ts
 * import { planesToFloat } from "./gpu_planes.ts";
 * const gbr = new Uint8Array([10, 20, 30]); // one pixel: G, B, R planes
 * console.log(planesToFloat(gbr, { order: [2, 0, 1], scale: 1, offset: [0, 0, -1] }));
 * // Float32Array [30, 10, 19]
 * ```
 */
export function planesToFloat(
  frame: Uint8Array,
  layout: PlaneLayout,
  out: Float32Array = new Float32Array(frame.length),
): Float32Array {
  const plane = frame.length / 3;
  for (let c = 0; c < 3; c++) {
    const src = frame.subarray(layout.order[c] * plane, (layout.order[c] + 1) * plane);
    const [scale, offset] = affine(layout, c);
    const dst = c * plane;
    if (scale === 1 && offset === 0) {
      out.set(src, dst); // one native typed-array conversion
      continue;
    }
    for (let i = 0; i < plane; i++) out[dst + i] = src[i] * scale + offset;
  }
  return out;
}

/** A converter bound to one device and one plane size; reuses its buffers frame to frame. */
export interface GpuPlanes {
  /** Uploads `frame` (three planes of `plane` bytes) and converts it into `output`. */
  convert(frame: Uint8Array<ArrayBuffer>): void;
  /** The float32 storage buffer the tensor is made from. */
  readonly output: GPUBuffer;
}

/** Creates a converter for planes of `plane` bytes on `device`. */
export function gpuPlanes(device: GPUDevice, plane: number, layout: PlaneLayout): GpuPlanes {
  const bytes = 3 * plane;
  const src = device.createBuffer({
    size: Math.ceil(bytes / 4) * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  const output = device.createBuffer({
    size: bytes * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const [p0, p1, p2] = layout.order;
  const f = (x: number) => `${x.toPrecision(9)}`;
  const [s0, o0] = affine(layout, 0).map(f);
  const [s1, o1] = affine(layout, 1).map(f);
  const [s2, o2] = affine(layout, 2).map(f);
  const module = device.createShaderModule({
    code: `
      @group(0) @binding(0) var<storage, read> src: array<u32>;
      @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
      const PLANE: u32 = ${plane}u;
      const ORDER = array<u32, 3>(${p0}u, ${p1}u, ${p2}u);
      const SCALE = array<f32, 3>(${s0}, ${s1}, ${s2});
      const OFFSET = array<f32, 3>(${o0}, ${o1}, ${o2});
      @compute @workgroup_size(256)
      fn main(@builtin(global_invocation_id) id: vec3<u32>) {
        let o = id.x;
        if (o >= 3u * PLANE) { return; }
        let c = o / PLANE;
        let byte = ORDER[c] * PLANE + (o % PLANE);
        let v = (src[byte / 4u] >> (8u * (byte % 4u))) & 0xffu;
        dst[o] = f32(v) * SCALE[c] + OFFSET[c];
      }`,
  });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: src } },
      { binding: 1, resource: { buffer: output } },
    ],
  });
  // writeBuffer wants a multiple of 4 bytes.
  const padded = bytes % 4 === 0 ? undefined : new Uint8Array(Math.ceil(bytes / 4) * 4);
  return {
    output,
    convert(frame) {
      if (padded) padded.set(frame.subarray(0, bytes));
      device.queue.writeBuffer(src, 0, padded ?? frame, 0, padded ? padded.length : bytes);
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(Math.ceil(bytes / 256));
      pass.end();
      device.queue.submit([encoder.finish()]);
    },
  };
}
