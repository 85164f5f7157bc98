import { userInfo } from 'node:os';
import type { PortListener } from './port-holders.ts';

/**
 * `python3 -m http.server 8123 (pid 311, user alice, on 0.0.0.0)`, or `a program portlock cannot
 * see (user alice, on 0.0.0.0)`: one phrase per process, its addresses joined.
 */
export function describeListeners(listeners: PortListener[]): string {
  const byProcess = new Map<string, PortListener[]>();
  for (const listener of listeners) {
    const key = listener.pid === undefined ? `hidden ${listener.user}` : String(listener.pid);
    byProcess.set(key, [...(byProcess.get(key) ?? []), listener]);
  }
  const phrases = [...byProcess.values()].map((group) => {
    const [first] = group as [PortListener, ...PortListener[]];
    const addresses = [...new Set(group.map((listener) => listener.address))].join(' and ');
    const details = [
      ...(first.pid === undefined ? [] : [`pid ${first.pid}`]),
      ...(first.user === undefined ? [] : [`user ${first.user}`]),
      `on ${addresses}`,
    ].join(', ');
    const what = first.pid === undefined ? 'a program portlock cannot see' : (first.command ?? 'a program');
    return `${what} (${details})`;
  });
  return phrases.join('; ');
}

/** Who reads a message: the next step offers a kill only for processes the reader may signal. */
interface Reader {
  user: string | undefined;
  root: boolean;
}

/** The next step for a port that programs without portlock listen on. */
export function portInUseNextStep(port: number, listeners: PortListener[], reader: Reader): string {
  const pids = [...new Set(listeners.map((listener) => listener.pid))];
  const hidden = pids.includes(undefined);
  // Only an owner the OS named is another user's; an unnamed one (another OS) is simply unseen.
  const others = [
    ...new Set(
      listeners.flatMap((l) => (l.user === undefined || reader.root || l.user === reader.user ? [] : [l.user])),
    ),
  ];
  if (hidden && others.length === 0) {
    const find = process.platform === 'linux' ? `ss -ltnp 'sport = :${port}'` : `lsof -nP -iTCP:${port} -sTCP:LISTEN`;
    return `Next step: find the program that listens on port ${port} (as root: ${find}) and stop it, or use another port.`;
  }
  if (others.length > 0) {
    const whose = [...others.filter((user) => user !== 'root'), 'root'];
    return `Next step: use another port; only ${whose.join(' or ')} can stop ${pids.length > 1 ? 'those programs' : 'that program'}.`;
  }
  return `Next step: stop ${pids.length > 1 ? 'those programs' : 'that program'} first (for example: kill ${pids.join(' ')}), or use another port.`;
}

/** `port 8123: in use by <who>, not through portlock`: the fact, as `status` prints it. */
export function portInUseLine(port: number, listeners: PortListener[]): string {
  return `port ${port}: in use by ${describeListeners(listeners)}, not through portlock`;
}

/** This process's user, as a message's reader. */
export function currentReader(): Reader {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = process.getuid === undefined ? undefined : `uid ${process.getuid()}`;
  }
  return { user, root: process.getuid?.() === 0 };
}
