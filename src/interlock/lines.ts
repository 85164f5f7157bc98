import type { Readable } from 'node:stream';

/**
 * Reads `stream` as newline-ended lines of UTF-8 text, calling `onLine` with each until it returns
 * false. The stream decodes (setEncoding), so a character whose bytes come in two chunks arrives
 * whole. A line longer than `maxLength`, or that many characters without a newline, is not
 * read: `onLine` gets `undefined` instead, once, and reading stops.
 */
export function readLines(stream: Readable, maxLength: number, onLine: (line: string | undefined) => boolean): void {
  stream.setEncoding('utf8');
  let buffered = '';
  const onData = (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = end > maxLength ? undefined : buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (line === undefined || !onLine(line)) {
        stream.off('data', onData);
        if (line === undefined) onLine(undefined);
        return;
      }
    }
    if (buffered.length > maxLength) {
      stream.off('data', onData);
      onLine(undefined);
    }
  };
  stream.on('data', onData);
}
