// The tiny SmolVLM backbone: HuggingFaceTB/SmolVLM-256M-Instruct's folder layout (every file the `smolvlm` entry of
// configs/models.yaml requires, plus processor_config.json and generation_config.json) with a small random
// Idefics3 model (64 px images, patch 8, scale factor 2: 16 image tokens per image) so the preference model
// trains on a CPU.
// The real SmolVLM tokenizer.json (49,280 tokens, SmolLM2's byte-level BPE) is not available offline, so the
// tokenizer here is a small but real byte-level BPE in the same tokenizer.json format: SmolLM2's first three
// special tokens, all 256 byte symbols, merges that make the ViPer prompt's words single tokens (" +" and " -"
// included), then the Idefics3 added tokens <fake_token_around_image>, <image>, <end_of_utterance>, <global-img>.
// config.json follows the hub file's (transformers 4.x) spelling: text_config.rope_theta.
import * as path from 'node:path';
import { idefics3Config } from '../../src/models/idefics3/config.js';
import { Idefics3ForConditionalGeneration } from '../../src/models/idefics3/model.js';
import { Idefics3Tokenizer, IDEFICS3_TOKENS, bytesToUnicode } from '../../src/models/idefics3/tokenizer.js';
import { SEED, writeJson, writeRandomWeights } from './common.js';

export const SMOLVLM_REPO = 'HuggingFaceTB/SmolVLM-256M-Instruct';

const SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const ADDED = [IDEFICS3_TOKENS.fakeImage, IDEFICS3_TOKENS.image, IDEFICS3_TOKENS.endOfUtterance, IDEFICS3_TOKENS.globalImage];
/** Words merged into single tokens (written with the byte-level space "Ġ" where they follow a space). */
const WORDS = [
  'User',
  'Assistant',
  'Score',
  'ĠScore',
  'Ġfor',
  'Ġthis',
  'Ġimage',
  'image',
  'Ġ+',
  'Ġ-',
  'Ġthe',
  'Ġa',
  'Ġof',
  'Ġand',
  'Ġphoto',
  'Ġpainting',
  'Ġstyle',
  'ĠI',
  'Ġlike',
  'Ġdislike',
  'Ġyes',
  'Ġno',
  'Ċ',
  'ĊĊ',
];

/** A byte-level BPE tokenizer.json in the SmolLM2 / SmolVLM format, and its vocabulary size. */
export function tinySmolVlmTokenizerJson(): { json: Record<string, unknown>; size: number; ids: Record<string, number> } {
  const vocab: Record<string, number> = {};
  let next = 0;
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = next++;
  };
  SPECIAL.forEach(add);
  const byteSym = bytesToUnicode();
  byteSym.forEach(add);
  // left-to-right merge chains: "User" -> "U s", "Us e", "Use r"
  const merges: [string, string][] = [];
  for (const w of WORDS) {
    const chars = [...w];
    let acc = chars[0];
    for (const ch of chars.slice(1)) {
      if (!merges.some(([a, b]) => a === acc && b === ch)) merges.push([acc, ch]);
      acc += ch;
      add(acc);
    }
  }
  ADDED.forEach(add);
  const addedTokens = [...SPECIAL, ...ADDED].map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { json, size: next, ids: vocab };
}

/** The tiny model's config.json (Idefics3 in the hub's spelling), for a vocabulary of `vocabSize` tokens. */
export function tinySmolVlmConfig(vocabSize: number, imageTokenId: number): Record<string, unknown> {
  return {
    architectures: ['Idefics3ForConditionalGeneration'],
    model_type: 'idefics3',
    image_token_id: imageTokenId,
    scale_factor: 2,
    pad_token_id: 2,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    transformers_version: '4.46.0',
    use_cache: true,
    text_config: {
      model_type: 'llama',
      vocab_size: vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 8,
      hidden_act: 'silu',
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-5,
      rope_theta: 100000.0,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 2,
      pad_token_id: 2,
    },
    vision_config: {
      model_type: 'idefics3_vision',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_channels: 3,
      image_size: 64,
      patch_size: 8,
      hidden_act: 'gelu_pytorch_tanh',
      layer_norm_eps: 1e-6,
    },
  };
}

/** Write root/HuggingFaceTB/SmolVLM-256M-Instruct with the tiny model and tokenizer; returns the folder. */
export function writeTinySmolVlm(root: string): string {
  const dir = path.join(root, ...SMOLVLM_REPO.split('/'));
  const tok = tinySmolVlmTokenizerJson();
  const imageId = tok.ids[IDEFICS3_TOKENS.image];
  const cfgJson = tinySmolVlmConfig(tok.size, imageId);
  const config = idefics3Config(cfgJson, 'tiny smolvlm config');
  writeJson(path.join(dir, 'config.json'), cfgJson);
  writeRandomWeights(path.join(dir, 'model.safetensors'), new Idefics3ForConditionalGeneration(config), SEED + 40);
  writeJson(path.join(dir, 'tokenizer.json'), tok.json);
  const decoder = Object.fromEntries(
    [...SPECIAL, ...ADDED].map((t) => [
      String(tok.ids[t]),
      { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
    ]),
  );
  const specialMap = {
    additional_special_tokens: ADDED,
    bos_token: '<|im_start|>',
    eos_token: IDEFICS3_TOKENS.endOfUtterance,
    pad_token: '<|im_end|>',
    unk_token: '<|endoftext|>',
  };
  writeJson(path.join(dir, 'tokenizer_config.json'), {
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    ...specialMap,
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: 8192,
    processor_class: 'Idefics3Processor',
    tokenizer_class: 'GPT2Tokenizer',
    vocab_size: tok.size,
  });
  writeJson(path.join(dir, 'special_tokens_map.json'), specialMap);
  writeJson(path.join(dir, 'preprocessor_config.json'), {
    image_processor_type: 'Idefics3ImageProcessor',
    processor_class: 'Idefics3Processor',
    do_convert_rgb: true,
    do_resize: true,
    size: { longest_edge: 64 },
    max_image_size: { longest_edge: 64 },
    do_image_splitting: false,
    resample: 1,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    do_pad: true,
  });
  writeJson(path.join(dir, 'processor_config.json'), { image_seq_len: config.imageSeqLen, processor_class: 'Idefics3Processor' });
  // Idefics3's chat template (role capitalised, "User:<image>..." with no space after ':' before an image).
  writeJson(path.join(dir, 'chat_template.json'), {
    chat_template:
      "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
  });
  writeJson(path.join(dir, 'generation_config.json'), {
    bos_token_id: 1,
    eos_token_id: [2, tok.ids[IDEFICS3_TOKENS.endOfUtterance]],
    pad_token_id: 2,
  });
  // the tokenizer must load and agree with the model on the image token
  const check = Idefics3Tokenizer.load(dir);
  if (check.tokenId(IDEFICS3_TOKENS.image) !== config.imageTokenId || check.size !== config.text.vocabSize)
    throw new Error('tiny SmolVLM: tokenizer and config disagree');
  return dir;
}
