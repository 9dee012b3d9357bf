/**
 * A strict little parser for the HTML vx writes (its reports): every attribute quoted, every
 * element closed (void elements and self-closed SVG aside), entities numeric or the five
 * basic ones. Enough to check that a report parses and to query its elements; not a browser.
 *
 * @module
 */

/** One element: its name, attributes, parent, children and text (entities decoded). */
export interface Node {
  name: string;
  attrs: Record<string, string>;
  parent?: Node;
  children: Node[];
  text: string;
}

const VOID = new Set(["meta", "link", "img", "br", "hr", "input", "source", "wbr"]);
const RAW = new Set(["script", "style"]);
const TAG = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>/y;
const ATTR = /([\w:-]+)(?:="([^"]*)")?/g;

function decode(s: string): string {
  return s.replace(/&(#\d+|#x[\da-f]+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    if (e[0] === "#") {
      return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    }
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[e.toLowerCase()]!;
  });
}

/**
 * Parses `html`; throws on anything malformed: a stray `<` or `&`, an unquoted attribute, a
 * closing tag that does not match. With `partial`, elements may be left open at the end (a
 * report whose run was killed), but what is there must still be well formed.
 */
export function parseHtml(html: string, partial = false): Node {
  const root: Node = { name: "#root", attrs: {}, children: [], text: "" };
  let node = root;
  let at = 0;
  if (html.startsWith("<!DOCTYPE html>")) at = "<!DOCTYPE html>".length;
  while (at < html.length) {
    const lt = html.indexOf("<", at);
    const text = html.slice(at, lt < 0 ? html.length : lt);
    if (/&(?!(#\d+|#x[\da-f]+|amp|lt|gt|quot|apos);)/i.test(text)) {
      throw new Error(`bare & at ${at}: ${text.slice(0, 40)}`);
    }
    node.text += decode(text);
    if (lt < 0) break;
    TAG.lastIndex = lt;
    const m = TAG.exec(html);
    if (!m) throw new Error(`malformed tag at ${lt}: ${html.slice(lt, lt + 60)}`);
    const [whole, close, rawName, attrText, selfClose] = m;
    const name = rawName.toLowerCase();
    at = lt + whole.length;
    if (close) {
      if (node.name !== name) throw new Error(`</${name}> at ${lt} closes <${node.name}>`);
      node = node.parent!;
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(ATTR)) attrs[a[1]] = decode(a[2] ?? "");
    const child: Node = { name, attrs, parent: node, children: [], text: "" };
    node.children.push(child);
    if (VOID.has(name) || selfClose) continue;
    if (RAW.has(name)) {
      const end = html.indexOf(`</${name}>`, at);
      if (end < 0) throw new Error(`<${name}> at ${lt} never ends`);
      child.text = html.slice(at, end);
      at = end + name.length + 3;
      continue;
    }
    node = child;
  }
  if (node !== root && !partial) throw new Error(`<${node.name}> is never closed`);
  return root;
}

/** Every element under `node` (depth first) for which `test` holds. */
export function findAll(node: Node, test: (n: Node) => boolean): Node[] {
  const out: Node[] = [];
  const walk = (n: Node) => {
    for (const c of n.children) {
      if (test(c)) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

/** Elements named `name` with `cls` among their classes (any class when absent). */
export function select(node: Node, name: string, cls?: string): Node[] {
  return findAll(
    node,
    (n) => n.name === name && (cls === undefined || (n.attrs.class ?? "").split(" ").includes(cls)),
  );
}

/** The element's text and its descendants'. */
export function textOf(node: Node): string {
  return node.text + node.children.map(textOf).join("");
}
