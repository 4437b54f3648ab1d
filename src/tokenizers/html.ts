// HTML entity decoding for the open_clip text cleaner (src/tokenizers/ftfy.ts, clip-bpe.ts).
// - `htmlUnescape` ports CPython's html.unescape (Lib/html/__init__.py: _charref, _replace_charref).
// - `ftfyUnescapeHtml` ports ftfy.fixes.unescape_html (ftfy 6.x: HTML_ENTITY_RE, _unescape_fixup).
// Limitation: the named-entity table is the HTML 4 set (252 names, HTML5 values) plus `apos;` and the HTML5
// all-caps aliases of those (AMP;, COPY;, ...), not the full 2231-name HTML5 table; other HTML5-only names
// (e.g. `&check;`) are left as they are.

/** Windows-1252 meanings of bytes 0x80-0x9F; the five undefined bytes keep their Latin-1 (C1) code point,
 * as in CPython's html._invalid_charrefs and ftfy's "sloppy-windows-1252" codec. */
export const CP1252_C1: readonly number[] = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

// name hex-codepoint pairs (HTML 4 entities with their HTML5 values, plus apos).
const TABLE =
  'quot 22 amp 26 apos 27 lt 3c gt 3e nbsp a0 iexcl a1 cent a2 pound a3 curren a4 yen a5 brvbar a6 sect a7 uml a8 ' +
  'copy a9 ordf aa laquo ab not ac shy ad reg ae macr af deg b0 plusmn b1 sup2 b2 sup3 b3 acute b4 micro b5 para ' +
  'b6 middot b7 cedil b8 sup1 b9 ordm ba raquo bb frac14 bc frac12 bd frac34 be iquest bf Agrave c0 Aacute c1 ' +
  'Acirc c2 Atilde c3 Auml c4 Aring c5 AElig c6 Ccedil c7 Egrave c8 Eacute c9 Ecirc ca Euml cb Igrave cc Iacute ' +
  'cd Icirc ce Iuml cf ETH d0 Ntilde d1 Ograve d2 Oacute d3 Ocirc d4 Otilde d5 Ouml d6 times d7 Oslash d8 Ugrave ' +
  'd9 Uacute da Ucirc db Uuml dc Yacute dd THORN de szlig df agrave e0 aacute e1 acirc e2 atilde e3 auml e4 aring ' +
  'e5 aelig e6 ccedil e7 egrave e8 eacute e9 ecirc ea euml eb igrave ec iacute ed icirc ee iuml ef eth f0 ntilde ' +
  'f1 ograve f2 oacute f3 ocirc f4 otilde f5 ouml f6 divide f7 oslash f8 ugrave f9 uacute fa ucirc fb uuml fc ' +
  'yacute fd thorn fe yuml ff OElig 152 oelig 153 Scaron 160 scaron 161 Yuml 178 fnof 192 circ 2c6 tilde 2dc ' +
  'Alpha 391 Beta 392 Gamma 393 Delta 394 Epsilon 395 Zeta 396 Eta 397 Theta 398 Iota 399 Kappa 39a Lambda 39b Mu ' +
  '39c Nu 39d Xi 39e Omicron 39f Pi 3a0 Rho 3a1 Sigma 3a3 Tau 3a4 Upsilon 3a5 Phi 3a6 Chi 3a7 Psi 3a8 Omega 3a9 ' +
  'alpha 3b1 beta 3b2 gamma 3b3 delta 3b4 epsilon 3b5 zeta 3b6 eta 3b7 theta 3b8 iota 3b9 kappa 3ba lambda 3bb mu ' +
  '3bc nu 3bd xi 3be omicron 3bf pi 3c0 rho 3c1 sigmaf 3c2 sigma 3c3 tau 3c4 upsilon 3c5 phi 3c6 chi 3c7 psi 3c8 ' +
  'omega 3c9 thetasym 3d1 upsih 3d2 piv 3d6 ensp 2002 emsp 2003 thinsp 2009 zwnj 200c zwj 200d lrm 200e rlm 200f ' +
  'ndash 2013 mdash 2014 lsquo 2018 rsquo 2019 sbquo 201a ldquo 201c rdquo 201d bdquo 201e dagger 2020 Dagger ' +
  '2021 bull 2022 hellip 2026 permil 2030 prime 2032 Prime 2033 lsaquo 2039 rsaquo 203a oline 203e frasl 2044 ' +
  'euro 20ac image 2111 weierp 2118 real 211c trade 2122 alefsym 2135 larr 2190 uarr 2191 rarr 2192 darr 2193 ' +
  'harr 2194 crarr 21b5 lArr 21d0 uArr 21d1 rArr 21d2 dArr 21d3 hArr 21d4 forall 2200 part 2202 exist 2203 empty ' +
  '2205 nabla 2207 isin 2208 notin 2209 ni 220b prod 220f sum 2211 minus 2212 lowast 2217 radic 221a prop 221d ' +
  'infin 221e ang 2220 and 2227 or 2228 cap 2229 cup 222a int 222b there4 2234 sim 223c cong 2245 asymp 2248 ne ' +
  '2260 equiv 2261 le 2264 ge 2265 sub 2282 sup 2283 nsub 2284 sube 2286 supe 2287 oplus 2295 otimes 2297 perp ' +
  '22a5 sdot 22c5 lceil 2308 rceil 2309 lfloor 230a rfloor 230b loz 25ca spades 2660 clubs 2663 hearts 2665 diams ' +
  '2666 lang 27e8 rang 27e9';

/** Names (with ';') -> text, as html.entities.html5 restricted to the table above. */
const NAMED = new Map<string, string>();
/** Names that HTML5 also accepts without ';' (the Latin-1 set and a few all-caps aliases). */
const LEGACY = new Set<string>(['amp', 'lt', 'gt', 'quot', 'AMP', 'LT', 'GT', 'QUOT', 'COPY', 'REG']);
{
  const parts = TABLE.split(' ');
  for (let i = 0; i < parts.length; i += 2) {
    const cp = parseInt(parts[i + 1], 16);
    NAMED.set(`${parts[i]};`, String.fromCodePoint(cp));
    if (cp >= 0xa0 && cp <= 0xff) LEGACY.add(parts[i]);
  }
  for (const n of ['AMP', 'LT', 'GT', 'QUOT', 'COPY', 'REG', 'TRADE']) NAMED.set(`${n};`, NAMED.get(`${n.toLowerCase()};`)!);
  for (const n of LEGACY) NAMED.set(n, NAMED.get(`${n};`) ?? NAMED.get(`${n.toLowerCase()};`)!);
}

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
  const hit = NAMED.get(s);
  if (hit !== undefined) return hit;
  // Longest legacy (semicolon-less) prefix, as the HTML5 standard and CPython do: "&amplifier" -> "&lifier".
  const cps = Array.from(s);
  for (let x = cps.length - 1; x > 1; x--) {
    const prefix = cps.slice(0, x).join('');
    if (LEGACY.has(prefix)) return NAMED.get(prefix)! + cps.slice(x).join('');
  }
  return `&${s}`;
}

/** Port of CPython `html.unescape(s)`. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_m, body: string) => replaceCharref(body));
}

/** ftfy's entity table: named entities with ';' plus all-caps variants of lower-case names ("&EACUTE;" -> "É"). */
const FTFY_NAMED = new Map<string, string>();
for (const [k, v] of NAMED) {
  if (!k.endsWith(';')) continue;
  FTFY_NAMED.set(`&${k}`, v);
  const name = k.slice(0, -1);
  const upper = `${name.toUpperCase()};`;
  if (name === name.toLowerCase() && !NAMED.has(upper)) FTFY_NAMED.set(`&${upper}`, v.toUpperCase());
}

/** Port of ftfy.fixes.unescape_html: only `&name;` / `&#..;` forms, never the semicolon-less legacy ones. */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (m) => {
    const hit = FTFY_NAMED.get(m);
    if (hit !== undefined) return hit;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return m;
  });
}
