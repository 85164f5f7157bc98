import { statSync } from 'node:fs';

// Node's own errors say what failed ("EACCES: permission denied, scandir '/root/.portlock'") but
// not what to do. These turn the ones a user can cause into a sentence and a next step.

interface SystemError {
  code: string;
  syscall: string;
  path?: string;
  port?: number;
  message: string;
}

function asSystemError(error: unknown): SystemError | undefined {
  const { code, syscall, message } = (error ?? {}) as Partial<Record<string, unknown>>;
  if (typeof code !== 'string' || typeof syscall !== 'string' || typeof message !== 'string') return undefined;
  const { path, port } = error as { path?: unknown; port?: unknown };
  return {
    code,
    syscall,
    message,
    ...(typeof path === 'string' && { path }),
    ...(typeof port === 'number' && { port }),
  };
}

const VERBS: Record<string, string> = {
  scandir: 'read the directory',
  opendir: 'read the directory',
  open: 'open',
  mkdir: 'create the directory',
  unlink: 'remove',
  rename: 'rename',
  link: 'create',
  lstat: 'look at',
  stat: 'look at',
  chmod: 'change the mode of',
};

const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'it does not exist',
  ENOSPC: 'the disk is full',
  EROFS: 'the file system is read-only',
  EDQUOT: 'the disk quota is used up',
};

/** A system error a user can cause, as `{ code, message }` with a "Next step:" line; undefined for others. */
export function explainSystemError(error: unknown): { code: string; message: string } | undefined {
  const system = asSystemError(error);
  if (system === undefined) return undefined;
  const { code, syscall, path, port } = system;
  const cause = CAUSES[code] ?? system.message;
  if ((syscall === 'listen' || syscall === 'bind') && port !== undefined) {
    if (code === 'EACCES' && port < 1024) {
      return {
        code,
        message:
          `cannot listen on port ${port}: ${cause} (ports below 1024 need root, or the CAP_NET_BIND_SERVICE capability).\n` +
          'Next step: use a port from 1024 up (for example: --port 8080), or run it as root.',
      };
    }
    return { code, message: `cannot listen on port ${port}: ${cause}.\nNext step: use another port.` };
  }
  if (path === undefined) return undefined;
  const what = `cannot ${VERBS[syscall] ?? syscall} ${path}: ${cause}`;
  if (code === 'EACCES' || code === 'EPERM') {
    return {
      code,
      message: `${what} (it belongs to another user, or its mode keeps this user out).\nNext step: use a lock directory of your own (--dir or PORTLOCK_DIR), or run this as the user who owns it.`,
    };
  }
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') {
    return {
      code,
      message: `${what}.\nNext step: free some space or use a lock directory on another file system (--dir).`,
    };
  }
  return { code, message: `${what}.\nNext step: check the path, or use another lock directory (--dir).` };
}

/** Why a command could not be started, and what to do: `portlock run -- /tmp` and the like. */
export function explainSpawnError(error: NodeJS.ErrnoException, file: string, port: number): string {
  const example = `portlock run -p ${port} -- node server.js`;
  if (error.code === 'ENOENT') {
    return `cannot run '${file}': command not found.\nNext step: check its name, or give its full path (it was looked for in PATH).`;
  }
  if (error.code === 'EACCES') {
    let directory = false;
    try {
      directory = statSync(file).isDirectory();
    } catch {
      // Not a path here (a name found through PATH): then it is a file that cannot be run.
    }
    if (directory) {
      return `cannot run '${file}': it is a directory, not a program.\nNext step: name the program to run after --, for example: ${example}`;
    }
    return (
      `cannot run '${file}': permission denied (it is not executable by this user).\n` +
      `Next step: make it executable (chmod +x ${file}), or run it through its interpreter (for example: -- sh ${file}).`
    );
  }
  return `cannot run '${file}': ${error.message}.\nNext step: check the command and try again.`;
}
