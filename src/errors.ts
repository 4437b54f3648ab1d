// Typed errors. Every user-facing failure is one of these; the CLI has a single handler (src/cli/main.ts)
// that prints `reno: <message>` and exits with the error's code. Anything else is a bug and prints a stack.

export class RenoError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command-line usage or option values. */
export class UsageError extends RenoError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A weights file that cannot be read, or that does not match the model (missing/extra/mis-shaped keys). */
export class WeightsError extends RenoError {}

/** A model that is not found in any of the searched places. */
export class ModelNotFoundError extends RenoError {}

/** A configuration (YAML, config.json) with unknown keys, wrong types or bad values. */
export class ConfigError extends RenoError {}

/** User data (history.json, datasets, images) that cannot be used. */
export class DataError extends RenoError {}

/** Work the compute device cannot do at this size (a WebGPU binding over the adapter's limit). */
export class DeviceLimitError extends RenoError {}

/** reno's own installation is incomplete or has the wrong versions of the packages it patches. */
export class InstallError extends RenoError {}

/** A file or folder reno must write and cannot: --out at a file, a read-only file system, a full disk. */
export class OutputError extends RenoError {}

/**
 * A wasm kernel that made no progress for RENO_WASM_WATCHDOG seconds (src/runtime/watchdog.ts): the message names the
 * kernel, its input's shape and the stage. The main thread is blocked inside the kernel then, so the watchdog's
 * thread prints it (`reno: <message>`) and ends the process.
 */
export class StallError extends RenoError {}

/** A run stopped on purpose (SIGINT) or because the objective became non-finite. */
export class RunStopped extends RenoError {}

/**
 * A wasm module that aborted (`RuntimeError: Aborted()`), as a DeviceLimitError; null for any other error. wasm
 * aborts when its heap (at most 4 GB) cannot grow: the work is too large for the backend, and the module is unusable
 * afterwards, so the message says what to change instead of printing a stack.
 */
export function wasmAbort(e: unknown): DeviceLimitError | null {
  // WebAssembly.RuntimeError, by its name (this project's TypeScript libs do not declare WebAssembly)
  if (!(e instanceof Error) || e.name !== 'RuntimeError' || !/^Aborted\(/.test(e.message)) return null;
  return new DeviceLimitError(
    'the wasm backend aborted, most likely out of memory (its heap holds at most 4 GB): use a smaller --size, fewer ' +
      'or smaller reward models, or a GPU backend (--backend webgpu; tfjs-node-gpu where CUDA 11 is installed)',
  );
}
