/**
 * Where a vx server is, as `--server` (or `VX_SERVER`) names it: `unix:PATH` for a daemon on a
 * Unix domain socket (`vx serve --socket PATH`), or `http://HOST:PORT` for one on TCP.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** A server to send requests to. */
export interface ServerAddress {
  /** As the user wrote it: what messages name. */
  name: string;
  /** The URL requests go to (the host is a placeholder on a socket). */
  base: string;
  /** The HTTP client that connects through the socket; undefined on TCP. */
  client?: Deno.HttpClient;
}

/**
 * Parses `--server`. Throws a {@linkcode UsageError} for anything but `unix:PATH` or an
 * `http://` URL.
 *
 * @example
 * ```ts
 * import { serverAddress } from "./address.ts";
 * console.log(serverAddress("http://127.0.0.1:8080").base); // http://127.0.0.1:8080
 * ```
 */
export function serverAddress(spec: string): ServerAddress {
  if (spec.startsWith("unix:")) {
    const path = spec.slice("unix:".length);
    if (path === "") throw new UsageError("--server unix:PATH needs the socket's path");
    return {
      name: spec,
      base: "http://vx",
      client: Deno.createHttpClient({ proxy: { transport: "unix", path } }),
    };
  }
  let url: URL | undefined;
  try {
    url = new URL(spec);
  } catch { /* below */ }
  if (!url || url.protocol !== "http:" || url.pathname.replace(/\/+$/, "") !== "") {
    throw new UsageError(
      `--server ${spec}: expected unix:PATH (vx serve --socket PATH) or http://HOST:PORT`,
    );
  }
  return { name: spec, base: url.origin };
}
