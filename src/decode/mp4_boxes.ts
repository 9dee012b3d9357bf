/**
 * Reading MP4/MOV boxes from bytes in memory: headers, children, paths, big-endian fields.
 *
 * @module
 */

/** A box: its four-character type and where its header, payload and end are. */
export interface Box {
  type: string;
  /** Offset of the box's header, and of its payload, in the buffer or file. */
  start: number;
  body: number;
  end: number;
}

/** The box whose header starts at `at` in `buf`, if its size is sane (`room`: bytes left). */
export function boxAt(buf: Uint8Array, at: number, room: number): Box | undefined {
  if (at + 8 > buf.length) return undefined;
  let size = u32(buf, at);
  const type = ascii(buf, at + 4);
  let body = at + 8;
  if (size === 1) {
    if (at + 16 > buf.length) return undefined;
    size = u64(buf, at + 8);
    body = at + 16;
  } else if (size === 0) {
    size = room;
  }
  if (size < body - at || !/^[\x20-\x7e]{4}$/.test(type)) return undefined;
  return { type, start: at, body, end: at + size };
}

/** The boxes inside `parent` (a container box), in order; stops at the first broken one. */
export function children(buf: Uint8Array, parent: Box): Box[] {
  const out: Box[] = [];
  const end = Math.min(parent.end, buf.length);
  for (let at = parent.body; at + 8 <= end;) {
    const b = boxAt(buf, at, end - at);
    if (!b || b.end > end) break;
    out.push(b);
    at = b.end;
  }
  return out;
}

/** The first box along `path` below `parent`. */
export function find(buf: Uint8Array, parent: Box, path: string[]): Box | undefined {
  let cur: Box | undefined = parent;
  for (const t of path) {
    cur = children(buf, cur).find((b) => b.type === t);
    if (!cur) return undefined;
  }
  return cur;
}

/** The time scale of an `mvhd` or `mdhd` box, after its dates (32 or 64 bits by version). */
export function timescaleOf(buf: Uint8Array, header: Box): number {
  return u32(buf, header.body + (buf[header.body] === 1 ? 20 : 12));
}

export function ascii(buf: Uint8Array, at: number): string {
  return String.fromCharCode(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]);
}

export function u32(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) >>> 0) + (buf[at + 1] << 16) + (buf[at + 2] << 8) + buf[at + 3];
}

export function i32(buf: Uint8Array, at: number): number {
  return (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
}

export function u64(buf: Uint8Array, at: number): number {
  return u32(buf, at) * 2 ** 32 + u32(buf, at + 4);
}

export function i64(buf: Uint8Array, at: number): number {
  const hi = i32(buf, at);
  return hi * 2 ** 32 + u32(buf, at + 4);
}
