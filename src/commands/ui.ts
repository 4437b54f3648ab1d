// `reno ui`: a local web app to rate pairs of images (history.json), run generations with live progress and browse
// the outputs (src/ui/). Prints its URL (with the access token) on stdout and serves until Ctrl-C, which stops a
// running generation after its current step (the folder keeps the best image so far) and then closes the server.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError, UsageError } from '../errors.js';
import { checkWritableDir } from '../util/files.js';
import { isLoopback, startUiServer, type UiServer } from '../ui/server.js';
import { modelPlaces } from './common.js';

export interface UiOptions {
  port?: number;
  host?: string;
  /** the history file the Rate page appends to (default ./history.json) */
  history?: string;
  /** the outputs root (default ./outputs) */
  outputs?: string;
  /** a text file, one prompt a line, offered on the Rate page */
  prompts?: string;
  /** a folder of images that pairs to rate can be drawn from */
  images?: string;
  preset?: string;
  modelDir?: string;
  modelsDir?: string;
  backend?: string;
  /** for tests */
  token?: string;
  log?: (line: string) => void;
  stdout?: (text: string) => void;
}

export const DEFAULT_UI_PORT = 8765;

/** Start the server; resolves once it listens (the URL is printed). */
export async function startUi(o: UiOptions): Promise<UiServer> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const stdout = o.stdout ?? ((l: string) => process.stdout.write(l + '\n'));
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? DEFAULT_UI_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be an integer from 0 to 65535, found ${JSON.stringify(o.port)}`);
  modelPlaces(o); // a bad --preset fails now
  const outputs = path.resolve(o.outputs ?? path.join(process.cwd(), 'outputs'));
  checkWritableDir(outputs, '--outputs');
  const history = path.resolve(o.history ?? path.join(process.cwd(), 'history.json'));
  checkWritableDir(path.dirname(history), '--history');
  if (fs.existsSync(history) && !fs.statSync(history).isFile()) throw new DataError(`--history ${history} is a folder, not a file`);
  let prompts: string[] | undefined;
  if (o.prompts) {
    try {
      prompts = fs
        .readFileSync(o.prompts, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
    } catch (e) {
      throw new DataError(`--prompts ${o.prompts}: cannot read it (${(e as Error).message})`);
    }
    if (!prompts.length) throw new DataError(`--prompts ${o.prompts}: no prompt in it (one a line)`);
  }
  if (o.images && !(fs.existsSync(o.images) && fs.statSync(o.images).isDirectory())) throw new DataError(`--images ${o.images}: not a folder`);
  const ui = await startUiServer({
    host,
    port,
    history,
    outputs,
    prompts,
    images: o.images,
    preset: o.preset,
    modelDir: o.modelDir,
    modelsDir: o.modelsDir,
    backend: o.backend,
    token: o.token,
    log,
  });
  if (!isLoopback(host)) log(`reno: ui: listening on ${host} (--host): other machines that can reach it and know the URL can use it`);
  log(`reno: ui: history ${history}, outputs ${outputs}; Ctrl-C to quit`);
  stdout(ui.url);
  return ui;
}

/** `reno ui`: serve until Ctrl-C (or SIGTERM). */
export async function uiCommand(o: UiOptions): Promise<void> {
  const ui = await startUi(o);
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  await new Promise<void>((resolve) => {
    let closing = false;
    const quit = () => {
      if (closing) process.exit(130);
      closing = true;
      log('reno: ui: closing (a running generation stops after its current step; Ctrl-C again to quit now)');
      ui.close().then(resolve, resolve);
    };
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);
  });
}
