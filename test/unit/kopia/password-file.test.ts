import { test } from "node:test";
import assert from "node:assert/strict";
import { kopiaPasswordOf } from "../../../webhook/kopia/password-file.ts";

// kopia takes KOPIA_PASSWORD through Go's strings.TrimSpace (cli/password.go), which trims what
// unicode.IsSpace calls space. The expected values are written out by hand from Go's table.

const cases: [string, string, string][] = [
  ["a plain password", "correct horse", "correct horse"],
  ["one trailing newline", "correct horse\n", "correct horse"],
  ["CRLF and spaces on both sides", "  correct horse \r\n", "correct horse"],
  ["tab, vertical tab and form feed", "\t\v\fpw\f\v\t", "pw"],
  ["inner whitespace is kept", "a \t\n b", "a \t\n b"],
  ["NEL U+0085 is trimmed (String.prototype.trim keeps it)", "\u0085pw\u0085", "pw"],
  ["BOM U+FEFF is kept (String.prototype.trim removes it)", "\ufeffpw\ufeff", "\ufeffpw\ufeff"],
  ["NO-BREAK SPACE U+00A0", "\u00a0pw\u00a0", "pw"],
  ["OGHAM SPACE MARK U+1680", "\u1680pw\u1680", "pw"],
  ["EN QUAD U+2000 and HAIR SPACE U+200A", "\u2000pw\u200a", "pw"],
  ["every space from U+2000 to U+200A", "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200apw", "pw"],
  ["LINE and PARAGRAPH SEPARATOR U+2028, U+2029", "\u2028pw\u2029", "pw"],
  ["NARROW NO-BREAK SPACE U+202F and MEDIUM MATHEMATICAL SPACE U+205F", "\u202fpw\u205f", "pw"],
  ["IDEOGRAPHIC SPACE U+3000", "\u3000pw\u3000", "pw"],
  ["ZERO WIDTH SPACE U+200B is not space", "\u200bpw\u200b", "\u200bpw\u200b"],
  ["MONGOLIAN VOWEL SEPARATOR U+180E is not space", "\u180epw", "\u180epw"],
  ["NULL is not space", "\u0000pw\u0000", "\u0000pw\u0000"],
  ["information separators U+001C..U+001F are not space", "\u001cpw\u001f", "\u001cpw\u001f"],
  ["non-ASCII inside is kept", " \u00a0pässwörd ✓ geheim \t\n", "pässwörd ✓ geheim"],
  ["only whitespace", " \t\n\u3000", ""],
  ["empty", "", ""],
];

for (const [name, text, expected] of cases) {
  test(`kopiaPasswordOf trims as Go's strings.TrimSpace: ${name}`, () => {
    assert.equal(kopiaPasswordOf(text), expected);
  });
}
