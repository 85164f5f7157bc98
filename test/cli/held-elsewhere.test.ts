import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireLock, LockHeldError } from '../../src/index.ts';
import { giveToNobody, nobodyUnavailable, spawnAsNobody } from '../helpers/as-nobody.ts';
import { finished, lineMatching, projectRoot } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { BIN, CHILD, cli, exited, place, spawnCli, staleRecord } from './_support.ts';

// `portlock run -p P --name alpha -- <command>` holds port P through ~/.alpha/agent-P.lock. A
// port's kernel name is the same for every lock directory, so `--name beta` (~/.beta), the default
// ~/.portlock and another user all meet that holder: each must name the file it holds the lock
// through, not a file of their own directory, and none may leave a directory it only looked at.
describe('a port held through another lock directory', () => {
  let home: string;
  let port: number;
  let holder: ChildProcess;
  let alphaDir: string;
  let alphaFile: string;
  const env = () => ({ HOME: home });

  before(async () => {
    ({ dir: home, port } = await place());
    alphaDir = join(home, '.alpha');
    alphaFile = join(alphaDir, `agent-${port}.lock`);
    holder = spawnCli(['run', '-p', String(port), '--name', 'alpha', '--', 'node', CHILD, 'plain'], {
      env: { ...process.env, HOME: home },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await lineMatching(holder, /"ready":true/);
  });

  after(async () => {
    holder.kill('SIGTERM');
    await exited(holder);
  });

  it('a refused run names the real lock file and the --dir to act on it, and creates no directory', async () => {
    const refused = await cli(['run', '-p', String(port), '--name', 'beta', '--', 'true'], { env: env() });
    assert.equal(refused.code, 75, refused.stderr);
    assert.ok(
      refused.stderr.includes(
        `\nLock file: ${alphaFile} (another application's directory: pass --dir ${alphaDir} to act on it)\n`,
      ),
      refused.stderr,
    );
    // The holder runs as this user, who may stop it.
    assert.match(
      refused.stderr,
      new RegExp(`^Next step: stop that process first \\(for example: kill ${holder.pid}\\)`, 'm'),
    );
    assert.equal(existsSync(join(home, '.beta')), false, 'a refused run leaves no ~/.beta behind');
    const json = await cli(['run', '-p', String(port), '--name', 'beta', '--json', '--', 'true'], { env: env() });
    assert.equal(JSON.parse(json.stdout).error.lockPath, alphaFile);
  });

  it("a refused agent logs the --dir to act on it, in the command line's words", async () => {
    const refused = await cli(['agent', '-p', String(port), '--name', 'beta'], { env: env() });
    assert.equal(refused.code, 75, refused.stderr);
    assert.ok(refused.stderr.includes(`pass --dir ${alphaDir} to act on it`), refused.stderr);
    assert.doesNotMatch(refused.stderr, /`dir` option/);
    const json = await cli(['agent', '-p', String(port), '--name', 'beta', '--json'], { env: env() });
    assert.ok(JSON.parse(json.stdout).error.message.includes(`pass --dir ${alphaDir}`), json.stdout);
  });

  it('acquireLock refuses in the library words, with lockPath the real file, and creates no directory', async () => {
    const dir = join(home, '.beta');
    const error = await acquireLock({ port, name: 'beta', dir }).then(
      () => assert.fail('acquired a held port'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof LockHeldError);
    assert.equal(error.lockPath, alphaFile);
    assert.equal(error.meta?.lockFile, alphaFile);
    assert.ok(
      error.message.includes(`pass the \`dir\` option ${JSON.stringify(alphaDir)} to act on it`),
      error.message,
    );
    assert.equal(existsSync(dir), false);
  });

  it('status, stop and clean in the default directory name the real file and create none', async () => {
    const status = await cli(['status', String(port)], { env: env() });
    assert.equal(status.code, 0, status.stderr);
    assert.ok(
      status.stdout.includes(
        `; held through ${alphaFile} (another application's directory: pass --dir ${alphaDir} to act on it)`,
      ),
      status.stdout,
    );
    const stop = await cli(['stop', String(port)], { env: env() });
    assert.equal(stop.code, 1, stop.stdout);
    assert.ok(
      stop.stderr.includes(`: it is held through ${alphaFile} (another application's directory);`),
      stop.stderr,
    );
    assert.ok(stop.stderr.includes(`\nNext step: portlock stop ${port} --dir ${alphaDir}\n`), stop.stderr);
    assert.equal(holder.exitCode, null, 'stop sent the holder nothing');
    const clean = await cli(['clean'], { env: env() });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(existsSync(join(home, '.portlock')), false, 'status, stop and clean create no ~/.portlock');
  });

  it("list shows a lock of its own directory held through another's, naming that file", async () => {
    const gamma = join(home, '.gamma');
    mkdirSync(gamma, { mode: 0o700 });
    // A record left in this directory by a process that is gone: the port is held all the same.
    await staleRecord(join(gamma, `agent-${port}.lock`), { port });
    const list = await cli(['list', '--name', 'gamma'], { env: env() });
    assert.equal(list.code, 0, list.stderr);
    const row = list.stdout.split('\n').find((line) => line.startsWith(`${port} `)) ?? '';
    assert.match(row, /^\d+ +running +alpha /);
    assert.ok(
      row.endsWith(`held through ${alphaFile} (another application's directory: pass --dir ${alphaDir} to act on it)`),
      row,
    );
  });

  it('as another user: whose the holder is, and that only that user or root can stop it; no kill, no new directory', async (t) => {
    const why = nobodyUnavailable();
    if (why !== undefined) {
      t.skip(why);
      return;
    }
    const nobodyHome = tempDir();
    giveToNobody(nobodyHome);
    const refused = await finished(
      spawnAsNobody(process.execPath, ['--import', 'tsx', BIN, 'run', '-p', String(port), '--', 'true'], {
        cwd: projectRoot,
        env: { ...process.env, HOME: nobodyHome },
      }),
    );
    assert.equal(refused.code, 75, refused.stderr);
    assert.match(
      refused.stderr,
      /^Next step: the holder runs as another user, and only that user or root can stop it: ask them, wait for it to exit, or use another port\.$/m,
    );
    assert.doesNotMatch(refused.stderr, /\bkill\b|remove /);
    assert.equal(existsSync(join(nobodyHome, '.portlock')), false, 'a refused run leaves no ~/.portlock behind');
  });

  it('stop through the real directory stops it', async () => {
    const stop = await cli(['stop', String(port), '--dir', alphaDir], { env: env() });
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped/);
    await exited(holder);
  });
});

describe('a lock directory that does not exist yet', () => {
  it('is created by a run that takes the lock, for its record', async () => {
    const { dir, port } = await place();
    const fresh = join(dir, 'new');
    const result = await cli(['run', '-p', String(port), '--dir', fresh, '--', 'true']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(fresh), true);
  });
});
