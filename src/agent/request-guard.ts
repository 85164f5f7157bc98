import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

// Only what a Host header may hold: a name or address and a port, nothing a URL parser could
// read as user info, a path or a fragment.
const HOST_HEADER = /^(?:[a-z\d.-]+|\[[a-f\d:.]+\])(?::\d{1,5})?$/i;

/** Whether a host name or address (IPv6 with or without brackets) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const name = bare.toLowerCase();
  if (name === 'localhost') return true;
  const family = isIP(name);
  if (family === 4) return name.startsWith('127.');
  if (family === 6) {
    // The URL parser writes every spelling of an IPv6 address the one canonical way.
    const canonical = new URL(`http://[${name}]/`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[\da-f]{2}:[\da-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/**
 * Whether a URL's host is an IPv4 address written as IPv6 (`[::ffff:127.0.0.1]`). The agent's own
 * URLs never use that form, and a browser sends neither `Origin` nor `Sec-Fetch-Site` on a plain
 * GET to it, so a page could read a control route through it if the Host check let it pass.
 */
function isMappedIPv4(url: URL): boolean {
  return url.hostname.toLowerCase().startsWith('[::ffff:');
}

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Host and port of a Host header, or undefined when it is not a plain `host[:port]`. */
function parseHost(value: string): URL | undefined {
  if (!HOST_HEADER.test(value)) return undefined;
  try {
    return new URL(`http://${value}/`);
  } catch {
    return undefined;
  }
}

/**
 * Why a request to a control route must be refused, or undefined when it may proceed. A web page
 * must not reach these routes: not cross-origin (a foreign `Origin` or `Sec-Fetch-Site`), and not
 * through DNS rebinding (a name of the attacker's that resolves to 127.0.0.1 arrives as the `Host`).
 */
export function controlRequestRefusal(headers: IncomingHttpHeaders, port: number): string | undefined {
  const host = headers.host;
  if (host !== undefined) {
    const url = parseHost(host);
    if (url === undefined || !isLoopbackHost(url.hostname) || isMappedIPv4(url)) {
      return `the Host header must name localhost, 127.0.0.1 or [::1], got ${JSON.stringify(host)}`;
    }
    if (portOf(url) !== port) return `the Host header must name port ${port}, got ${JSON.stringify(host)}`;
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'http:' || !isLoopbackHost(url.hostname) || isMappedIPv4(url) || portOf(url) !== port) {
      return `cross-origin requests are refused (Origin ${JSON.stringify(origin)})`;
    }
  }
  // Browsers send this even where they leave Origin out, as on a plain cross-site GET.
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `cross-site requests are refused (Sec-Fetch-Site ${JSON.stringify(site)})`;
  }
  return undefined;
}
