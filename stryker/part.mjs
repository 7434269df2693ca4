/**
 * Mutation testing of one part of the scope (the parts are listed in stryker.config.mjs):
 *
 *   npm run mutate:part -- settle                 (mutants of src/settle, tested by its test files)
 *   npm run mutate:part -- settle --incremental   (re-tests only what changed since this part's last run)
 *   npm run mutate:part -- pay --mutate src/core/pay/params.ts   (any other Stryker option is passed on)
 *
 * Reports and the incremental file go to reports/mutation/<part>/. A part's score can be a little
 * lower than the same files' score in the full run, which also runs the other parts' tests.
 */
import { spawnSync } from 'node:child_process'
import { PARTS } from '../stryker.config.mjs'

const [part, ...rest] = process.argv.slice(2)
if (!part || !Object.hasOwn(PARTS, part)) {
  console.error(`usage: npm run mutate:part -- <part> [stryker options]\nparts:`)
  for (const [name, { mutate }] of Object.entries(PARTS)) console.error(`  ${name.padEnd(7)} ${mutate.join(' ')}`)
  process.exit(2)
}
const run = spawnSync('npx', ['stryker', 'run', ...rest], { stdio: 'inherit', env: { ...process.env, MUTATE_PART: part } })
process.exit(run.status ?? 1)
