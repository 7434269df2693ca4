import { GuanaitongError } from '../kernel/errors'

/** What the conformance suites need of a test runner, shared by all of them. */
export type Fn = (this: { timeout?: (ms: number) => unknown; skip?: () => unknown }) => unknown
export type Register = (title: string, fn: Fn) => unknown

export interface Runner {
  describe: Register
  it: Register
  afterEach: (fn: Fn) => unknown
}

/** Skips the running test: the store lacks an optional part. A runner that cannot skip fails rather than pass it silently. */
export function skipWithout(test: ThisParameterType<Fn>, what: string): void {
  if (typeof test.skip !== 'function') throw new GuanaitongError(`this store has no ${what} and the runner cannot skip`, 'NO_TEST_RUNNER')
  test.skip()
}

/** The test runner's globals (mocha; jest and vitest with globals work too). */
export function runner(): Runner {
  const g = globalThis as unknown as Partial<Runner>
  if (typeof g.describe !== 'function' || typeof g.it !== 'function' || typeof g.afterEach !== 'function') {
    throw new GuanaitongError('storeConformance() registers tests with the global describe/it/afterEach: call it from a mocha (or jest, or vitest with globals) test file', 'NO_TEST_RUNNER')
  }
  return g as Runner
}
