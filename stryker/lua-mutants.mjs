/**
 * Mutation testing of RedisStore's Lua scripts, which Stryker cannot mutate (to Stryker they are
 * string literals). Each mutant below is one realistic slip in a script; it is applied to a copy
 * of the project in .stryker-tmp/, and the Redis store tests run against a real Redis. A mutant
 * the tests pass with survives: the run fails unless the mutant is listed as equivalent, with
 * the reason.
 *
 *   node stryker/lua-mutants.mjs            (part of `npm run mutate`; needs Redis on 127.0.0.1:6379)
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const STORE = 'src/stores/redis.ts'
const TESTS = ['test/stores/redis.test.ts']
const MONITOR_TESTS = 'one round trip|falls back to EVAL when Redis does not have the script'

/** [script, what the slip does, the exact text, its replacement, why it is equivalent (if it is)]. */
const MUTANTS = [
  ['CLAIM', 'a done key is claimed again', "if redis.call('HEXISTS', KEYS[1], 'd') == 1 then return 0 end\n", ''],
  ['CLAIM', 'done check inverted', "'d') == 1 then return 0", "'d') == 0 then return 0"],
  ['CLAIM', 'a held key is claimed again (no busy)', "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n", ''],
  ['CLAIM', 'busy and done checked in the other order', "if redis.call('HEXISTS', KEYS[1], 'd') == 1 then return 0 end\nif redis.call('EXISTS', KEYS[2]) == 1 then return -1 end",
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\nif redis.call('HEXISTS', KEYS[1], 'd') == 1 then return 0 end",
    'COMPLETE deletes the lease in the same script that sets d, so a key never has both'],
  ['CLAIM', 'attempts counted twice', "redis.call('HINCRBY', KEYS[1], 'a', 1)", "redis.call('HINCRBY', KEYS[1], 'a', 2)"],
  ['CLAIM', 'owner not recorded', "redis.call('HSET', KEYS[1], 'o', ARGV[1])\nredis.call('PEXPIRE', KEYS[1], ARGV[3])\nredis.call('SET'",
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\nredis.call('SET'"],
  ['CLAIM', 'the hash never expires', "redis.call('PEXPIRE', KEYS[1], ARGV[3])\nredis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nreturn attempt",
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nreturn attempt"],
  ['CLAIM', 'the lease lasts keepMs instead of leaseMs', "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nreturn attempt",
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])\nreturn attempt"],
  ['CLAIM', 'every claim is attempt 1', 'return attempt\n', 'return 1\n'],
  ['COMPLETE', 'anyone may complete', "const COMPLETE = new LuaScript(`\nif redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", 'const COMPLETE = new LuaScript(`\n'],
  ['COMPLETE', 'the lease is kept after completion', "redis.call('DEL', KEYS[2])\nredis.call('HDEL', KEYS[1], 'o')\nredis.call('HSET', KEYS[1], 'd', '1')",
    "redis.call('HDEL', KEYS[1], 'o')\nredis.call('HSET', KEYS[1], 'd', '1')"],
  ['COMPLETE', 'the owner stays after completion', "redis.call('HDEL', KEYS[1], 'o')\nredis.call('HSET', KEYS[1], 'd', '1')", "redis.call('HSET', KEYS[1], 'd', '1')"],
  ['COMPLETE', 'not marked done', "redis.call('HSET', KEYS[1], 'd', '1')\n", ''],
  ['COMPLETE', 'the done-marker keeps the claim\'s expiry', "redis.call('HSET', KEYS[1], 'd', '1')\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\n", "redis.call('HSET', KEYS[1], 'd', '1')\n"],
  ['RELEASE', 'anyone may release', "const RELEASE = new LuaScript(`\nif redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", 'const RELEASE = new LuaScript(`\n'],
  ['RELEASE', 'the lease is kept after release', "redis.call('DEL', KEYS[2])\nredis.call('HDEL', KEYS[1], 'o')\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs.",
    "redis.call('HDEL', KEYS[1], 'o')\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs."],
  ['RELEASE', 'the owner stays after release', "redis.call('HDEL', KEYS[1], 'o')\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs.",
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs."],
  ['RELEASE', 'the attempt counter keeps the claim\'s expiry', "redis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs.",
    "return 1\n`)\n\n/** ARGV: owner, leaseMs, keepMs."],
  ['EXTEND', 'anyone may extend', "const EXTEND = new LuaScript(`\nif redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end\n", 'const EXTEND = new LuaScript(`\n'],
  ['EXTEND', 'the lease is not renewed', "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nredis.call('PEXPIRE', KEYS[1], ARGV[3])\nreturn 1", "redis.call('PEXPIRE', KEYS[1], ARGV[3])\nreturn 1"],
  ['EXTEND', 'the lease is renewed for keepMs', "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nredis.call('PEXPIRE', KEYS[1], ARGV[3])\nreturn 1",
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])\nredis.call('PEXPIRE', KEYS[1], ARGV[3])\nreturn 1"],
  ['EXTEND', 'the hash is not renewed', "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nredis.call('PEXPIRE', KEYS[1], ARGV[3])\nreturn 1", "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\nreturn 1"],
]

const original = readFileSync(join(root, STORE), 'utf8')
const sandbox = join(root, '.stryker-tmp', `lua-${process.pid}`)
rmSync(sandbox, { recursive: true, force: true })
mkdirSync(sandbox, { recursive: true })
for (const entry of ['src', 'test', 'package.json', 'tsconfig.json']) cpSync(join(root, entry), join(sandbox, entry), { recursive: true })
symlinkSync(join(root, 'node_modules'), join(sandbox, 'node_modules'), 'dir')

function runTests() {
  const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js')
  const args = [mocha, '--no-config', '--node-option', 'import=tsx', '--timeout', '20000', '--exit', '--bail', '--reporter', 'dot',
    // As in stryker.config.mjs: the MONITOR tests break on other clients' traffic, which would count as kills.
    '--grep', MONITOR_TESTS, '--invert', ...TESTS]
  return spawnSync(process.execPath, args, { cwd: sandbox, encoding: 'utf8' })
}

const started = Date.now()
const rows = []
let failed = false
try {
  const clean = runTests()
  if (clean.status !== 0) throw new Error(`the Redis store tests fail without any mutant:\n${clean.stdout}\n${clean.stderr}`)
  for (const [script, what, from, to, equivalent] of MUTANTS) {
    const at = original.indexOf(from)
    if (at === -1 || original.indexOf(from, at + 1) !== -1) throw new Error(`${script} "${what}": the text to replace is not found exactly once in ${STORE}`)
    writeFileSync(join(sandbox, STORE), original.slice(0, at) + to + original.slice(at + from.length))
    const passed = runTests().status === 0
    // A listed equivalent that the tests kill is a wrong list entry: it fails the run too.
    const outcome = passed ? (equivalent ? 'equivalent' : 'SURVIVED') : (equivalent ? 'KILLED, listed as equivalent' : 'killed')
    if (outcome !== 'killed' && outcome !== 'equivalent') failed = true
    rows.push({ outcome, equivalent })
    console.log(`${outcome.padEnd(10)} ${script.padEnd(8)} ${what}${equivalent ? ` (${equivalent})` : ''}`)
  }
} finally {
  rmSync(sandbox, { recursive: true, force: true })
}
const killed = rows.filter((r) => r.outcome === 'killed').length
const counted = rows.filter((r) => !r.equivalent).length
console.log(`\nLua mutants: ${killed} of ${counted} killed (${rows.length - counted} equivalent), ${Math.round((Date.now() - started) / 1000)} s`)
process.exit(failed ? 1 : 0)
