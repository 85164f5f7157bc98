import { type JudgeContext, judgeRecordFile, type Verdict } from '../identity/judge.ts';
import type { ProcessProbe } from '../identity/probe.ts';
import type { RecordFile } from '../record/read-record.ts';
import { ownTokens } from './own-tokens.ts';

/**
 * The judge of lock files as this process sees them: the OS through `probe`, and the tokens of the
 * locks and claims it holds itself. `interlockFree`: set when the lock's interlock is known free.
 */
export function judgeWith(
  probe: ProcessProbe,
  interlockFree?: JudgeContext['interlockFree'],
): (file: RecordFile) => Verdict {
  const context: JudgeContext = { probe, ownsToken: ownTokens.has, ...(interlockFree && { interlockFree }) };
  return (file) => judgeRecordFile(file, context);
}
