// Every parity case reno knows, by the fixture folder name it recognises. Adding a case is one line here.
import type { ParityCase } from '../types.js';
import { pipelineOnestepCase, textEncoderCase, unetCase, vaeCase } from './sd-turbo.js';
import { tokenizerClipCase } from './tokenizer-clip.js';

export const PARITY_CASES: ParityCase[] = [textEncoderCase, unetCase, vaeCase, pipelineOnestepCase, tokenizerClipCase];
