/**
 * `vx serve --socket PATH`: making the socket's path ours before listening on it. A socket file
 * that nobody answers on (a server that was killed left it) is replaced; one a server answers on
 * is refused, so two daemons never share a path; anything that is not a socket is left alone.
 *
 * @module
 */

import { VxError } from "../errors.ts";

/**
 * Readies `path` for a new listener: nothing there, or a stale socket (connecting is refused),
 * which is removed. Throws a {@linkcode VxError} naming the path when a server answers on it or
 * when it is something other than a socket.
 *
 * @example
 * ```ts
 * import { claimSocket } from "./socket.ts";
 * await claimSocket("/run/user/1000/vx.sock");
 * Deno.serve({ path: "/run/user/1000/vx.sock" }, () => new Response("ok"));
 * ```
 */
export async function claimSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new VxError(path, `cannot use this socket path (${e instanceof Error ? e.message : e})`);
  }
  if (!info.isSocket) {
    throw new VxError(path, "exists and is not a socket; remove it or pick another --socket path");
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    // Nobody listens: a server that did not exit cleanly left it.
    await Deno.remove(path);
    return;
  }
  throw new VxError(path, "a vx server is already listening on this socket");
}
