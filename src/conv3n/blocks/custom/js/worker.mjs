// conv3n custom/code worker for Bun and Node: runs one call at a time.
//
// Protocol (newline-delimited JSON; JSON text never holds a raw newline):
//   worker -> host, once:   {"ready": true, "runtime": "bun 1.x" | "node v20.x"}
//   host -> worker:         {"id": n, "path": "/abs/<hash>.mjs", "ctx": {...}}
//   worker -> host:         {"id": n, "ok": true, "console": [[level, text]...], "heap": bytes,
//                            "value": <JSON>}
//                        or {"id": n, "ok": false, "console": [...], "error": {"kind", "message",
//                            "stack"?, "line"?, "column"?}}
//   worker -> host, on process.exit() in user code: {"exit": code, "console": [...]}
// Each call imports the user's file with a fresh query string, so module state is new per call;
// globals the call added and timers it left behind are removed after it.

import fs from "node:fs";
import util from "node:util";
import { spawnSync } from "node:child_process";

const MAX_RESULT_BYTES = Number(process.argv[2] || 268435456);
const MAX_CONSOLE_BYTES = 1048576;
const WORKER_FILE = new URL(import.meta.url).pathname;
const IS_BUN = typeof globalThis.Bun !== "undefined";
const RUNTIME = IS_BUN ? `bun ${globalThis.Bun.version}` : `node ${process.version}`;

const writeOut = process.stdout.write.bind(process.stdout);
const baselineGlobals = new Set(Reflect.ownKeys(globalThis));
const realTimers = {
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  setImmediate: globalThis.setImmediate,
  clearTimeout: globalThis.clearTimeout,
  clearInterval: globalThis.clearInterval,
  clearImmediate: globalThis.clearImmediate,
};

let current = null; // {id, path, console: [], consoleBytes, timers: Set, immediates: Set}
let sequence = 0;

// ---- console capture -------------------------------------------------------------------------

function capture(level, args) {
  if (current === null) return;
  const text = util.format(...args);
  if (current.consoleBytes >= MAX_CONSOLE_BYTES) return;
  current.consoleBytes += text.length;
  if (current.consoleBytes >= MAX_CONSOLE_BYTES) {
    current.console.push([level, text.slice(0, 1000) + " ... (console output cut at 1 MiB)"]);
  } else {
    current.console.push([level, text]);
  }
}

for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
  console[level] = (...args) => capture(level === "trace" ? "debug" : level, args);
}
console.dir = (value) => capture("log", [util.inspect(value)]);
const streamWriter = (level) => (chunk, encoding, callback) => {
  capture(level, [typeof chunk === "string" ? chunk.replace(/\n$/, "") : String(chunk)]);
  if (typeof encoding === "function") encoding();
  else if (typeof callback === "function") callback();
  return true;
};
process.stdout.write = streamWriter("log");
process.stderr.write = streamWriter("error");

// ---- timers a call leaves behind are cleared after it ----------------------------------------

globalThis.setTimeout = (...args) => track(realTimers.setTimeout(...args), "timers");
globalThis.setInterval = (...args) => track(realTimers.setInterval(...args), "timers");
globalThis.setImmediate = (...args) => track(realTimers.setImmediate(...args), "immediates");
for (const name of ["setTimeout", "setInterval", "setImmediate"]) baselineGlobals.add(name);

function track(handle, kind) {
  if (current !== null) current[kind].add(handle);
  return handle;
}

// Built-ins a call might change (`Array.prototype.x = ...`): a worker whose built-ins differ
// from how they started is retired after its call, so the change reaches no other call.
const BUILTINS = [
  globalThis, Object, Object.prototype, Array, Array.prototype, String, String.prototype,
  Number, Number.prototype, Boolean.prototype, Function.prototype, Promise, Promise.prototype,
  JSON, Math, Date, Date.prototype, RegExp.prototype, Error, Error.prototype, Map.prototype,
  Set.prototype, Symbol, Reflect, console, process,
];
// Taken when the first call starts (after the worker's own set-up): for each built-in, its
// number of own keys and its data properties (getters are not compared: lazy built-ins turn
// from getters into values). `process` is compared by its keys only.
let builtinsBefore = null;

function snapshot(target, withValues) {
  const keys = Reflect.ownKeys(target);
  const data = [];
  if (withValues) {
    for (const key of keys) {
      const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
      if (descriptor && "value" in descriptor) data.push(key, descriptor.value);
    }
  }
  return { count: keys.length, data };
}

function takeSnapshot() {
  return BUILTINS.map((target) => snapshot(target, target !== process));
}

function builtinsChanged() {
  try {
    for (let j = 0; j < BUILTINS.length; j++) {
      const target = BUILTINS[j];
      const { count, data } = builtinsBefore[j];
      if (Reflect.ownKeys(target).length !== count) return true;
      for (let i = 0; i < data.length; i += 2) {
        if (!Object.is(target[data[i]], data[i + 1])) return true;
      }
    }
  } catch {
    return true; // a getter the code put in place threw
  }
  return false;
}

// Clears what the call left behind; true when the worker should not serve another call.
function cleanUp(call) {
  for (const handle of call.timers) realTimers.clearTimeout(handle);
  for (const handle of call.immediates) realTimers.clearImmediate(handle);
  for (const key of Reflect.ownKeys(globalThis)) {
    if (!baselineGlobals.has(key)) {
      try {
        delete globalThis[key];
      } catch {
        // a non-configurable global stays: builtinsChanged() sees it
      }
    }
  }
  return builtinsChanged();
}

// ---- errors ------------------------------------------------------------------------------------

function userName(path) {
  return path.endsWith(".mts") ? "code.ts" : "code.js";
}

function cleanStack(stack, path) {
  const name = userName(path);
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const userFile = new RegExp(`(?:file://)?${escaped}(?:\\?v=\\d+)?`, "g");
  const lines = String(stack).split("\n");
  const kept = [];
  let first = null;
  for (const line of lines) {
    if (!/^\s+at /.test(line)) {
      if (kept.length === 0 || !/^\s+at /.test(kept[kept.length - 1])) kept.push(line);
      continue;
    }
    if (line.includes(WORKER_FILE) || /\(?node:|\(native\)|<anonymous>\)?$/.test(line)) continue;
    if (!line.includes(path) && !line.includes("node_modules")) continue;
    const rewritten = line.replace(userFile, name);
    if (first === null) {
      const match = rewritten.match(new RegExp(`${name.replace(".", "\\.")}:(\\d+):(\\d+)`));
      if (match) first = { line: Number(match[1]), column: Number(match[2]) };
    }
    kept.push(rewritten);
  }
  return { stack: kept.join("\n").replaceAll(userFile, name), position: first };
}

function describeThrown(error, path) {
  if (error instanceof Error || (error && typeof error.stack === "string")) {
    const head = `${error.name || "Error"}: ${error.message}`;
    const { stack, position } = cleanStack(error.stack || head, path);
    return { kind: "exception", message: head, stack, ...(position || {}) };
  }
  let text;
  try {
    text = typeof error === "string" ? error : util.inspect(error, { depth: 3 });
  } catch {
    text = String(error);
  }
  return { kind: "exception", message: `a non-Error value: ${text}` };
}

function syntaxError(error, path) {
  // Bun reports a BuildMessage (or an AggregateError of them) with a position.
  const messages = error && Array.isArray(error.errors) && error.errors.length ? error.errors : [error];
  const position = messages[0] && messages[0].position;
  if (position && typeof position.line === "number") {
    const text = String(messages[0].message || error.message);
    return {
      kind: "syntax",
      message: text,
      line: position.line,
      column: position.column,
      source: position.lineText,
    };
  }
  if (!(error instanceof SyntaxError)) return null;
  // Node does not expose the position of a module's SyntaxError: ask its own checker.
  const found = { kind: "syntax", message: error.message };
  if (!IS_BUN) {
    const checked = spawnSync(process.execPath, ["--check", path], { encoding: "utf8" });
    const lines = String(checked.stderr || "").split("\n");
    const header = lines[0] && lines[0].match(/:(\d+)$/);
    if (header) {
      found.line = Number(header[1]);
      found.source = lines[1];
      const caret = (lines[2] || "").indexOf("^");
      if (caret >= 0) found.column = caret + 1;
    }
  }
  return found;
}

// ---- results -----------------------------------------------------------------------------------

class NotJson extends Error {}

function kindOf(value) {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const name = value.constructor && value.constructor.name;
  return name || "object";
}

function checkJson(value, path, ancestors) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new NotJson(`${value} at ${path} is not a JSON number`);
      return;
    case "undefined":
      return;
    case "bigint":
      throw new NotJson(`a BigInt at ${path} (convert it with Number() or String())`);
    case "function":
    case "symbol":
      throw new NotJson(`a ${typeof value} at ${path}`);
  }
  if (value === null) return;
  if (typeof value.toJSON === "function") {
    checkJson(value.toJSON(), path, ancestors);
    return;
  }
  if (ancestors.has(value)) throw new NotJson(`a cycle at ${path} (it refers to an enclosing value)`);
  if (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet) {
    throw new NotJson(`a ${kindOf(value)} at ${path} (use an object or an array)`);
  }
  if (value instanceof Promise || typeof value.then === "function") {
    throw new NotJson(`a Promise at ${path} (await it first)`);
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    throw new NotJson(`a ${kindOf(value)} at ${path} (use Array.from() or a string)`);
  }
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], `${path}[${i}]`, ancestors);
  } else {
    for (const key of Object.keys(value)) {
      const child = /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
      checkJson(value[key], child, ancestors);
    }
  }
  ancestors.delete(value);
}

function encodeResult(value, what) {
  try {
    checkJson(value, "$", new Set());
  } catch (error) {
    if (error instanceof NotJson) return { error: `${what} a value that is not JSON: ${error.message}` };
    if (error instanceof RangeError) return { error: `${what} a value nested too deeply for JSON` };
    throw error;
  }
  const text = value === undefined ? "null" : JSON.stringify(value);
  const size = Buffer.byteLength(text);
  if (size > MAX_RESULT_BYTES) {
    return { error: `${what} ${size} bytes of JSON, more than the limit of ${MAX_RESULT_BYTES}` };
  }
  return { text };
}

// ---- calls -------------------------------------------------------------------------------------

function send(text) {
  writeOut(text + "\n");
}

function reply(call, fields, valueText) {
  current = null;
  const retire = cleanUp(call);
  const head = { id: call.id, console: call.console, heap: process.memoryUsage().heapUsed, retire, ...fields };
  const json = JSON.stringify(head);
  if (valueText === undefined || valueText.length < 65536) {
    send(valueText === undefined ? json : `${json.slice(0, -1)},"value":${valueText}}`);
  } else {
    // no concatenated copy of a large value
    writeOut(`${json.slice(0, -1)},"value":`);
    writeOut(valueText);
    writeOut("}\n");
  }
}

async function run(request) {
  const call = newCall(request);
  try {
    return await runCall(request, call);
  } catch (error) {
    // the worker's own steps failed (e.g. a toJSON() that throws): still answer
    return reply(call, { ok: false, error: describeThrown(error, request.path) });
  }
}

function newCall(request) {
  return {
    id: request.id,
    path: request.path,
    console: [],
    consoleBytes: 0,
    timers: new Set(),
    immediates: new Set(),
    fail: null,
  };
}

async function runCall(request, call) {
  if (builtinsBefore === null) builtinsBefore = takeSnapshot();
  current = call;
  {
    let module;
    try {
      module = await import(`${request.path}?v=${++sequence}`);
    } catch (error) {
      const syntax = syntaxError(error, request.path);
      return reply(call, { ok: false, error: syntax || describeThrown(error, request.path) });
    }
    const main = module.default;
    if (typeof main !== "function") {
      const what = main === undefined ? "no default export" : `a default export that is a ${kindOf(main)}`;
      return reply(call, {
        ok: false,
        error: { kind: "export", message: `the code has ${what}: write \`export default function main(ctx) { ... }\`` },
      });
    }
    const ctx = request.ctx;
    const varsBefore = JSON.stringify(ctx.vars);
    let value;
    try {
      // an error thrown later by a callback of this call (a timer, an event) fails the call too
      const failed = new Promise((_, reject) => {
        call.fail = reject;
      });
      value = await Promise.race([main(ctx), failed]);
    } catch (error) {
      return reply(call, { ok: false, error: describeThrown(error, request.path) });
    }
    const encoded = encodeResult(value, "main() returned");
    if (encoded.error) return reply(call, { ok: false, error: { kind: "result", message: encoded.error } });
    const fields = { ok: true };
    if (ctx.vars === null || typeof ctx.vars !== "object" || Array.isArray(ctx.vars)) {
      return reply(call, { ok: false, error: { kind: "result", message: "ctx.vars must stay an object" } });
    }
    const vars = encodeResult(ctx.vars, "ctx.vars holds");
    if (vars.error) return reply(call, { ok: false, error: { kind: "result", message: vars.error } });
    if (vars.text !== varsBefore) fields.vars = ctx.vars;
    return reply(call, fields, encoded.text);
  }
}

process.on("exit", (code) => {
  if (current !== null) {
    fs.writeSync(1, JSON.stringify({ exit: code, console: current.console }) + "\n");
  }
});
// Errors of callbacks fail the running call; between calls they are dropped.
const failCurrent = (error) => {
  if (current !== null && current.fail) current.fail(error);
};
process.on("uncaughtException", failCurrent);
process.on("unhandledRejection", failCurrent);

let chunks = [];
let queue = Promise.resolve();
process.stdin.on("data", (chunk) => {
  let start = 0;
  let end = chunk.indexOf(10);
  while (end !== -1) {
    chunks.push(chunk.subarray(start, end));
    const line = Buffer.concat(chunks).toString("utf8");
    chunks = [];
    if (line.length > 0) {
      let request;
      try {
        request = JSON.parse(line);
      } catch (error) {
        const message = `the worker got a malformed request: ${error.message}`;
        send(JSON.stringify({ id: null, ok: false, console: [], error: { kind: "protocol", message } }));
        request = null;
      }
      if (request !== null) queue = queue.then(() => run(request));
    }
    start = end + 1;
    end = chunk.indexOf(10, start);
  }
  if (start < chunk.length) chunks.push(chunk.subarray(start));
});
process.stdin.on("end", () => process.exit(0));
send(JSON.stringify({ ready: true, runtime: RUNTIME }));
