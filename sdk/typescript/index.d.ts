// Types of conv3n-block (index.mjs).

/** One run of the block: its config, its input and where it runs. */
export interface Request {
  id: string;
  config: Record<string, unknown>;
  input: unknown;
  node_id: string;
  execution_id: string;
  idempotency_key: string;
  attempt: number;
  /** A line in the node's log. */
  log(text: string, level?: "debug" | "info" | "warning" | "error"): void;
}

/** Fail the node with this message; `retryable` lets the node's retry policy try again. */
export declare class BlockError extends Error {
  constructor(message: string, options?: { retryable?: boolean; details?: Record<string, unknown> });
  retryable: boolean;
  details: Record<string, unknown>;
}

/** Return `new Port("name", data)` to send the data to one of the block's named ports. */
export declare class Port {
  constructor(port: string, data?: unknown);
  port: string;
  data: unknown;
}

/** Answer requests from stdin with `handler(request)` until stdin closes. */
export declare function run(
  handler: (request: Request) => unknown | Promise<unknown>,
  streams?: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream },
): Promise<void>;
