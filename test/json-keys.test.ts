import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bodyKeyProblem } from "../src/lib/json-keys";

describe("bodyKeyProblem: keys JSON.parse accepts but a strict body must not have", () => {
  it("finds a key given twice, decoded, at any depth, with its path", () => {
    expect(bodyKeyProblem(`{"toUserId":"b","amount":1,"amount":90}`)).toEqual({ path: "json.amount", message: "Duplicate key" });
    expect(bodyKeyProblem(`{"amount":1,"\\u0061mount":90}`)).toEqual({ path: "json.amount", message: "Duplicate key" });
    expect(bodyKeyProblem(`{"events":[{"type":"view"},{"type":"like","at":1,"at":2}]}`)).toEqual({ path: "json.events.1.at", message: "Duplicate key" });
    expect(bodyKeyProblem(`{"a":{"x":1},"b":{"x":1}}`)).toBeUndefined();
    expect(bodyKeyProblem(`{"a":"\\"amount\\":","amount":1}`)).toBeUndefined();
    expect(bodyKeyProblem(`{"a\\\\":1,"a":2}`)).toBeUndefined();
  });

  it("finds a __proto__ key however it is spelled", () => {
    expect(bodyKeyProblem(`{"__proto__":{"x":1}}`)).toEqual({ path: "json.__proto__", message: "Unrecognized key" });
    expect(bodyKeyProblem(`{"a":[{"\\u005f_proto__":1}]}`)).toEqual({ path: "json.a.0.__proto__", message: "Unrecognized key" });
    expect(bodyKeyProblem(`{"note":"__proto__"}`)).toBeUndefined();
  });

  it("passes every JSON text a serializer writes (no duplicate keys), and finds one added to any object", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        const found = bodyKeyProblem(text);
        if (!text.includes("__proto__")) expect(found).toBeUndefined();
        const dup = text.replace(/\{"((?:[^"\\]|\\.)*)":/, (all, key: string) => `{"${key}":0,"${key}":`);
        if (dup !== text && !text.includes("__proto__")) expect(bodyKeyProblem(dup)?.message).toBe("Duplicate key");
      }),
    );
  });

  it("walks deep nesting without recursion", () => {
    const depth = 50_000;
    expect(bodyKeyProblem(`${"[".repeat(depth)}${"]".repeat(depth)}`)).toBeUndefined();
    expect(bodyKeyProblem(`${'{"a":'.repeat(depth)}{"b":1,"b":2}${"}".repeat(depth)}`)?.message).toBe("Duplicate key");
  });
});
