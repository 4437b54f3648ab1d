// A port of the parts of ftfy 6.x `fix_text` (rspeer/python-ftfy, ftfy/__init__.py: fix_text, fix_and_explain,
// _fix_encoding_one_step_and_explain; ftfy/fixes.py; ftfy/badness.py) that open_clip's `basic_clean` relies on.
// Ported: HTML unescape ("auto": skipped once a line contains '<'), mojibake repair for UTF-8 that was decoded as
// Latin-1 or Windows-1252 (ftfy's badness heuristic deciding when to try, restore_byte_a0, replace_lossy_sequences,
// utf-8-variants, decode_inconsistent_utf8), C1 controls, Latin ligatures, full/half-width forms, curly quotes,
// line breaks, surrogates, terminal escapes, control characters, NFC. All ten single-byte encodings ftfy tries are
// used (windows-125x, iso-8859-2 and macintosh through Node's ICU TextDecoder; a Node without full ICU skips them).
// Not ported: ftfy's `explain` plans and its non-default options.
import { CP1252_C1, ftfyUnescapeHtml } from './html.js';

// ---- ftfy.badness.is_bad --------------------------------------------------------------------------------------
const CAT: Record<string, string> = {
  common: '\\xa0\\xad\\xb7\\xb4\\u2013\\u2014\\u2015\\u2026\\u2019',
  c1: '\\x80-\\x9f',
  bad: '\\xa6\\xa4\\xa8\\xac\\xaf\\xb8\\u0192\\u02c6\\u02c7\\u02d8\\u02db\\u02dc\\u2020\\u2021\\u2030\\u2310\\u25ca\\ufffd\\xaa\\xba',
  law: '\\xb6\\xa7',
  currency: '\\xa2\\xa3\\xa5\\u20a7\\u20ac',
  start_punctuation: '\\xa1\\xab\\xbf\\xa9\\u0384\\u0385\\u2018\\u201a\\u201c\\u201e\\u2022\\u2039\\uf8ff',
  end_punctuation: '\\xae\\xbb\\u02dd\\u201d\\u203a\\u2122',
  numeric:
    '\\xb2\\xb3\\xb9\\xb1\\xbc\\xbd\\xbe\\xd7\\xb5\\xf7\\u2044\\u2202\\u2206\\u220f\\u2211\\u221a\\u221e\\u2229\\u222b' +
    '\\u2248\\u2260\\u2261\\u2264\\u2265\\u2116',
  kaomoji: '\\xd2-\\xd6\\xd9-\\xdc\\xf2-\\xf6\\xf8-\\xfc\\u0150\\u014c\\u016a\\u0172\\xb0',
  upper_accented:
    '\\xc0-\\xd1\\xd8\\xdc\\xdd\\u0102\\u0100\\u0104\\u0106\\u010c\\u010e\\u0110\\u0118\\u011a\\u0112\\u0116\\u011e' +
    '\\u0122\\u0130\\u012a\\u0136\\u0139\\u013d\\u0141\\u013b\\u0143\\u0147\\u0145\\u0152\\u0158\\u015a\\u015e\\u0160' +
    '\\u0162\\u0164\\u016e\\u0170\\u0178\\u0179\\u017b\\u017d\\u0490',
  lower_accented:
    '\\xdf\\xe0-\\xf1\\u0103\\u0105\\u0101\\u0107\\u010d\\u010f\\u0111\\u0119\\u011b\\u0113\\u0117\\u011f\\u0123' +
    '\\u012f\\u012b\\u0137\\u013a\\u013e\\u0142\\u013c\\u0153\\u0155\\u015b\\u015f\\u0161\\u0165\\xfc\\u017a\\u017c' +
    '\\u017e\\u0491\\ufb01\\ufb02',
  upper_common: '\\xde\\u0391-\\u03a9\\u0386\\u0388\\u0389\\u038a\\u038c\\u038e\\u038f\\u03aa\\u03ab\\u0401-\\u042f',
  lower_common: '\\u03b1-\\u03c9\\u03ac\\u03ad\\u03ae\\u03af\\u03b0\\u0430-\\u045f',
  box: '\\u2502\\u250c\\u2510\\u2518\\u251c\\u2524\\u252c\\u253c\\u2550-\\u256c\\u2580\\u2584\\u2588\\u258c\\u2590' + '\\u2591\\u2592\\u2593',
};
/** Python's str whitespace (str.isspace / re `\s` on str). */
export const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
// BADNESS_RE's alternatives, verbatim apart from Python's `\s` ({ws}), `\w` ({word}) and `.` spelled out for JS.
const BADNESS_TEMPLATE = [
  '[{c1}]',
  '[{bad}{lower_accented}{upper_accented}{box}{start_punctuation}{end_punctuation}{currency}{numeric}{law}][{bad}]',
  '[a-zA-Z][{lower_common}{upper_common}][{bad}]',
  '[{bad}][{lower_accented}{upper_accented}{box}{start_punctuation}{end_punctuation}{currency}{numeric}{law}]',
  '[{lower_accented}{lower_common}{box}{end_punctuation}{currency}{numeric}][{upper_accented}]',
  '[{box}{end_punctuation}{currency}{numeric}][{lower_accented}]',
  '[{lower_accented}{box}{end_punctuation}][{currency}]',
  '[{ws}][{upper_accented}][{currency}]',
  '[{upper_accented}{box}][{numeric}{law}]',
  '[{lower_accented}{upper_accented}{box}{currency}{end_punctuation}][{start_punctuation}][{numeric}]',
  '[{lower_accented}{upper_accented}{currency}{numeric}{box}{law}][{end_punctuation}][{start_punctuation}]',
  '[{currency}{numeric}{box}][{start_punctuation}]',
  '[a-z][{upper_accented}][{start_punctuation}{currency}]',
  '[{box}][{kaomoji}]',
  '[{lower_accented}{upper_accented}{currency}{numeric}{start_punctuation}{end_punctuation}{law}][{box}]',
  '[{box}][{end_punctuation}]',
  '[{lower_accented}{upper_accented}][{start_punctuation}{end_punctuation}][{word}]',
  '[Œœ][^A-Za-z]',
  '[{upper_accented}]°',
  '[ÂÃÎÐ][€œŠš¢£Ÿž\\xa0\\xad®©°·»{start_punctuation}{end_punctuation}–—´]',
  '×[²³]',
  '[ØÙ][{common}{currency}{bad}{numeric}{start_punctuation}ŸŠ®°µ»]' + '[ØÙ][{common}{currency}{bad}{numeric}{start_punctuation}ŸŠ®°µ»]',
  'à[²µ¹¼½¾]',
  '√[±∂†≠®™´≤≥¥µø]',
  '≈[°¢]',
  '‚Ä[ìîïòôúùû†°¢π]',
  '‚[âó][àä°ê]',
  'вЂ',
  '[ВГРС][{c1}{bad}{start_punctuation}{end_punctuation}{currency}°µ][ВГРС]',
  'ГўВЂВ[^\\n][A-Za-z ]',
  'Ã[\\xa0¡]',
  '[a-z][{ws}]?[ÃÂ][ ]',
  '^[ÃÂ][ ]',
  '[a-z.,?!{end_punctuation}]Â[ {start_punctuation}{end_punctuation}]',
  'β€[™\\xa0Ά\\xad®°]',
  '[ΒΓΞΟ][{c1}{bad}{start_punctuation}{end_punctuation}{currency}°][ΒΓΞΟ]',
  'ā€',
];
const BADNESS_RE = new RegExp(
  BADNESS_TEMPLATE.join('|').replace(/\{(\w+)\}/g, (_m, k: string) => (k === 'ws' ? PY_WS : k === 'word' ? '\\p{L}\\p{N}_' : CAT[k])),
  'u',
);

/** ftfy.badness.is_bad: does the text look like it contains mojibake? */
export function isBad(text: string): boolean {
  return BADNESS_RE.test(text);
}

// ---- single-byte codecs: ftfy.chardata.CHARMAP_ENCODINGS, in ftfy's order ----------------------------------------
interface Charmap {
  name: string;
  /** ftfy's "sloppy" codecs: undefined bytes keep their Latin-1 meaning and byte 1A stands for U+FFFD. */
  sloppy: boolean;
  enc: Map<string, number>;
}
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\xa0';
const CHARMAPS: Charmap[] = [];
{
  const add = (name: string, sloppy: boolean, high: (string | undefined)[]): void => {
    const enc = new Map<string, number>();
    high.forEach((c, i) => c !== undefined && enc.set(c, 0x80 + i));
    if (sloppy) enc.set('\ufffd', 0x1a);
    CHARMAPS.push({ name, sloppy, enc });
  };
  const bytes = Array.from({ length: 128 }, (_, i) => 0x80 + i);
  add(
    'latin-1',
    false,
    bytes.map((b) => String.fromCharCode(b)),
  );
  // Node's TextDecoder treats windows-1252 as Latin-1, so that table is spelled out (html.ts CP1252_C1).
  add(
    'sloppy-windows-1252',
    true,
    bytes.map((b) => String.fromCodePoint(b < 0xa0 ? CP1252_C1[b - 0x80] : b)),
  );
  const viaDecoder: [string, string, boolean][] = [
    ['sloppy-windows-1251', 'windows-1251', true],
    ['sloppy-windows-1250', 'windows-1250', true],
    ['sloppy-windows-1253', 'windows-1253', true],
    ['sloppy-windows-1254', 'windows-1254', true],
    ['sloppy-windows-1257', 'windows-1257', true],
    ['iso-8859-2', 'iso-8859-2', false],
    ['macroman', 'macintosh', false],
  ];
  for (const [name, label, sloppy] of viaDecoder) {
    let dec: InstanceType<typeof TextDecoder>;
    try {
      dec = new TextDecoder(label);
    } catch {
      continue; // a Node build without full ICU: that encoding is not tried
    }
    add(name, sloppy, bytes.map((b) => {
      const c = dec.decode(Uint8Array.of(b));
      return c !== '\ufffd' ? c : sloppy ? String.fromCharCode(b) : undefined;
    })); // prettier-ignore
  }
  add('cp437', false, Array.from(CP437_HIGH));
}

/** text.encode(charmap) as a binary string (one char per byte), or null where a character has no byte. */
function encodeSingleByte(text: string, cm: Charmap): string | null {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80 && !(cm.sloppy && cp === 0x1a)) out += ch;
    else {
      const b = cm.enc.get(ch);
      if (b === undefined) return null;
      out += String.fromCharCode(b);
    }
  }
  return out;
}

// ftfy.chardata.ALTERED_UTF8_RE and fixes.restore_byte_a0: UTF-8 whose byte A0 became a space.
const ALTERED_UTF8_RE = new RegExp(
  [
    '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9] ',
    '[\\xe2\\xe3] [\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]',
    '[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf] ',
    '\\xf0 [\\x80-\\xbf][\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf] [\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf][\\x80-\\xbf] ',
  ].join('|'),
  'g',
);
function restoreByteA0(b: string): string {
  b = b.replace(/\xc3 (?! |quele|quela|quilo|s )/g, '\xc3\xa0 ');
  return b.replace(ALTERED_UTF8_RE, (m) => m.replace(/ /g, '\xa0'));
}

// ftfy.chardata.LOSSY_UTF8_RE (fixes.replace_lossy_sequences): sequences that lost bytes become U+FFFD.
const LOSSY_UTF8_RE = new RegExp(
  [
    '[\\xc2-\\xdf][\\x1a]',
    '[\\xc2-\\xc3][?]',
    '\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]',
    '\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]',
    '[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]',
    '[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]',
    '\\x1a',
  ].join('|'),
  'g',
);

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decode of a binary string, or null. `variants` = ftfy's "utf-8-variants" (CESU-8 surrogate
 * pairs and Java's C0 80 for NUL), which ftfy uses when byte ED or C0 is present. */
function decodeUtf8(b: string, variants: boolean): string | null {
  if (variants) {
    b = b.replace(/\xc0\x80/g, '\x00');
    const unit = (x: string, y: string) => 0xd000 | ((x.charCodeAt(0) & 0x3f) << 6) | (y.charCodeAt(0) & 0x3f);
    b = b.replace(/\xed([\xa0-\xaf])([\x80-\xbf])\xed([\xb0-\xbf])([\x80-\xbf])/g, (_m, a, c, d, e: string) =>
      Buffer.from(String.fromCharCode(unit(a, c), unit(d, e)), 'utf8').toString('latin1'),
    );
  }
  try {
    return UTF8.decode(Buffer.from(b, 'latin1'));
  } catch {
    return null;
  }
}

const C1_RE = /[\x80-\x9f]/g;

/** ftfy.fixes.fix_c1_controls: C1 controls read as Windows-1252 (sloppy). */
function fixC1Controls(text: string): string {
  return text.replace(C1_RE, (c) => String.fromCodePoint(CP1252_C1[c.charCodeAt(0) - 0x80]));
}

// ftfy.chardata.UTF8_DETECTOR_RE: runs of what look like UTF-8 sequences read through a single-byte encoding.
const CONT_STRICT =
  '\\x80-\\xbf\\xc6\\xd8\\xe6\\xf8\\u0104\\u0105\\u013d\\u013e\\u0141\\u0142\\u0152\\u0153\\u0156\\u0157\\u015a\\u015b' +
  '\\u015e-\\u0161\\u0164\\u0165\\u0178-\\u017e\\u0192\\u02c6\\u02c7\\u02d8\\u02db-\\u02dd\\u0384-\\u0386\\u0388-\\u038a' +
  '\\u038c\\u038e\\u038f\\u0401-\\u040c\\u040e\\u040f\\u0451-\\u045c\\u045e\\u045f\\u0490\\u0491\\u2020\\u2021\\u2030' +
  '\\u2039\\u203a\\u20ac\\u2116\\u2122';
const CONT = `${CONT_STRICT} \\u2013-\\u2015\\u2018-\\u201a\\u201c-\\u201e\\u2022\\u2026`;
const FIRST_OF_2 =
  '\\xc2-\\xdf\\u0100\\u0102\\u0106\\u010c\\u010e\\u0110\\u0112\\u0116\\u0118\\u011a\\u011e\\u0122\\u012a\\u0130\\u0136' +
  '\\u0139\\u013b\\u0141\\u0143\\u0145\\u0147\\u014c\\u0150\\u0158\\u015a\\u015e\\u0160\\u0162\\u016a\\u016e\\u0170' +
  '\\u0172\\u0179\\u017b\\u017d\\u0392-\\u03a1\\u03a3-\\u03af\\u0412-\\u042f';
const FIRST_OF_3 =
  '\\xe0-\\xef\\u0101\\u0103\\u0105\\u0107\\u010d\\u010f\\u0113\\u0117\\u0119\\u011b\\u0123\\u012b\\u012f\\u0137' +
  '\\u013a\\u013c\\u0155\\u017a\\u03b0-\\u03bf\\u0430-\\u043f';
const FIRST_OF_4 = '\\xf0\\xf3\\u0111\\u011f\\u0161\\u03c0\\u03c3\\u0440\\u0443';
const UTF8_DETECTOR_RE = new RegExp(
  `(?<![${CONT_STRICT}])(?:[${FIRST_OF_2}][${CONT}]|[${FIRST_OF_3}][${CONT}]{2}|[${FIRST_OF_4}][${CONT}]{3})+`,
  'gu',
);

/** ftfy.fixes.decode_inconsistent_utf8: fix mojibake runs embedded in otherwise different text. */
function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_RE, (m) => (m.length < text.length && isBad(m) ? fixEncoding(m) : m));
}

/** One step of ftfy's _fix_encoding_one_step_and_explain. */
function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || /^[\x00-\x7f]*$/.test(text) || !isBad(text)) return text;
  for (const cm of CHARMAPS) {
    let b = encodeSingleByte(text, cm);
    if (b === null) continue;
    ALTERED_UTF8_RE.lastIndex = 0;
    if (cm.name !== 'macroman' && ALTERED_UTF8_RE.test(b)) b = restoreByteA0(b);
    if (cm.sloppy) b = b.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
    const fixed = decodeUtf8(b, /[\xed\xc0]/.test(b));
    if (fixed !== null) return fixed;
  }
  UTF8_DETECTOR_RE.lastIndex = 0;
  if (UTF8_DETECTOR_RE.test(text)) {
    UTF8_DETECTOR_RE.lastIndex = 0;
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  // ftfy's remaining branches (its "latin-1 but not windows-1252" test compares against the name
  // "windows-1252", which its list never holds) all come down to reading C1 controls as Windows-1252.
  return fixC1Controls(text);
}

function fixEncoding(text: string): string {
  for (;;) {
    const prev = text;
    text = fixEncodingOneStep(text);
    if (text === prev) return text;
  }
}

// ---- the character-level fixers of ftfy.fixes ------------------------------------------------------------------
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj',
  'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj', 'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
}; // prettier-ignore
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'gu');

/** ftfy's WIDTH_MAP: U+3000 -> space, U+FF01..U+FFEF -> their NFKC form where it differs. */
const WIDTH_MAP = new Map<string, string>([['\u3000', ' ']]);
for (let cp = 0xff01; cp < 0xfff0; cp++) {
  const ch = String.fromCodePoint(cp);
  const alt = ch.normalize('NFKC');
  if (alt !== ch) WIDTH_MAP.set(ch, alt);
}
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;

// ftfy.chardata.CONTROL_CHARS
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
const ANSI_RE = /\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])/gu;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function fixAndExplain(text: string, unescapeHtml: boolean): string {
  for (;;) {
    const orig = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]);
    text = text.replace(WIDTH_RE, (c) => WIDTH_MAP.get(c) ?? c);
    text = text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
    text = text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n');
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_RE, '');
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/** ftfy.fix_text(text) with the default TextFixerConfig (subset described at the top of this file). */
export function fixText(text: string): string {
  const out: string[] = [];
  let unescape = true; // unescape_html="auto": once a segment contains '<', no later segment is unescaped
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    const segment = text.slice(pos, end);
    if (segment.includes('<')) unescape = false;
    out.push(fixAndExplain(segment, unescape));
    pos = end;
  }
  return out.join('');
}
