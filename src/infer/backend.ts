/**
 * Choosing the inference backend: onnxruntime-web on wasm, or on WebGPU through Deno's
 * `navigator.gpu`. `auto` takes WebGPU only where it pays: a hardware adapter.
 *
 * @module
 */

import { TaskError } from "../errors.ts";

/** A backend that runs models. */
export type Backend = "wasm" | "webgpu";

/** What a user may ask for: a backend, or `auto`. */
export type BackendChoice = Backend | "auto";

/** Every {@linkcode BackendChoice}, for the command line. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "wasm", "webgpu"];

/** The part of a `GPUAdapter` the choice reads. */
export interface AdapterLike {
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
  /** Deprecated in the WebGPU spec in favour of `info.isFallbackAdapter`; some runtimes have it. */
  readonly isFallbackAdapter?: boolean;
}

/** The part of `navigator.gpu` the choice uses; a test passes a stub. */
export interface GpuLike {
  requestAdapter(
    options?: { powerPreference?: "high-performance" | "low-power" },
  ): Promise<AdapterLike | null>;
}

/** The backend to use, the adapter for WebGPU, and why it is not what was asked for. */
export interface BackendDecision {
  backend: Backend;
  /** The adapter WebGPU runs on (only when `backend` is `webgpu`). */
  adapter?: AdapterLike;
  /** Set when `auto` (or `webgpu`) settled on wasm. */
  fallbackReason?: string;
  /**
   * `auto` found no hardware GPU and chose wasm: the machine's normal way, said in `--debug`
   * only, where a WebGPU failure is said on stderr too.
   */
  chosen?: boolean;
  /** Something to say once although the backend is the one asked for (WebGPU on software). */
  warning?: string;
}

/** Vulkan's vendor id for Mesa's own drivers (llvmpipe, lavapipe): software, not a GPU. */
const MESA_VENDOR_ID = "65541";
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|microsoft basic render|\bwarp\b/i;

/** The adapter's name as its driver gives it, for messages and benchmark tables. */
export function adapterName(adapter: AdapterLike): string {
  const i = adapter.info ?? {};
  return i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(" ") ||
    "unnamed adapter";
}

/**
 * Whether the adapter renders in software on the CPU (llvmpipe, lavapipe, SwiftShader, WARP).
 * On such an adapter onnxruntime-web's WebGPU backend runs several times slower than wasm
 * (bench/webgpu.ts, BENCHMARKS.md).
 */
export function isSoftwareAdapter(adapter: AdapterLike): boolean {
  const i = adapter.info ?? {};
  if (adapter.isFallbackAdapter || i.isFallbackAdapter) return true;
  if (i.vendor === MESA_VENDOR_ID || /^mesa$/i.test(i.vendor ?? "")) return true;
  return SOFTWARE.test([i.vendor, i.architecture, i.device, i.description].join(" "));
}

/** A short name of a software adapter: the renderer's name where it is a known one. */
function softwareName(adapter: AdapterLike): string {
  const i = adapter.info ?? {};
  const text = [i.description, i.device, i.architecture, i.vendor].join(" ");
  return SOFTWARE.exec(text)?.[0].toLowerCase() ?? adapterName(adapter);
}

/**
 * Decides the backend for `requested`. `wasm` is taken as asked. `auto` takes WebGPU when
 * `gpu` gives a hardware adapter, and otherwise wasm with the reason. `webgpu` takes any
 * adapter, software ones included (CI tests the WebGPU path on llvmpipe). Rejects with a
 * {@linkcode TaskError} when `webgpu` is asked for and there is no adapter. `gpu` defaults to
 * `navigator.gpu`; `null` stands for a runtime without WebGPU. Whether a model's
 * session then creates on WebGPU is the engine's part (`runtime.ts`).
 *
 * @example
 * ```ts
 * import { chooseBackend } from "./backend.ts";
 * const none = { requestAdapter: () => Promise.resolve(null) };
 * const d = await chooseBackend("auto", none);
 * console.log(d.backend, d.fallbackReason); // wasm no WebGPU adapter
 * ```
 */
export async function chooseBackend(
  requested: BackendChoice,
  gpu: GpuLike | null | undefined = navigatorGpu(),
  hasGpuDevice: () => boolean | undefined | "unreadable" = gpuDeviceNode,
): Promise<BackendDecision> {
  if (requested === "wasm") return { backend: "wasm" };
  let adapter: AdapterLike | null = null;
  let why = "no WebGPU adapter";
  const device = requested === "auto" ? hasGpuDevice() : undefined;
  if (device === "unreadable") {
    // Asking blind would load the Vulkan driver, whose Wayland part prints lines of its own
    // that a run without env access cannot silence (`quietWayland`).
    return {
      backend: "wasm",
      fallbackReason:
        "no read access to /dev to look for a GPU (--allow-read=/dev lets auto find one)",
      chosen: true,
    };
  }
  if (device === false) {
    // Asking for an adapter loads the Vulkan driver; with only Mesa's software one that buys
    // nothing, and we have seen its teardown crash the process at exit (SIGSEGV after a
    // successful run). Without a GPU device node there is no hardware adapter to find.
    return {
      backend: "wasm",
      fallbackReason: `${why} (no GPU device in /dev/dri or /dev)`,
      chosen: true,
    };
  }
  if (!gpu) {
    why = "no WebGPU in this runtime (navigator.gpu is undefined)";
  } else {
    quietWayland();
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      why = `no WebGPU adapter (${firstLine(e)})`;
    }
  }
  if (!adapter) {
    if (requested === "webgpu") {
      throw new TaskError(
        `--backend webgpu: ${why} on this machine; use --backend auto or --backend wasm`,
      );
    }
    return { backend: "wasm", fallbackReason: why, chosen: true };
  }
  if (isSoftwareAdapter(adapter)) {
    if (requested === "auto") {
      return {
        backend: "wasm",
        fallbackReason: `software WebGPU adapter (${softwareName(adapter)}) is slower than wasm`,
        chosen: true,
      };
    }
    return {
      backend: "webgpu",
      adapter,
      warning: `--backend webgpu on a software adapter (${softwareName(adapter)}): it runs on ` +
        "the CPU, several times slower than --backend wasm",
    };
  }
  return { backend: "webgpu", adapter };
}

/**
 * On Linux, has Deno's WebGPU use Vulkan only (`DENO_WEBGPU_BACKEND=vulkan`), unless the user set
 * the variable. With every backend enabled, wgpu also starts its GL backend, which loads EGL and
 * Mesa's `swrast_dri.so` (or NVIDIA's EGL) into the process: those libraries' exit handlers are
 * where processes died with SIGSEGV at exit (a core dump on llvmpipe: main thread in
 * `swrast_dri.so` from `exit`, a worker in `dlclose` from `libEGL_mesa.so`), and vx needs only
 * Vulkan. Needs `--allow-env=DENO_WEBGPU_BACKEND`; without it nothing changes (no prompt is
 * shown). Called on the main thread before any worker asks for an adapter.
 */
export function preferVulkan(): void {
  if (Deno.build.os !== "linux") return;
  const variable = "DENO_WEBGPU_BACKEND";
  try {
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return;
    if (Deno.env.get(variable) === undefined) Deno.env.set(variable, "vulkan");
  } catch {
    // No permissions API or no access: Deno's default stays.
  }
}

/** This runtime's `navigator.gpu`, where it has one. */
export function navigatorGpu(): GpuLike | undefined {
  return (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
}

/**
 * Whether a GPU device node exists: `/dev/nvidia0` or a DRM render node. `unreadable` without
 * read access to `/dev` (a least-privilege run); undefined where it cannot be told otherwise
 * (not Linux).
 */
export function gpuDeviceNode(): boolean | undefined | "unreadable" {
  if (Deno.build.os !== "linux") return undefined;
  try {
    for (const e of Deno.readDirSync("/dev")) {
      if (/^nvidia\d+$/.test(e.name)) return true;
    }
  } catch (e) {
    return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "unreadable"
      : undefined;
  }
  try {
    for (const e of Deno.readDirSync("/dev/dri")) {
      if (e.name.startsWith("renderD")) return true;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return undefined;
  }
  return false;
}

/** The first line of an error's message. */
export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();
}

/**
 * Looking for an adapter makes libwayland print "XDG_RUNTIME_DIR is invalid or not set" twice
 * on a headless machine. Where that variable is unset no Wayland display can be reached
 * anyway, so an absolute `WAYLAND_DISPLAY` that does not exist makes the attempt fail quietly.
 */
function quietWayland(): void {
  try {
    if (!Deno.env.get("XDG_RUNTIME_DIR") && !Deno.env.get("WAYLAND_DISPLAY")) {
      Deno.env.set("WAYLAND_DISPLAY", "/nonexistent/vx-no-wayland");
    }
  } catch {
    // No env permission: the messages stay, nothing else changes.
  }
}
