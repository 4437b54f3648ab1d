// HTML entity decoding for the open_clip text cleaner (src/tokenizers/ftfy.ts, clip-bpe.ts).
// - `htmlUnescape` ports CPython's html.unescape (Lib/html/__init__.py: _charref, _replace_charref).
// - `ftfyUnescapeHtml` ports ftfy.fixes.unescape_html (ftfy 6.x: HTML_ENTITY_RE, _unescape_fixup).
// Named references come from the `entities` package's HTML5 table (the one html.entities.html5 holds): decodeHTML
// decodes the longest semicolon-less legacy prefix as CPython does ("&amplifier" -> "&lifier"), decodeHTMLStrict
// only names closed by ';'. Numeric references keep CPython's own rules (invalid code points dropped), which differ
// from the HTML standard's.
import { decodeHTML, decodeHTMLStrict } from 'entities';

/** Windows-1252 meanings of bytes 0x80-0x9F; the five undefined bytes keep their Latin-1 (C1) code point,
 * as in CPython's html._invalid_charrefs and ftfy's "sloppy-windows-1252" codec. */
export const CP1252_C1: readonly number[] = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c,
  0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

function invalidCodepoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) ||
    n === 0xb ||
    (n >= 0xe && n <= 0x1f) ||
    (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) ||
    (n & 0xfffe) === 0xfffe
  );
}

// CPython html._charref: numeric refs with optional ';', or up to 32 name characters with optional ';'.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(s: string): string {
  if (s[0] === '#') {
    const hex = s[1] === 'x' || s[1] === 'X';
    const digits = s.slice(hex ? 2 : 1).replace(/;$/, '');
    const num = parseInt(digits, hex ? 16 : 10); // may be huge or Infinity: only compared below
    if (num === 0) return '\ufffd';
    if (num === 0x0d) return '\r';
    if (num >= 0x80 && num <= 0x9f) return String.fromCodePoint(CP1252_C1[num - 0x80]);
    if ((num >= 0xd800 && num <= 0xdfff) || !(num <= 0x10ffff)) return '\ufffd';
    if (invalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  // a name: the whole of it, else its longest legacy (semicolon-less) prefix, else left as it is
  return decodeHTML(`&${s}`);
}

/** Port of CPython `html.unescape(s)`. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_m, body: string) => replaceCharref(body));
}

/**
 * ftfy's entity table, without enumerating it: a name closed by ';' (HTML5), or the all-caps spelling of an all
 * lower-case name that is not itself decodable ("&EACUTE;" -> "É", upper-cased as Python's str.upper does).
 */
function ftfyNamed(m: string): string | undefined {
  const d = decodeHTMLStrict(m);
  if (d !== m) return d;
  if (m !== m.toUpperCase()) return undefined;
  const lower = m.toLowerCase();
  const dl = decodeHTMLStrict(lower);
  return dl !== lower && htmlUnescape(m) === m ? dl.toUpperCase() : undefined;
}

/** Port of ftfy.fixes.unescape_html: only `&name;` / `&#..;` forms, never the semicolon-less legacy ones. */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (m) => {
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return ftfyNamed(m) ?? m;
  });
}
