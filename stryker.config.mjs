// Mutation testing (StrykerJS): `npm run mutate`, then see bench/mutation.md for the last score and
// for every surviving mutant with the reason it is equivalent.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'mocha',
  // Tests are TypeScript run by tsx, as in .mocharc.json (whose node-option the runner cannot apply).
  testRunnerNodeArgs: ['--import', 'tsx'],
  coverageAnalysis: 'perTest',
  // Only the code where a bug costs money: signing, verifying a notification, amounts, the
  // de-duplication/settlement core and the stores' claim logic (the Lua of RedisStore is
  // mutated by stryker/lua-mutants.mjs, as Stryker sees it as one string).
  mutate: [
    'src/signature.ts',
    'src/money.ts',
    'src/notify/verify.ts',
    'src/notify/parse-form.ts',
    'src/settle/**/*.ts',
    'src/stores/memory.ts',
    'src/stores/redis.ts',
  ],
  mochaOptions: {
    // The tests that exercise that code, fast unit tests first (with bail, a killed mutant stops
    // at its first failing test). Not the soak, fleet, CLI, packaging or browser tests.
    spec: [
      'test/signature.test.ts',
      'test/money.test.ts',
      'test/notify/parse-form.test.ts',
      'test/notify/verify.test.ts',
      'test/settle/claim.test.ts',
      'test/settle/settle.test.ts',
      'test/client/validate.test.ts',
      'test/stores/memory.test.ts',
      'test/stores/redis.test.ts',
      'test/router.test.ts',
      'test/middleware/standalone.test.ts',
      'test/middleware/pay.test.ts',
      'test/hardening/catalogue.test.ts',
      'test/hardening/faults.test.ts',
    ],
    // Leaves out the three tests that watch Redis with MONITOR (round trips, NOSCRIPT fallback):
    // MONITOR sees every client of a shared Redis and breaks on other traffic, and no mutant
    // in scope changes the commands sent.
    grep: '^(?!.*(one round trip|falls back to EVAL when Redis does not have the script))',
  },
  appendPlugins: ['./stryker/ignore-messages.mjs'],
  ignorers: ['message-text'],
  concurrency: 2,
  // Generous: the machine this runs on is shared, and a slow test run is not a hung mutant.
  timeoutMS: 10000,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  thresholds: { high: 95, low: 90, break: 90 },
  ignorePatterns: ['dist', 'bench', 'examples', 'reports', 'test/browser', 'test/fleet', 'test-results'],
  tempDirName: '.stryker-tmp',
}
