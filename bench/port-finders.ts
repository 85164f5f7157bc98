import { detectPort } from 'detect-port';
import getPort, { portNumbers } from 'get-port';
import { getPort as getPortPlease } from 'get-port-please';
import portfinder from 'portfinder';
import { acquirePort } from '../src/index.ts';

/**
 * Where every finder looks: the same range, from its low end, on loopback. Starting from one
 * port is how these libraries are used ("a port from 3000 up"), and the hardest case for all.
 */
export interface PortQuery {
  range: [number, number];
  /** portlock's lock directory. */
  dir: string;
}

/** A port one call found; `release` lets go of whatever the finder keeps (only portlock keeps a lock). */
export interface Found {
  port: number;
  release(): Promise<void>;
}

export type FinderId = 'portlock' | 'get-port' | 'portfinder' | 'detect-port' | 'get-port-please';

export interface Finder {
  id: FinderId;
  label: string;
  /** The call, as a reader of the table would write it. */
  call: string;
  find(query: PortQuery): Promise<Found>;
}

const HOST = '127.0.0.1';
const nothing = async (): Promise<void> => {};

export const FINDER_IDS: readonly FinderId[] = ['portlock', 'get-port', 'portfinder', 'detect-port', 'get-port-please'];

export const finders: Record<FinderId, Finder> = {
  portlock: {
    id: 'portlock',
    label: 'portlock acquirePort',
    call: `acquirePort({ range: [low, high], prefer: low, host: '${HOST}' })`,
    async find({ range, dir }) {
      const handle = await acquirePort({ dir, range, prefer: range[0], host: HOST });
      return { port: handle.port, release: () => handle.release() };
    },
  },
  'get-port': {
    id: 'get-port',
    label: 'get-port 7.2.0',
    call: `getPort({ port: portNumbers(low, high), host: '${HOST}' })`,
    async find({ range }) {
      return { port: await getPort({ port: portNumbers(range[0], range[1]), host: HOST }), release: nothing };
    },
  },
  portfinder: {
    id: 'portfinder',
    label: 'portfinder 1.0.38',
    call: `getPortPromise({ port: low, stopPort: high, host: '${HOST}' })`,
    async find({ range }) {
      return {
        port: await portfinder.getPortPromise({ port: range[0], stopPort: range[1], host: HOST }),
        release: nothing,
      };
    },
  },
  'detect-port': {
    id: 'detect-port',
    label: 'detect-port 2.1.0',
    call: `detectPort({ port: low, hostname: '${HOST}' })`,
    async find({ range }) {
      return { port: await detectPort({ port: range[0], hostname: HOST }), release: nothing };
    },
  },
  'get-port-please': {
    id: 'get-port-please',
    label: 'get-port-please 3.2.0',
    call: `getPort({ port: low, portRange: [low, high], host: '${HOST}' })`,
    async find({ range }) {
      return { port: await getPortPlease({ port: range[0], portRange: range, host: HOST }), release: nothing };
    },
  },
};
