import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GLOBAL_ENV, GLOBAL_OPTIONS, parse } from '../../src/cli/args.ts';
import { allCommands } from '../../src/cli/main.ts';
import { optionsOf } from '../../src/cli/port-argument.ts';
import { cli } from './_support.ts';

const commands = await allCommands();

describe('help of every command, checked against its real options', () => {
  for (const command of commands) {
    it(`portlock ${command.name} --help`, async () => {
      const result = await cli([command.name, '--help']);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      const help = result.stdout;
      assert.ok(help.startsWith(`Usage: ${command.usage}\n`));
      for (const section of ['Global options:', 'Environment:', 'Exit codes:', 'Examples:']) {
        assert.ok(help.includes(`\n${section}\n`), `${section} in ${command.name} --help`);
      }
      const options = { ...optionsOf(command), ...GLOBAL_OPTIONS };
      for (const [name, spec] of Object.entries(options)) {
        const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
        const line = help.split('\n').find((text) => text.startsWith(`  ${flag} `));
        assert.ok(line, `--${name} is listed in ${command.name} --help`);
        assert.ok(line.includes(spec.description));
        const shown = spec.default ?? spec.defaultText;
        if (shown !== undefined) assert.ok(line.endsWith(`(default: ${shown})`), line);
        else assert.ok(!line.includes('(default:'), line);
      }
      // Every option the help mentions anywhere is one the command takes.
      for (const [mention] of help.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) {
        assert.ok(mention.slice(2) in options, `${command.name} --help mentions ${mention}, which it does not take`);
      }
      for (const [variable] of [...GLOBAL_ENV, ...(command.env ?? [])])
        assert.match(help, new RegExp(`^  ${variable} `, 'm'));
    });

    it(`portlock ${command.name}: every example parses with the real options`, () => {
      for (const [example] of command.examples) {
        const [tool, name, ...args] = example.split(' ');
        assert.equal(tool, 'portlock');
        assert.ok(name === command.name || command.aliases?.includes(name ?? ''), example);
        const parsed = parse(args, optionsOf(command), { rest: command.rest === true });
        if (command.rest) assert.ok(parsed.rest.length > 0, `${example} names a command to run`);
      }
    });
  }

  it('answers -h as --help, for aliases too', async () => {
    const long = await cli(['list', '--help']);
    assert.deepEqual(await cli(['list', '-h']), long);
    assert.deepEqual(await cli(['ls', '--help']), long);
    assert.deepEqual(await cli(['--help', 'list']), long);
    assert.deepEqual(await cli(['help', 'list']), long);
    assert.deepEqual(await cli(['help', 'ls']), long);
  });

  it('describes every global option in the main help, and offers portlock help <command>', async () => {
    const top = await cli(['help']);
    assert.equal(top.code, 0);
    assert.deepEqual(await cli(['--help']), top);
    for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) {
      const line = top.stdout.split('\n').find((text) => text.includes(`--${name}`));
      assert.ok(line?.includes(spec.description), `--${name} is described in portlock --help`);
    }
    assert.match(top.stdout, /portlock help <command>/);
    const unknown = await cli(['help', 'strat']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'strat'/);
  });

  it('shows no default where parsing applies none, and applies every default it shows', () => {
    for (const command of commands) {
      const { values } = parse([], command.options, { rest: command.rest === true });
      for (const [name, spec] of Object.entries({ ...command.options, ...GLOBAL_OPTIONS })) {
        assert.equal(values[name], spec.default, `${command.name} --${name}`);
      }
    }
  });
});
