import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { notOwnersNextStep, unlistedNextStep } from '../../errors.ts';
import { lockFileElsewhere, otherDirectory, shellWord } from '../../lock/held-through.ts';
import { stopLock } from '../../lock/stop.ts';
import { describeHolder, listed } from '../../record/holder-text.ts';
import { parsePort, parseSeconds, stringValue, UsageError } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { checkDirFor, describeRecord } from '../output.ts';

export const stop: Command = {
  name: 'stop',
  usage: 'portlock stop <port> [--timeout <seconds>] [--force] [options]',
  summary: 'stop the process that holds a port, and confirm it is gone',
  description:
    "Asks the holder to stop through the lock's kernel interlock, proving the right to with the token in the\n" +
    'lock file (mode 0600, so only its owner can read it), and waits until the lock is released and the\n' +
    'holder has exited. A holder under `portlock run` passes the request on to its command as SIGTERM.\n' +
    'It never waits longer than the timeout for a step (a question to the holder gets at least 0.1 s).\n' +
    'With --force, a holder that refuses, does not answer or takes too long is sent SIGTERM, then\n' +
    'SIGKILL: first the process that took the lock, then every process that still holds its kernel\n' +
    'interlock. Processes that hold the interlock with no record (a command that outlived its\n' +
    '`portlock run`, a background child that inherited the lock) cannot be asked, and are signalled\n' +
    "with --force. Once the holder is stopped, the lock file it left is removed. Another user's\n" +
    'process is never signalled: only that user or root can stop it.',
  arguments: [['<port>', 'the port whose holder to stop (1-65535)']],
  options: {
    timeout: {
      type: 'string',
      value: '<seconds>',
      description: 'how long to wait for the release after each step (request, SIGTERM, SIGKILL)',
      default: '10',
    },
    force: {
      type: 'boolean',
      short: 'f',
      description: 'if the holder does not stop on request, send it SIGTERM, then SIGKILL',
    },
  },
  exitCodes: [
    [EXIT.ok, 'stopped, or nothing was running'],
    [EXIT.failure, 'still running: the holder refused, does not answer, or took too long'],
    [EXIT.unknown, 'unknown: the holder cannot be checked from here (another host); nothing was sent'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock stop 5338', 'ask the holder of port 5338 to stop, and wait up to 10 s'],
    ['portlock stop 5338 --timeout 3 --force', 'ask, then SIGTERM, then SIGKILL, 3 s apart'],
  ],
  async run({ positionals, values, out, dir, name }) {
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const port = parsePort(positionals[0], '<port>');
    checkDirFor(out, dir);
    const timeout = parseSeconds(stringValue(values, 'timeout') ?? '10', '--timeout');
    const force = values.force === true;
    const result = await stopLock({ port, dir, name, timeout, force });
    const record = result.before.record;
    // Held orphaned: no record, and the kernel names the holders.
    const orphans = result.before.orphaned ? (result.before.holders ?? []) : [];
    const who =
      record !== undefined
        ? ` ${describeRecord(record)}`
        : orphans.length > 0
          ? ` ${listed(orphans.map(describeHolder))}`
          : '';
    if (!out.json) {
      for (const { pid, signals, outcome } of result.processes)
        out.err(`pid ${pid}: sent ${signals.join(', then ')}; ${outcome}.`);
    }
    if (result.outcome === 'stopped' || result.outcome === 'not-running') {
      if (out.json) out.document({ port, ...result });
      else if (result.outcome === 'stopped') out.out(`port ${port}: stopped${who}: ${result.reason}`);
      else out.out(`port ${port}: not running (${result.reason})`);
      return EXIT.ok;
    }
    const code = result.outcome === 'unknown' ? 'EUNKNOWN' : 'ESTILLRUNNING';
    // An orphaned hold's reason, and another user's, names the holders itself.
    const held =
      result.outcome === 'unknown'
        ? `port ${port}:${who || ' locked'}: ${result.reason}`
        : result.before.unlistedSocket
          ? `port ${port} cannot be stopped from here: ${result.reason}`
          : orphans.length > 0 || result.holderUser !== undefined
            ? `port ${port} is ${result.reason}`
            : `port ${port} is still held by${who || ' a process'}: ${result.reason}`;
    out.error(code, `${held}.`, { port, ...result });
    // Held through a lock file in another directory of this user's: that directory's token stops it.
    const elsewhere = lockFileElsewhere(result.before.record, result.before.path);
    const actable = result.before.record !== undefined && otherDirectory(result.before.record, name).actable;
    const unlisted = result.before.unlistedSocket;
    if (!out.json && unlisted !== undefined) {
      out.err(unlistedNextStep(unlisted, result.before.holders, `port ${port}`));
    } else if (!out.json && result.holderUser !== undefined) {
      const user = result.holderUser;
      out.err(
        process.getuid?.() === 0
          ? `Next step: stop it as ${user} (as ${user}: portlock stop ${port}), or kill it yourself.`
          : user === 'another user'
            ? `Next step: ask whoever runs it (or root) to stop it; as that user: portlock stop ${port}.`
            : `Next step: ask ${user === 'root' ? 'root' : `${user} (or root)`} to stop it; as ${user}: portlock stop ${port}.`,
      );
    } else if (!out.json && elsewhere !== undefined && actable && result.signalled.length === 0) {
      out.err(`Next step: portlock stop ${port} --dir ${shellWord(dirname(elsewhere))}`);
    } else if (
      !out.json &&
      result.notOwners !== undefined &&
      result.before.record !== undefined &&
      existsSync(result.before.path)
    ) {
      // The record cannot speak for the process it names (another user's), which may still be its holder.
      out.err(notOwnersNextStep(result.before.record.pid, result.notOwners, shellWord(result.before.path)));
    } else if (!out.json && force && result.outcome === 'still-running' && result.signalled.length === 0) {
      // Nothing the kernel shows holding the lock could be verified: portlock signals nothing else.
      const pid = result.before.record?.pid;
      out.err(
        pid === undefined
          ? 'Next step: find the process that holds it and stop it yourself; portlock signals only a process the kernel shows holding the lock.'
          : `Next step: if pid ${pid} is the holder, stop it yourself (kill ${pid}): its lock goes with it; remove ${shellWord(result.before.path)} only once you know pid ${pid} is not the holder and no other process holds the lock. portlock signals only a process the kernel shows holding the lock.`,
      );
    } else if (!out.json && !force && result.outcome === 'still-running') {
      out.err(`Next step: portlock stop ${port} --force (SIGTERM, then SIGKILL).`);
    }
    if (result.outcome === 'still-running') return EXIT.failure;
    return result.outcome === 'unknown' ? EXIT.unknown : EXIT.ok;
  },
};
