/** One listening TCP socket, as the kernel's table shows it. */
export interface TcpListener {
  /** The local address, in its usual text form (`127.0.0.1`, `::1`, `0.0.0.0`, `::`). */
  address: string;
  port: number;
  family: 4 | 6;
  /** The uid that owns the socket: known even where its process cannot be seen. */
  uid: number;
  /** The socket's inode, which names it in `/proc/<pid>/fd` as `socket:[<inode>]`. */
  inode: string;
}

// The `st` column: 0A is TCP_LISTEN.
const LISTEN = '0A';

/** A 32-bit word as the kernel prints it (host order, little-endian here), in network byte order. */
function networkOrder(word: string): string {
  return [6, 4, 2, 0].map((at) => word.slice(at, at + 2)).join('');
}

/** Four bytes in network order (`7f000001`) as `127.0.0.1`. */
function dotted(hex: string): string {
  return [0, 2, 4, 6].map((at) => Number.parseInt(hex.slice(at, at + 2), 16)).join('.');
}

/** 32 hex digits, four 32-bit words, as the usual IPv6 text (`::1`, `::ffff:127.0.0.1`). */
function ipv6(hex: string): string {
  const bytes = [0, 8, 16, 24]
    .map((at) => networkOrder(hex.slice(at, at + 8)))
    .join('')
    .toLowerCase();
  if (bytes.startsWith('00000000000000000000ffff')) return `::ffff:${dotted(bytes.slice(24))}`;
  // The URL parser writes IPv6 the standard way (RFC 5952): zeros compressed, lowercase.
  return new URL(`http://[${bytes.match(/.{4}/g)?.join(':')}]`).hostname.slice(1, -1);
}

/**
 * The listening sockets of a port in the text of /proc/net/tcp (`family` 4) or /proc/net/tcp6
 * (`family` 6): `sl local_address rem_address st ... uid timeout inode`, addresses as hex
 * `ADDRESS:PORT`.
 */
export function listenersInTable(table: string, family: 4 | 6, port: number): TcpListener[] {
  const found: TcpListener[] = [];
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [local, state, uid, inode] = [fields[1], fields[3], fields[7], fields[9]];
    if (local === undefined || state !== LISTEN || uid === undefined || inode === undefined) continue;
    const [addressHex = '', portHex = ''] = local.split(':');
    if (Number.parseInt(portHex, 16) !== port) continue;
    if (addressHex.length !== (family === 4 ? 8 : 32) || !/^[0-9A-Fa-f]+$/.test(addressHex)) continue;
    const address = family === 4 ? dotted(networkOrder(addressHex)) : ipv6(addressHex);
    found.push({ address, port, family, uid: Number(uid), inode });
  }
  return found;
}
