import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { userNames } from '../../src/identity/users.ts';
import { describeListeners, portInUseNextStep } from '../../src/listeners/describe.ts';
import type { PortListener } from '../../src/listeners/port-holders.ts';
import { displayCommand } from '../../src/listeners/port-holders.ts';
import { listenersInTable } from '../../src/listeners/tcp-table.ts';

// Lines as Linux prints them: port 8123 is 1FBB; state 0A is LISTEN, 01 ESTABLISHED.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1FBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4711 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1FBB 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4712 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1FBC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4713 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 5001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0
   3: 000080FE00000000FF005002020011AC:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 100 0 0 10 0
`;

describe('the kernel socket tables', () => {
  it('finds the listening IPv4 sockets of a port, wildcard included, and skips other states and ports', () => {
    assert.deepEqual(listenersInTable(TCP, 4, 8123), [
      { address: '0.0.0.0', port: 8123, family: 4, uid: 1000, inode: '4711' },
    ]);
    assert.deepEqual(
      listenersInTable(TCP, 4, 8124).map((l) => l.address),
      ['127.0.0.1'],
    );
    assert.deepEqual(listenersInTable(TCP, 4, 8125), []);
  });

  it('decodes IPv6 addresses: loopback, wildcard, IPv4-mapped, link-local', () => {
    assert.deepEqual(
      listenersInTable(TCP6, 6, 8123).map((l) => [l.address, l.uid, l.inode]),
      [
        ['::1', 65534, '5001'],
        ['::', 0, '5002'],
        ['::ffff:127.0.0.1', 0, '5003'],
        ['fe80::250:ff:ac11:2', 0, '5004'],
      ].map(([address, uid, inode]) => [address, uid, inode]),
    );
  });

  it('ignores garbage lines', () => {
    assert.deepEqual(listenersInTable('nonsense\n0: zz:1FBB 0 0A\n\n', 4, 8123), []);
  });

  it('reads user names from /etc/passwd text, the first entry for a uid winning', () => {
    const names = userNames(
      'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\ntoor:x:0:0::/:/bin/sh\n',
    );
    assert.equal(names.get(0), 'root');
    assert.equal(names.get(1000), 'alice');
    assert.equal(names.get(7), undefined);
  });

  it('shows a command line printable and short', () => {
    assert.equal(displayCommand('python3\0-m\0http.server\x008123\0'), 'python3 -m http.server 8123');
    assert.equal(displayCommand('evil\x1b[2J\0x'), 'evil\\u{1b}[2J x');
    // Bidirectional and line-separator controls are not C0/C1, and would reorder or break the line.
    assert.equal(displayCommand('a\u202eb\u2028c'), 'a\\u{202e}b\\u{2028}c');
    assert.equal(displayCommand(''), undefined);
    assert.equal(displayCommand('a'.repeat(500))?.length, 120);
  });
});

describe('describing listeners', () => {
  const python: PortListener = {
    address: '0.0.0.0',
    port: 8123,
    family: 4,
    pid: 311,
    command: 'python3 -m http.server 8123',
    user: 'alice',
  };
  const hidden: PortListener = { ...python, pid: undefined, command: undefined, user: 'bob' };

  it('names the program, pid, user and addresses, one phrase per process', () => {
    assert.equal(
      describeListeners([python, { ...python, address: '::', family: 6 }]),
      'python3 -m http.server 8123 (pid 311, user alice, on 0.0.0.0 and ::)',
    );
    assert.equal(describeListeners([hidden]), 'a program portlock cannot see (user bob, on 0.0.0.0)');
  });

  it('offers a kill only to whoever may send it', () => {
    assert.match(portInUseNextStep(8123, [python], { user: 'alice', root: false }), /kill 311/);
    assert.match(portInUseNextStep(8123, [python], { user: 'root', root: true }), /kill 311/);
    const other = portInUseNextStep(8123, [python], { user: 'carol', root: false });
    assert.doesNotMatch(other, /kill/);
    assert.match(other, /only alice or root can stop that program/);
    assert.match(portInUseNextStep(8123, [hidden], { user: 'root', root: true }), /ss -ltnp 'sport = :8123'/);
    const roots = portInUseNextStep(8123, [{ ...hidden, user: 'root' }], { user: 'nobody', root: false });
    assert.equal(roots, 'Next step: use another port; only root can stop that program.');
  });
});
