import { readFileSync } from 'node:fs';
import { Interlock } from './server.ts';

/**
 * A holder's presence: an abstract Unix socket name of its own (Linux), bound before its record is
 * published and freed by the kernel the instant the holder's thread or process ends. A lock held
 * without an interlock (`interlock: 'off'`, or where the interlock could not be bound) names it in
 * its record, so that another thread of the same process, or a process in another pid namespace
 * that shares the network namespace, can tell a live holder from a dead one without probing a
 * pid. It contends for nothing: each holder draws its own name.
 */
export const presenceName = (id: string): string => `\0portlock/holder-${id}`;

/** Binds a presence name; undefined where the OS has no abstract names or the bind fails. */
export async function bindPresence(id: string): Promise<Interlock | undefined> {
  if (process.platform !== 'linux') return undefined;
  const bound = await Interlock.bind(presenceName(id));
  return bound === 'taken' || bound === 'unavailable' ? undefined : bound;
}

/**
 * Whether a presence name is bound in this network namespace right now, from /proc/net/unix (where
 * abstract names show with `@` for NUL; Node 20 pads them with NULs to the full address length,
 * later versions do not, so both spellings count). Undefined where the table cannot be read.
 */
export function presenceBound(id: string): boolean | undefined {
  if (process.platform !== 'linux' || !/^[0-9a-f]{16,64}$/.test(id)) return undefined;
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return undefined;
  }
  return presenceIn(table, id);
}

/** Whether the text of /proc/net/unix shows the presence name `id` bound, in either spelling. */
export function presenceIn(table: string, id: string): boolean {
  return new RegExp(` @portlock/holder-${id}@*$`, 'm').test(table);
}
