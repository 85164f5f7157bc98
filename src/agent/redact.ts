import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/** Environment variables whose values are secrets, by the naming conventions most tools follow. */
const SECRET_ENV_NAME = /(?:_TOKEN|_KEY|_SECRET|PASSWORD)$/i;
// Values this short or this common would blank out half a log while hiding nothing.
const MIN_SECRET_LENGTH = 4;
const NOT_A_SECRET = /^(?:true|false|yes|no|on|off|null|undefined|none)$/i;

const SECRET_KEY = String.raw`[\w-]*?(?:token|secret|passw(?:or)?d|api[-_]?key|access[-_]?key|private[-_]?key|[-_]key|credentials?|authorization|cookie)`;

/** `key: value` and `key=value` pairs, quoted or not, as in JSON, `util.inspect` output and query strings. */
const SECRET_PAIR = new RegExp(
  String.raw`(["']?)\b(${SECRET_KEY})\1(\s*[:=]\s*)(?!\[REDACTED\])(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^\s,;&}'"\])]+)`,
  'gi',
);
/** A raw header line such as `Authorization: Bearer abc`, whose value runs to the end of the line. */
const SECRET_HEADER_LINE = /\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*:\s*)(?!["'\s])[^\r\n]+/gi;
/** Credentials after an auth scheme, wherever they appear. */
const AUTH_SCHEME = /\b(Bearer|Basic|Digest)\s+[\w\-.~+/]+=*/g;
/** The password in a URL such as `https://user:password@host`. */
const URL_PASSWORD = /(\b[a-z][a-z\d+.-]*:\/\/[^\s:/@]+:)[^\s/@]+@/gi;

/** Options of {@link redact}. */
export interface RedactOptions {
  /**
   * The environment whose secret-named variables (`*_TOKEN`, `*_KEY`, `*_SECRET`, `*PASSWORD`)
   * have their values redacted.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /** More values to redact wherever they appear. */
  secrets?: string[];
}

function secretValues(options: RedactOptions): string[] {
  const env = options.env ?? process.env;
  const values = new Set(options.secrets ?? []);
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && SECRET_ENV_NAME.test(name)) values.add(value);
  }
  const forms = new Set<string>();
  for (const value of values) {
    if (value.length < MIN_SECRET_LENGTH || NOT_A_SECRET.test(value)) continue;
    // A secret also shows up escaped inside JSON or inspect output, or percent-encoded in a URL.
    forms.add(value);
    forms.add(JSON.stringify(value).slice(1, -1));
    forms.add(encodeURIComponent(value));
  }
  // Longest first, so that a secret containing another is hidden whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

function redactValue(match: string, quote: string, key: string, separator: string): string {
  const value = match.slice(quote.length * 2 + key.length + separator.length);
  const q = value[0] === '"' || value[0] === "'" ? value[0] : '';
  return `${quote}${key}${quote}${separator}${q}${REDACTED}${q}`;
}

/**
 * Removes secrets from text meant for a log: values of secret-named environment variables, the
 * values of `token`, `secret`, `password`, `*_key`, `Authorization` and `Cookie` fields and
 * headers, credentials after `Bearer` or `Basic`, and passwords in URLs.
 */
export function redact(text: string, options: RedactOptions = {}): string {
  let out = text;
  for (const value of secretValues(options)) out = out.split(value).join(REDACTED);
  return out
    .replace(SECRET_HEADER_LINE, `$1$2${REDACTED}`)
    .replace(SECRET_PAIR, redactValue)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`)
    .replace(URL_PASSWORD, `$1${REDACTED}@`);
}

/** An error or any thrown value as a log line, stack, properties and cause included, redacted. */
export function describeForLog(value: unknown, options: RedactOptions = {}): string {
  const text = typeof value === 'string' ? value : inspect(value, { depth: 6, breakLength: Number.POSITIVE_INFINITY });
  return redact(text, options);
}
