import type { Verdict } from '../identity/judge.ts';
import type { ProcessProbe } from '../identity/probe.ts';
import type { Asked } from '../interlock/client.ts';
import type { PublicLockRecord } from '../types.ts';

/** What an answer on a lock's interlock says about the lock: undefined when nobody holds it. */
export function heldByAnswer(
  asked: Asked,
  probe: ProcessProbe,
): { verdict: Verdict & { state: 'held' | 'unknown' }; record?: PublicLockRecord } | undefined {
  if (asked.kind === 'free') return undefined;
  if (asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply) {
    const { record } = asked.reply;
    const pidns = probe.pidns?.();
    if (record.pidns !== undefined && pidns !== undefined && record.pidns !== pidns) {
      // Held for sure, but by a pid that names some other process here: out of reach, never signalled.
      const reason = `process ${record.pid} runs in another pid namespace (${record.pidns}) and holds the lock's kernel interlock; stop it inside that namespace`;
      return { record, verdict: { state: 'unknown', certainty: 'certain', reason } };
    }
    const reason =
      record.pid === probe.pid ? 'this process holds it' : `process ${record.pid} holds the lock's kernel interlock`;
    return { record, verdict: { state: 'held', certainty: 'certain', reason } };
  }
  const why = asked.kind === 'silent' ? asked.reason : 'it refused to say who it is';
  return {
    verdict: { state: 'held', certainty: 'likely', reason: `a process holds the lock's kernel interlock, but ${why}` },
  };
}
