// Every parity case reno knows, by the fixture folder name it recognises. Adding a case is one line here.
import type { ParityCase } from '../types.js';
import { aestheticLaionCase } from './aesthetic-laion.js';
import { clipCase } from './clip.js';
import { idefics3Case } from './idefics3.js';
import { blipTextCase, blipTextLmCase, imagerewardCase } from './imagereward.js';
import { openclipHpsv2Case } from './openclip-hpsv2.js';
import { preprocessCase } from './preprocess.js';
import { pipelineOnestepCase, textEncoderCase, unetCase, vaeCase } from './sd-turbo.js';
import { tokenizerClipCase } from './tokenizer-clip.js';

export const PARITY_CASES: ParityCase[] = [
  textEncoderCase,
  unetCase,
  vaeCase,
  pipelineOnestepCase,
  tokenizerClipCase,
  preprocessCase,
  clipCase,
  openclipHpsv2Case,
  aestheticLaionCase,
  imagerewardCase,
  blipTextCase,
  blipTextLmCase,
  idefics3Case,
];
