import { readFileSync } from 'node:fs';

/** The package's version, read from its package.json, two levels up from src/cli and dist/cli alike. */
export function version(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
