import { procStatFields, readText } from '../identity/probe.ts';

/**
 * Whether this process is in its terminal's foreground process group (Linux). A Ctrl-C or a hangup
 * is then sent by the terminal to the whole group, so a child in the same group has it already.
 */
export function inForegroundGroup(stat = readText('/proc/self/stat')): boolean {
  const fields = stat === undefined ? undefined : procStatFields(stat);
  if (fields === undefined) return false;
  // From field 3 on: state, ppid, pgrp, session, tty_nr, tpgid.
  const pgrp = Number(fields[2]);
  const tpgid = Number(fields[5]);
  return tpgid > 0 && tpgid === pgrp;
}
