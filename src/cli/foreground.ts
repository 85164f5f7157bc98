import { readFileSync } from 'node:fs';
import { procStatFields } from '../identity/probe.ts';

/**
 * Whether this process is in its terminal's foreground process group (Linux). A Ctrl-C or a hangup
 * is then sent by the terminal to the whole group, so a child in the same group has it already.
 */
export function inForegroundGroup(stat = readStat()): boolean {
  const fields = stat === undefined ? undefined : procStatFields(stat);
  if (fields === undefined) return false;
  const pgrp = Number(fields[2]);
  const tpgid = Number(fields[5]);
  return tpgid > 0 && tpgid === pgrp;
}

function readStat(): string | undefined {
  try {
    return readFileSync('/proc/self/stat', 'latin1');
  } catch {
    return undefined;
  }
}
