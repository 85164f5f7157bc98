/**
 * Text from a lock record or an answer on the interlock, made safe to print: every control
 * character (C0, DEL, C1, and the Unicode line and bidirectional controls) becomes a visible
 * `\u{…}` escape, so that a forged record can neither move the cursor, change a terminal's title,
 * nor print a line of its own.
 */
export function printable(text: string): string {
  return text.replace(
    /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu,
    (char) => `\\u{${char.codePointAt(0)?.toString(16)}}`,
  );
}
