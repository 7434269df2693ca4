/**
 * Mutation testing of RedisStore's Lua scripts, which Stryker cannot mutate (to Stryker they are
 * string literals). Each mutant below is one realistic slip in a script; it is applied to a copy
 * of the project in .stryker-tmp/, and the Redis store tests run against a real Redis. A mutant
 * the tests pass with survives: the run fails unless the mutant is listed as equivalent, with
 * the reason.
 *
 *   node stryker/lua-mutants.mjs            (part of `npm run mutate`; needs Redis at REDIS_URL, default 127.0.0.1:6379)
 *
 * Each mutant names its script, and its text must be found exactly once in that script: when a
 * script changes, the run stops before testing anything and names the mutants to update.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const STORE = 'src/stores/redis.ts'
const TESTS = ['test/stores/redis.test.ts']

/**
 * [script, what the slip does, the exact text (found exactly once in that script's source), its
 * replacement, why it is equivalent (if it is)]. Scripts are named as in src/stores/redis.ts.
 */
const MUTANTS = [
  ['CLAIM', 'a done key is claimed again', 'if f[1] then return {0, f[2], f[3]} end\n', ''],
  ['CLAIM', 'done check inverted', 'if f[1] then', 'if not f[1] then'],
  ['CLAIM', 'a done key answers without its memo', 'return {0, f[2], f[3]}', 'return {0, f[2]}'],
  ['CLAIM', 'a done key answers without its mark', 'return {0, f[2], f[3]}', 'return {0, false, f[3]}'],
  ['CLAIM', 'a held key is claimed again (no busy)', "if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end\n", ''],
  ['CLAIM', 'busy and done checked in the other order', "if f[1] then return {0, f[2], f[3]} end\nif redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end",
    "if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end\nif f[1] then return {0, f[2], f[3]} end",
    'COMPLETE deletes the lease in the same script that sets d, so a key never has both'],
  ['CLAIM', 'attempts counted twice', "redis.call('HINCRBY', KEYS[1], 'a', 1)", "redis.call('HINCRBY', KEYS[1], 'a', 2)"],
  ['CLAIM', 'owner not recorded', "redis.call('HSET', KEYS[1], 'o', ARGV[1])\n", ''],
  ['CLAIM', 'the hash never expires', "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n", ''],
  ['CLAIM', 'the hash lasts leaseMs instead of keepMs', "redis.call('PEXPIRE', KEYS[1], ARGV[3])", "redis.call('PEXPIRE', KEYS[1], ARGV[2])"],
  ['CLAIM', 'the lease lasts keepMs instead of leaseMs', "'PX', ARGV[2]", "'PX', ARGV[3]"],
  ['CLAIM', 'the lease does not hold the owner', "redis.call('SET', KEYS[2], ARGV[1],", "redis.call('SET', KEYS[2], '1',"],
  ['CLAIM', 'every claim is attempt 1', 'return {attempt, f[2], f[4]}', 'return {1, f[2], f[4]}'],
  ['CLAIM', 'a claim answers without its mark', 'return {attempt, f[2], f[4]}', 'return {attempt, false, f[4]}'],
  ['CLAIM', 'a claim answers the memo field instead of the note', 'return {attempt, f[2], f[4]}', 'return {attempt, f[2], f[3]}'],
  ['CLAIM', 'a claim answers without its note', 'return {attempt, f[2], f[4]}', 'return {attempt, f[2]}'],

  ['COMPLETE', 'anyone may complete', "if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", ''],
  ['COMPLETE', 'the lease is kept after completion', "redis.call('DEL', KEYS[2])\n", ''],
  ['COMPLETE', 'the owner stays after completion', "redis.call('HDEL', KEYS[1], 'o', 'n')", "redis.call('HDEL', KEYS[1], 'n')"],
  ['COMPLETE', 'the note stays on the done-marker', "redis.call('HDEL', KEYS[1], 'o', 'n')", "redis.call('HDEL', KEYS[1], 'o')",
    'storage only: CLAIM and PEEK answer a done key before reading n, and n expires with the marker'],
  ['COMPLETE', 'not marked done', "redis.call('HSET', KEYS[1], 'd', '1')\n", ''],
  ['COMPLETE', 'the memo is not kept', "if ARGV[3] then redis.call('HSET', KEYS[1], 'm', ARGV[3]) end\n", ''],
  ['COMPLETE', "the done-marker keeps the claim's expiry", "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n", ''],
  ['COMPLETE', 'completion answers false', 'return 1', 'return 0'],

  ['PEEK', 'a done key reads as open', 'if f[1] then return {0, f[2], f[3]} end\n', ''],
  ['PEEK', 'a done key answers without its memo', 'return {0, f[2], f[3]}', 'return {0, f[2]}'],
  ['PEEK', 'a held key reads as open (no busy)', "if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, f[2]} end\n", ''],
  ['PEEK', 'busy answers without the mark', 'return {-1, f[2]}', 'return {-1}'],
  ['PEEK', 'a held key gets the note too', "if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, f[2]} end\n",
    "if ARGV[2] then redis.call('HSET', KEYS[1], 'n', ARGV[2]) end\nif redis.call('EXISTS', KEYS[2]) == 1 then return {-1, f[2]} end\n"],
  ['PEEK', 'the note is not kept', "  redis.call('HSET', KEYS[1], 'n', ARGV[2])\n", ''],
  ['PEEK', 'a key noted before any claim never expires', "  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n", ''],
  ['PEEK', "a note shortens the key's life", "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end",
    "redis.call('PEXPIRE', KEYS[1], ARGV[1])"],
  ['PEEK', 'open answers without the mark', 'return {1, f[2]}', 'return {1}'],

  ['MARK', 'an unmark leaves the mark', "return redis.call('HDEL', KEYS[1], 'w')", 'return 0'],
  ['MARK', 'an unmark deletes the key (and its done-marker)', "return redis.call('HDEL', KEYS[1], 'w')", "return redis.call('DEL', KEYS[1])"],
  ['MARK', 'the mark is not set', "redis.call('HSET', KEYS[1], 'w', '1')\n", ''],
  ['MARK', 'a mark on a key never claimed never expires', "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n", ''],
  ['MARK', "a mark shortens the key's life", "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end",
    "redis.call('PEXPIRE', KEYS[1], ARGV[1])"],

  ['RELEASE', 'anyone may release', "if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", ''],
  ['RELEASE', 'the lease is kept after release', "redis.call('DEL', KEYS[2])\n", ''],
  ['RELEASE', 'the owner stays after release', "redis.call('HDEL', KEYS[1], 'o')\n", ''],
  ['RELEASE', 'a release takes the note away', "redis.call('HDEL', KEYS[1], 'o')", "redis.call('HDEL', KEYS[1], 'o', 'n')"],
  ['RELEASE', "the attempt counter keeps the claim's expiry", "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n", ''],

  ['EXTEND', 'anyone may extend', "if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", ''],
  ['EXTEND', 'the lease is not renewed', "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n", ''],
  ['EXTEND', 'the lease is renewed for keepMs', "'PX', ARGV[2]", "'PX', ARGV[3]"],
  ['EXTEND', 'the hash is not renewed', "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n", ''],

  ['WATCH', 'the record is not indexed by deadline', "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n", ''],
  ['WATCH', 'the record is not stored', "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n", ''],

  ['RESOLVE', 'the key stays in the deadline index', "redis.call('ZREM', KEYS[1], unpack(ARGV))\n", ''],
  ['RESOLVE', 'the record stays in the hash', "redis.call('HDEL', KEYS[2], unpack(ARGV))\n", ''],
  ['RESOLVE', 'only the first key of a batch is removed', 'unpack(ARGV))\nredis.call(\'HDEL\', KEYS[2], unpack(ARGV))', "ARGV[1])\nredis.call('HDEL', KEYS[2], ARGV[1])"],

  ['TAKE_DUE', 'a taken record keeps its deadline (no lease)', "    redis.call('ZADD', KEYS[1], ARGV[3], due[i])\n", ''],
  ['TAKE_DUE', 'a taken record is due again at once (deadline = now)', "redis.call('ZADD', KEYS[1], ARGV[3], due[i])", "redis.call('ZADD', KEYS[1], ARGV[1], due[i])"],
  ['TAKE_DUE', 'no limit', ", 'LIMIT', 0, tonumber(ARGV[2])", ''],
  ['TAKE_DUE', 'a record due exactly now is not taken', "'-inf', ARGV[1]", "'-inf', '(' .. ARGV[1]"],
  ['TAKE_DUE', 'answers the leased deadline, not the one it had', 'out[#out + 1] = due[i + 1]', 'out[#out + 1] = ARGV[3]'],
  ['TAKE_DUE', 'a member without a record is kept', "  else\n    redis.call('ZREM', KEYS[1], due[i])\n", '',
    'no script leaves a member without its record: WATCH writes both and RESOLVE removes both, each in one script'],

  ['LIST', 'one record more than the limit', 'tonumber(ARGV[1]) - 1', 'tonumber(ARGV[1])'],
  ['LIST', 'the deadlines are not read', ", 'WITHSCORES')", ')'],
]

/** The source of script `name`: the template literal of `const <name> = new LuaScript(` ... `)`. */
function scriptRange(source, name) {
  const open = `const ${name} = new LuaScript(\``
  const start = source.indexOf(open)
  if (start === -1 || source.indexOf(open, start + 1) !== -1) throw new Error(`${STORE}: script ${name} is not found exactly once`)
  const from = start + open.length
  const end = source.indexOf('`)', from)
  if (end === -1) throw new Error(`${STORE}: script ${name} has no end`)
  return [from, end]
}

const original = readFileSync(join(root, STORE), 'utf8')
/** Every mutant's source, built before any test runs: a stale mutant stops the run at once. */
const stale = []
const mutants = MUTANTS.map(([script, what, from, to, equivalent]) => {
  const [start, end] = scriptRange(original, script)
  const body = original.slice(start, end)
  const at = body.indexOf(from)
  if (at === -1 || body.indexOf(from, at + 1) !== -1) stale.push(`${script} "${what}"`)
  return [{ script, what, equivalent }, original.slice(0, start) + body.slice(0, at) + to + body.slice(at + from.length) + original.slice(end)]
})
if (stale.length > 0) {
  console.error(`The text these mutants replace is not found exactly once in their script (${STORE}); update them:\n  ${stale.join('\n  ')}`)
  process.exit(1)
}
const sandbox = join(root, '.stryker-tmp', `lua-${process.pid}`)
rmSync(sandbox, { recursive: true, force: true })
mkdirSync(sandbox, { recursive: true })
for (const entry of ['src', 'test', 'package.json', 'tsconfig.json']) cpSync(join(root, entry), join(sandbox, entry), { recursive: true })
symlinkSync(join(root, 'node_modules'), join(sandbox, 'node_modules'), 'dir')

function runTests() {
  const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js')
  // Every test of the file runs: the round-trip tests count commands on their own client (no
  // MONITOR), so other clients of the same Redis cannot fail them.
  const output = join(sandbox, 'mocha-result.json')
  rmSync(output, { force: true })
  const args = [mocha, '--no-config', '--node-option', 'import=tsx', '--timeout', '20000', '--exit', '--bail',
    '--reporter', 'json', '--reporter-option', `output=${output}`, ...TESTS]
  const run = spawnSync(process.execPath, args, { cwd: sandbox, encoding: 'utf8' })
  // The first failing test, so a kill can be told from a flaky test (and a wrong kill checked by hand).
  let failure
  try {
    failure = JSON.parse(readFileSync(output, 'utf8')).failures?.[0]?.fullTitle
  } catch {
    failure = undefined
  }
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, failure }
}

const started = Date.now()
const rows = []
let failed = false
try {
  const clean = runTests()
  if (clean.status !== 0) throw new Error(`the Redis store tests fail without any mutant:\n${clean.stdout}\n${clean.stderr}`)
  for (const [{ script, what, equivalent }, mutated] of mutants) {
    writeFileSync(join(sandbox, STORE), mutated)
    const run = runTests()
    const passed = run.status === 0
    // A listed equivalent that the tests kill is a wrong list entry: it fails the run too.
    const outcome = passed ? (equivalent ? 'equivalent' : 'SURVIVED') : (equivalent ? 'KILLED, listed as equivalent' : 'killed')
    if (outcome !== 'killed' && outcome !== 'equivalent') failed = true
    rows.push({ outcome, equivalent })
    const why = passed ? (equivalent ? ` (${equivalent})` : '') : ` [${run.failure ?? `no test failed by name; exit ${run.status}`}]`
    console.log(`${outcome.padEnd(10)} ${script.padEnd(8)} ${what}${why}`)
  }
} finally {
  rmSync(sandbox, { recursive: true, force: true })
}
const killed = rows.filter((r) => r.outcome === 'killed').length
const counted = rows.filter((r) => !r.equivalent).length
console.log(`\nLua mutants: ${killed} of ${counted} killed (${rows.length - counted} equivalent), ${Math.round((Date.now() - started) / 1000)} s`)
process.exit(failed ? 1 : 0)
