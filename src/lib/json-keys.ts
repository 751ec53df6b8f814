/**
 * Keys JSON.parse accepts but a strict body must not have, found in the body's text (already parsed once,
 * so it is well-formed JSON):
 * - a key given twice in one object: JSON.parse keeps the last, so `{"amount":1,"amount":90}` would move 90
 *   while a log, a proxy or a client check reading the first saw 1;
 * - `__proto__`: JSON.parse makes it an own key, which zod's strict objects do not report as unknown (it is
 *   found on every object's prototype).
 * One pass over the text, without recursion (a body may nest deeply); keys are compared as decoded
 * (`"\u0061mount"` is `amount`).
 */
export function bodyKeyProblem(text: string): { path: string; message: string } | undefined {
  type Frame = { parent: Frame | undefined; segment: string | undefined; keys: Set<string> | undefined; key: string; index: number };
  let top: Frame | undefined;
  let expectKey = false;
  const pathOf = (frame: Frame | undefined, last: string) => {
    const parts = [last];
    for (let f = frame; f?.segment !== undefined; f = f.parent) parts.unshift(f.segment);
    return ["json", ...parts].join(".");
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return undefined; // not JSON after all: the parser has refused it
      if (expectKey && top?.keys) {
        const raw = text.slice(i, end + 1);
        const key = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (key === "__proto__") return { path: pathOf(top, key), message: "Unrecognized key" };
        if (top.keys.has(key)) return { path: pathOf(top, key), message: "Duplicate key" };
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = end;
    } else if (c === "{" || c === "[") {
      const segment = top === undefined ? undefined : top.keys ? top.key : String(top.index);
      top = { parent: top, segment, keys: c === "{" ? new Set() : undefined, key: "", index: 0 };
      expectKey = c === "{";
    } else if (c === "}" || c === "]") {
      top = top?.parent;
      expectKey = false;
    } else if (c === "," && top) {
      if (top.keys) expectKey = true;
      else top.index++;
    }
  }
  return undefined;
}

/** Whether the quote at `at` is escaped: an odd run of backslashes before it. */
function isEscaped(text: string, at: number) {
  let n = 0;
  while (text[at - 1 - n] === "\\") n++;
  return n % 2 === 1;
}
