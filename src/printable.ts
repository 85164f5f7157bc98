// Every character of Unicode's Cc category (C0, DEL, C1), the line and paragraph separators, and
// the bidirectional marks, embeddings, overrides and isolates. Spelled as ranges, not as \p{Cc}:
// a property escape makes V8 build its character set from ICU's tables on first use, some
// hundreds of microseconds of every refusal that prints a holder.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it escapes
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from a lock record or an answer on the interlock, made safe to print: every control
 * character (C0, DEL, C1, and the Unicode line and bidirectional controls) becomes a visible
 * `\u{…}` escape, so that a forged record can neither move the cursor, change a terminal's title,
 * nor print a line of its own.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => `\\u{${char.codePointAt(0)?.toString(16)}}`);
}
