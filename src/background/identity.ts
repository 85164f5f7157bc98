import { crypto } from '../lazy-crypto.ts';
import type { PublicLockRecord } from '../types.ts';

/** What makes two `portlock up` calls the same server: the command, the directory, the name. */
export interface ServerIdentity {
  command: readonly string[];
  cwd: string;
  name: string;
}

/** Whether a holder's record is the server this identity would start. */
export function isSameServer(record: PublicLockRecord | undefined, identity: ServerIdentity): boolean {
  if (record?.command === undefined) return false;
  return (
    record.cwd === identity.cwd &&
    (record.name ?? 'portlock') === identity.name &&
    record.command.length === identity.command.length &&
    record.command.every((word, i) => word === identity.command[i])
  );
}

/** A stable text for the identity: `--port auto` prefers the port it hashes to, run after run. */
export function identityText(identity: ServerIdentity): string {
  return JSON.stringify([identity.cwd, identity.name, ...identity.command]);
}

/** The key of the lock that lets one `up` of an identity at a time decide whether to start it. */
export function startingKey(identity: ServerIdentity): string {
  return `up-${crypto().createHash('sha256').update(identityText(identity)).digest('hex').slice(0, 24)}`;
}

/** The pid that serves: the command under `portlock run`, or the holder itself. */
export function servingPid(record: PublicLockRecord): number {
  return record.supervisorPid !== undefined ? record.pid : (record.commandPid ?? record.pid);
}
