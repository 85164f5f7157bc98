import { readText } from './probe.ts';

/** Names by uid, from the text of /etc/passwd (`name:x:uid:...`); the first entry for a uid wins. */
export function userNames(passwd: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && uid && /^\d+$/.test(uid) && !names.has(Number(uid))) names.set(Number(uid), name);
  }
  return names;
}

let users: Map<number, string> | undefined;

/** A user's name from this host's /etc/passwd, or `uid N` where it has none. */
export function userName(uid: number): string {
  users ??= userNames(readText('/etc/passwd', 'utf8') ?? '');
  return users.get(uid) ?? `uid ${uid}`;
}
