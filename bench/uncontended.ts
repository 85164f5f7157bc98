import { closeSync, constants, existsSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { socketFileBase } from '../src/interlock/socket-file-path.ts';
import { freePort, nowMs, rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';
import { type ContenderId, contenders, type Target } from './contenders.ts';

export type UncontendedId =
  | 'floor'
  | Extract<ContenderId, 'portlock-auto' | 'portlock-off' | 'portlock-socket-file' | 'proper-lockfile' | 'lockfile'>;

export const UNCONTENDED_IDS: readonly UncontendedId[] = [
  'floor',
  'portlock-auto',
  'portlock-off',
  'portlock-socket-file',
  'proper-lockfile',
  'lockfile',
];

export interface UncontendedResult {
  cyclesPerRound: number;
  rounds: number;
  /** Microseconds per acquire + release: one sample per round. */
  perOpUs: Record<UncontendedId, Summary>;
  /**
   * Per-op time over the floor's in the same round, one sample per round: the contenders of a
   * round run back to back, so this ratio shrugs off load that comes and goes between rounds.
   */
  ratioToFloor: Record<UncontendedId, Summary>;
  /** Whether an abstract socket naming the port appeared while portlock held it with interlock 'auto'. */
  interlockSeen: boolean;
  /**
   * Where portlock with interlock 'socket-file' put the port's socket file, if one appeared there
   * while it held the lock and was gone once it released it; undefined if none did.
   */
  socketFileSeen?: string;
}

const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** The physical floor: the three system calls any lock file costs. */
function floorLoop(path: string, cycles: number): number {
  const start = nowMs();
  for (let i = 0; i < cycles; i++) {
    closeSync(openSync(path, EXCLUSIVE, 0o600));
    unlinkSync(path);
  }
  return ((nowMs() - start) * 1000) / cycles;
}

async function libraryLoop(id: Exclude<UncontendedId, 'floor'>, target: Target, cycles: number): Promise<number> {
  const { acquire } = contenders[id];
  const start = nowMs();
  for (let i = 0; i < cycles; i++) {
    const held = await acquire(target, 0);
    await held.release();
  }
  return ((nowMs() - start) * 1000) / cycles;
}

function abstractSocketsNaming(port: number): number {
  try {
    return readFileSync('/proc/net/unix', 'latin1')
      .split('\n')
      .filter((line) => line.includes(' @') && new RegExp(`\\D${port}(\\D|$)`).test(line.slice(line.indexOf(' @'))))
      .length;
  } catch {
    return 0;
  }
}

async function detectInterlock(target: Target): Promise<boolean> {
  const before = abstractSocketsNaming(target.port);
  const held = await contenders['portlock-auto'].acquire(target, 0);
  const during = abstractSocketsNaming(target.port);
  await held.release();
  return during > before;
}

/** The port's socket file, if it is there while portlock holds the lock with interlock 'socket-file', and gone after. */
async function detectSocketFile(target: Target): Promise<string | undefined> {
  const path = socketFileBase({ kind: 'port', port: target.port }, target.dir);
  const held = await contenders['portlock-socket-file'].acquire(target, 0);
  const during = existsSync(path);
  await held.release();
  return during && !existsSync(path) ? path : undefined;
}

export async function runUncontended(scale: Scale): Promise<UncontendedResult> {
  const cycles = scale.quick ? 100 : 150;
  const rounds = scale.quick ? 3 : 50;
  const targets = new Map<UncontendedId, Target>();
  for (const id of UNCONTENDED_IDS) targets.set(id, { dir: tempDir(`uncontended-${id}`), port: await freePort() });
  const samples = new Map<UncontendedId, number[]>(UNCONTENDED_IDS.map((id) => [id, []]));
  const auto = targets.get('portlock-auto');
  const interlockSeen = auto === undefined ? false : await detectInterlock(auto);
  const socketFile = targets.get('portlock-socket-file');
  const socketFileSeen = socketFile === undefined ? undefined : await detectSocketFile(socketFile);
  // Round 0 warms up the JIT and the file system's caches and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (const id of rotated(UNCONTENDED_IDS, round)) {
      const target = targets.get(id) as Target;
      const us =
        id === 'floor' ? floorLoop(join(target.dir, 'floor.lock'), cycles) : await libraryLoop(id, target, cycles);
      if (round > 0) samples.get(id)?.push(us);
    }
    if (round > 0) scale.log(`  uncontended round ${round}/${rounds}`);
  }
  const perOpUs = Object.fromEntries(UNCONTENDED_IDS.map((id) => [id, summarize(samples.get(id) ?? [])])) as Record<
    UncontendedId,
    Summary
  >;
  const floor = samples.get('floor') ?? [];
  const ratioToFloor = Object.fromEntries(
    UNCONTENDED_IDS.map((id) => [
      id,
      summarize((samples.get(id) ?? []).map((us, round) => us / (floor[round] ?? Number.NaN))),
    ]),
  ) as Record<UncontendedId, Summary>;
  return {
    cyclesPerRound: cycles,
    rounds,
    perOpUs,
    ratioToFloor,
    interlockSeen,
    ...(socketFileSeen !== undefined && { socketFileSeen }),
  };
}
