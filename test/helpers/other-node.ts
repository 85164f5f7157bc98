/**
 * A Node binary of another major version than the one running the tests, for checking that
 * processes under different Node versions agree on who holds a lock. `.ci/run` sets
 * PORTLOCK_OTHER_NODE to Node 24 while the suite runs on Node 20, and to Node 20 while it runs on
 * Node 24.
 */
export function otherNode(): string | undefined {
  return process.env.PORTLOCK_OTHER_NODE || undefined;
}

/** Why the cross-version tests cannot run here, or undefined when they can. */
export function otherNodeUnavailable(): string | undefined {
  return otherNode() === undefined
    ? 'PORTLOCK_OTHER_NODE is not set: .ci/run sets it to a Node of another major version'
    : undefined;
}
