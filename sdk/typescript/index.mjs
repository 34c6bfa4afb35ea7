// conv3n-block: write a conv3n process block for Node (>= 18) or Bun, with zero dependencies.
//
//   import { run } from "conv3n-block";
//   run((request) => ({ text: String(request.input).toUpperCase() }));
//
// `run(handler)` reads one request per line from stdin and answers each on stdout until stdin
// closes, so the same program serves both manifest modes: `once` (conv3n closes stdin after one
// request) and `worker` (stdin stays open). Requests are handled one at a time, in order.
// console.log/info/debug go to stderr, which conv3n puts in the node's log. The protocol is
// described in conv3n's docs/process-blocks.md. Types: index.d.ts.

import { createInterface } from "node:readline";

/** Fail the node with this message; `retryable` lets the node's retry policy try again. */
export class BlockError extends Error {
  /**
   * @param {string} message
   * @param {{retryable?: boolean, details?: Record<string, unknown>}} [options]
   */
  constructor(message, options = {}) {
    super(message);
    this.name = "BlockError";
    this.retryable = Boolean(options.retryable);
    this.details = options.details ?? {};
  }
}

/** Return `new Port("name", data)` to send the data to one of the block's named ports. */
export class Port {
  /**
   * @param {string} port
   * @param {unknown} [data]
   */
  constructor(port, data = null) {
    this.port = port;
    this.data = data;
  }
}

/**
 * @param {NodeJS.WritableStream} out
 * @param {Record<string, unknown>} message
 */
function write(out, message) {
  out.write(JSON.stringify(message) + "\n");
}

/**
 * Answer requests from stdin with `handler(request)` until stdin closes.
 *
 * @param {(request: import("./index.d.ts").Request) => unknown} handler
 * @param {{input?: NodeJS.ReadableStream, output?: NodeJS.WritableStream}} [streams]
 * @returns {Promise<void>} settles once stdin has closed and every answer is written
 */
export function run(handler, streams = {}) {
  const input = streams.input ?? process.stdin;
  const out = streams.output ?? process.stdout;
  if (!streams.output) {
    // the protocol owns stdout: console output goes to stderr (the node's log)
    console.log = console.error;
    console.info = console.error;
    console.debug = console.error;
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  let queue = Promise.resolve();
  lines.on("line", (line) => {
    queue = queue.then(() => serve(handler, line, out));
  });
  return new Promise((resolve) => {
    lines.on("close", () => {
      queue.then(resolve);
    });
  });
}

/**
 * @param {(request: import("./index.d.ts").Request) => unknown} handler
 * @param {string} line
 * @param {NodeJS.WritableStream} out
 */
async function serve(handler, line, out) {
  if (!line.trim()) return;
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    console.error("conv3n-block: ignored a request that is not JSON");
    return;
  }
  if (message === null || typeof message !== "object" || typeof message.id !== "string") {
    console.error("conv3n-block: ignored a request without an id");
    return;
  }
  const id = message.id;
  if ((message.type ?? "run") !== "run") {
    fail(out, id, `unknown request type ${JSON.stringify(message.type)}`);
    return;
  }
  const request = {
    id,
    config: message.config ?? {},
    input: message.input ?? null,
    node_id: String(message.node_id ?? ""),
    execution_id: String(message.execution_id ?? ""),
    idempotency_key: String(message.idempotency_key ?? ""),
    attempt: Number(message.attempt ?? 1),
    /** @param {string} text @param {"debug"|"info"|"warning"|"error"} [level] */
    log(text, level = "info") {
      write(out, { id, log: String(text), level });
    },
  };
  let result;
  try {
    result = await handler(request);
  } catch (error) {
    if (error instanceof BlockError) {
      fail(out, id, error.message, error.retryable, error.details);
    } else {
      const name = error instanceof Error ? error.name : "Error";
      console.error(error instanceof Error && error.stack ? error.stack : String(error));
      fail(out, id, `${name}: ${error instanceof Error ? error.message : String(error)}`, false, {
        exception: name,
      });
    }
    return;
  }
  const answer =
    result instanceof Port
      ? { id, ok: true, data: result.data ?? null, port: result.port }
      : { id, ok: true, data: result === undefined ? null : result };
  try {
    write(out, answer);
  } catch (error) {
    fail(out, id, `the handler's result is not JSON: ${error}`);
  }
}

/**
 * @param {NodeJS.WritableStream} out
 * @param {string} id
 * @param {string} message
 * @param {boolean} [retryable]
 * @param {Record<string, unknown>} [details]
 */
function fail(out, id, message, retryable = false, details = {}) {
  const error = { message: message || "failed", retryable: Boolean(retryable), details };
  try {
    write(out, { id, ok: false, error });
  } catch {
    write(out, { id, ok: false, error: { ...error, details: {} } });
  }
}
