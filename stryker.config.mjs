// Mutation testing (StrykerJS): `npm run mutate` (everything, a pre-release step), or one part at a
// time with `npm run mutate:part -- <part>` (stryker/part.mjs). bench/mutation.md holds the last
// score and every surviving mutant with the reason it is equivalent.

/**
 * The scope: only the code where a bug costs money or runs a payment twice, in parts that can be
 * mutated on their own. Each part lists the files it mutates and the test files that exercise
 * them; a part's run tests only its own, so its dry run takes seconds, not minutes.
 */
export const PARTS = {
  // Signing, verifying a notification, amounts, strict form parsing; reading any framework's request
  // (the one body reader) and the notification handler every adapter runs.
  core: {
    mutate: ['src/kernel/signature.ts', 'src/kernel/money.ts', 'src/core/notify/*.ts', 'src/core/http.ts'],
    spec: ['test/signature.test.ts', 'test/money.test.ts', 'test/notify/parse-form.test.ts', 'test/notify/verify.test.ts',
      'test/client/validate.test.ts', 'test/router.test.ts', 'test/middleware/standalone.test.ts', 'test/hardening/catalogue.test.ts',
      'test/adapters/behaviour.test.ts', 'test/core/http.test.ts', 'test/notify/read-answer.test.ts',
      // declaresBody is read by the pay route only; what observers are told (notify/answer.ts) is checked by test/observe.
      'test/pay/handler.test.ts', 'test/observe/channels.test.ts', 'test/observe/otel.test.ts'],
  },
  // The settlement core: claim, settle, the pay answer, the unsettled ledger and its sweep.
  settle: {
    mutate: ['src/core/settle/**/*.ts'],
    spec: ['test/settle/memo.test.ts', 'test/settle/order-check.test.ts', 'test/settle/claim.test.ts', 'test/settle/settle.test.ts', 'test/settle/unsettled-core.test.ts',
      'test/settle/unsettled-sweep.test.ts', 'test/settle/settle-paths.test.ts', 'test/settle/payment-from-answer.test.ts',
      'test/settle/pay-answer.test.ts', 'test/settle/cross-check.test.ts', 'test/router.test.ts', 'test/observe/otel.test.ts', 'test/hardening/faults.test.ts'],
  },
  // The claim stores; RedisStore's Lua scripts are mutated by stryker/lua-mutants.mjs (to Stryker they are strings).
  stores: {
    mutate: ['src/stores/memory.ts', 'src/stores/redis.ts'],
    spec: ['test/stores/memory.test.ts', 'test/stores/redis.test.ts', 'test/settle/claim.test.ts', 'test/settle/settle.test.ts',
      'test/settle/unsettled-core.test.ts', 'test/settle/unsettled-sweep.test.ts', 'test/settle/cross-check.test.ts', 'test/router.test.ts', 'test/hardening/faults.test.ts'],
  },
  // PostgresStore and MysqlStore: the algorithm, the two dialects, the two drivers (real databases).
  sql: {
    mutate: ['src/stores/sql/*.ts'],
    spec: ['test/stores/sql-drivers.test.ts', 'test/stores/sql-scripts.test.ts', 'test/stores/sql-store.test.ts', 'test/stores/sql-conformance.test.ts', 'test/stores/sql-races.test.ts',
      // The fresh claim (a key with no row, inserted done in the handler's transaction) and a MySQL schema of 0.3.
      'test/stores/sql-fresh.test.ts', 'test/stores/sql-router.test.ts'],
  },
  // The pay route without a framework: its body, parameters, handler and answer to every way a pay can fail.
  pay: {
    mutate: ['src/core/pay/*.ts'],
    spec: ['test/pay/answers.test.ts', 'test/pay/params.test.ts', 'test/settle/payment-from-answer.test.ts', 'test/client/validate.test.ts', 'test/pay/outcomes.test.ts', 'test/middleware/pay.test.ts', 'test/settle/pay-answer.test.ts',
      'test/pay/handler.test.ts', 'test/adapters/behaviour.test.ts', 'test/observe/channels.test.ts', 'test/observe/otel.test.ts'],
  },
}

/**
 * The order the test files run in when several parts need them: fast unit tests first (with bail,
 * a killed mutant stops at its first failing test), then stores, routers and the slow end-to-end
 * ones. Not the soak, fleet, CLI, packaging or browser tests, and not test/settle/unsettled.test.ts:
 * it runs every store under both Express majors at a second per test (2 minutes), and a surviving
 * mutant it covers would cost that again; unsettled-sweep.test.ts tests the same paths in a second.
 */
const SPEC_ORDER = [
  'test/signature.test.ts', 'test/money.test.ts', 'test/notify/parse-form.test.ts', 'test/notify/verify.test.ts',
  'test/core/http.test.ts', 'test/notify/read-answer.test.ts',
  'test/settle/memo.test.ts', 'test/settle/order-check.test.ts', 'test/settle/claim.test.ts', 'test/settle/settle.test.ts', 'test/settle/unsettled-core.test.ts', 'test/settle/unsettled-sweep.test.ts',
  'test/settle/settle-paths.test.ts', 'test/settle/payment-from-answer.test.ts', 'test/pay/answers.test.ts', 'test/pay/params.test.ts', 'test/pay/handler.test.ts', 'test/client/validate.test.ts', 'test/stores/memory.test.ts', 'test/stores/redis.test.ts',
  'test/stores/sql-drivers.test.ts', 'test/stores/sql-scripts.test.ts', 'test/stores/sql-store.test.ts', 'test/stores/sql-conformance.test.ts', 'test/stores/sql-races.test.ts',
  'test/stores/sql-fresh.test.ts', 'test/router.test.ts', 'test/observe/otel.test.ts', 'test/observe/channels.test.ts', 'test/middleware/standalone.test.ts', 'test/middleware/pay.test.ts', 'test/pay/outcomes.test.ts',
  'test/settle/pay-answer.test.ts', 'test/settle/cross-check.test.ts', 'test/stores/sql-router.test.ts',
  'test/hardening/catalogue.test.ts', 'test/hardening/faults.test.ts', 'test/adapters/behaviour.test.ts',
]


const part = process.env.MUTATE_PART
if (part !== undefined && !Object.hasOwn(PARTS, part)) {
  throw new Error(`MUTATE_PART=${part} is not a part; the parts are: ${Object.keys(PARTS).join(', ')}`)
}
const chosen = part === undefined ? Object.values(PARTS) : [PARTS[part]]
const mutate = [...new Set(chosen.flatMap((p) => p.mutate))]
const wanted = new Set(chosen.flatMap((p) => p.spec))
for (const file of wanted) if (!SPEC_ORDER.includes(file)) throw new Error(`${file} is missing from SPEC_ORDER in stryker.config.mjs`)
const reports = part === undefined ? 'reports/mutation' : `reports/mutation/${part}`

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'mocha',
  // Tests are TypeScript run by tsx, as in .mocharc.json (whose node-option the runner cannot apply).
  testRunnerNodeArgs: ['--import', 'tsx'],
  coverageAnalysis: 'perTest',
  mutate,
  mochaOptions: {
    // Every test in these files runs: the Redis round-trip tests count commands on their own client
    // (no MONITOR), so other clients' traffic cannot break them.
    spec: SPEC_ORDER.filter((file) => wanted.has(file)),
  },
  appendPlugins: ['./stryker/ignore-messages.mjs'],
  ignorers: ['message-text'],
  concurrency: 2,
  // Generous: the machine this runs on is shared, and a slow test run is not a hung mutant.
  timeoutMS: 10000,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: `${reports}/mutation.json` },
  htmlReporter: { fileName: `${reports}/mutation.html` },
  incrementalFile: `${reports}/stryker-incremental.json`,
  thresholds: { high: 95, low: 90, break: 90 },
  ignorePatterns: ['dist', 'bench', 'examples', '!examples/knex-driver.ts', 'reports', 'test/browser', 'test/fleet', 'test-results'],
  tempDirName: '.stryker-tmp',
}
