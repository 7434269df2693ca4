// `npm run bench`: every server in its own child process, the load generator (autocannon) in
// another. Prints a table; writes bench/results.json and bench/results.md. See bench/README.md.
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { CONNECTIONS, DURATION_SEC, ROUNDS, ROUND_SEC, SMOKE, WARMUP_SEC, combine, log, measure, warm } from './measure.js'
import { OTEL_ROUNDS, otelScenarios } from './otel.js'
import { compareProfiles, profileServer, removeProfiles } from './profile.js'
import { killChildren, runJson, startRedis, startServer } from './proc.js'
import { ADAPTER_ROWS, notifyTargets, writeResults } from './report.js'

/**
 * The pay comparison's paced load, requests/s over all connections. Default: a quarter of the
 * pay route's throughput measured just before, so neither side queues and p50 shows the hop itself.
 */
const PAY_RATE = Number(process.env.BENCH_PAY_RATE ?? 0)
/** Order numbers must be new to Redis and to each sandbox: every bench run has its own prefix. */
const RUN = Date.now().toString(36).slice(-5).toUpperCase()

/**
 * `share` of the requests repeat one of the last 5 000 notifications sent with `prefix` (settled by
 * then); fewer when fewer were sent (the SQL stores' rounds), so every repeat was sent before.
 */
const duplicatesOf = (prefix, sent, share) => ({ prefix, last: sent - CONNECTIONS, window: Math.min(5000, sent - CONNECTIONS), share })

async function ceiling() {
  log('ceiling…')
  const server = await startServer('ceiling')
  const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', prefix: `${RUN}C` }
  await warm(config, WARMUP_SEC, 'ceiling')
  const result = await measure(server, config, DURATION_SEC, 'ceiling')
  await server.stop()
  return result
}

/**
 * The notify scenarios measured in turns, each store right after its anchor: [name, server, args,
 * letter of its order numbers]. The anchors are what a shop would run instead: the bare Express
 * urlencoded handler for MemoryStore and RedisStore, the hand-written idempotent INSERT for the SQL stores.
 */
const TURNS = [
  ['baseline', 'baseline', [], 'B'],
  ['memory', 'notify', ['memory'], 'M'],
  ['redis', 'notify', ['redis'], 'R'],
  ['hand-postgres', 'handwritten', ['postgres'], 'H'],
  ['postgres', 'notify', ['postgres'], 'P'],
  ['hand-mysql', 'handwritten', ['mysql'], 'I'],
  ['mysql', 'notify', ['mysql'], 'Y'],
]
const STORES = ['memory', 'redis', 'postgres', 'mysql']
/** The frameworks with an adapter row besides Express (report.js, ADAPTER_ROWS). */
const ADAPTER_FRAMEWORKS = ADAPTER_ROWS.map((row) => row.framework)

/**
 * Every server of TURNS measured with all-new notifications in ROUNDS rounds, in turn, so a burst of
 * other work on the machine hits them alike; then each store under all duplicates: every request
 * repeats a notification settled in the last round (re-signed, as Guanaitong retries).
 */
/** Starts `turns`' servers and measures each with all-new notifications, ROUNDS rounds in turn. */
async function inTurns(turns) {
  log(`${turns.map(([name]) => name).join(', ')}: ${ROUNDS} rounds of ${ROUND_SEC} s each…`)
  const servers = {}
  for (const [name, file, args] of turns) servers[name] = await startServer(file, args)
  const names = turns.map(([name]) => name).filter((name) => !servers[name].skipped)
  const letter = Object.fromEntries(turns.map(([name, , , l]) => [name, l]))
  const config = (name, tag) => ({ url: `http://127.0.0.1:${servers[name].port}/gat/notify`, kind: 'notify', prefix: `${RUN}${letter[name]}${tag}` })
  for (const name of names) await warm(config(name, 'W'))
  const runs = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of names) runs[name].push(await measure(servers[name], config(name, round), ROUND_SEC))
  }
  return { servers, names, runs, config }
}

/** Stops the servers, keeping what each logged (rejections are logged at warn/error: the why of any non-2xx answer). */
async function stopAll(servers, names, out) {
  for (const name of names) {
    await servers[name].stop()
    if (out[name] && servers[name].stderr) out[name].stderr = servers[name].stderr.slice(-2000)
  }
}

async function notifyScenarios() {
  const { servers, names, runs, config } = await inTurns(TURNS)
  const out = {}
  for (const [name] of TURNS) {
    if (servers[name].skipped) {
      out[name] = { skipped: servers[name].skipped }
      continue
    }
    if (!STORES.includes(name)) {
      out[name] = combine(runs[name])
      continue
    }
    log(`notify-${name}, all duplicates…`)
    const dup = duplicatesOf(config(name, ROUNDS).prefix, runs[name].at(-1).sent, 1)
    const duplicates = combine([await measure(servers[name], { ...config(name, 'D'), dup }, ROUND_SEC)])
    out[name] = { unique: combine(runs[name]), duplicates }
  }
  await stopAll(servers, names, out)
  return out
}

/**
 * Each adapter against its framework's own bare handler (bench/servers/bare.js, adapter.js), in
 * turns: [bare, adapter] per framework. Express's pair is the notify turns' baseline and memory.
 */
const ADAPTER_TURNS = ADAPTER_FRAMEWORKS.flatMap((framework, i) => [
  [`bare-${framework}`, 'bare', [framework], `a${i}`],
  [`adapter-${framework}`, 'adapter', [framework], `b${i}`],
])

async function adapterScenarios() {
  const { servers, names, runs } = await inTurns(ADAPTER_TURNS)
  const out = {}
  for (const [name] of ADAPTER_TURNS) out[name] = servers[name].skipped ? { skipped: servers[name].skipped } : combine(runs[name])
  await stopAll(servers, names, out)
  return out
}

/**
 * Where the time goes for each throughput target missed (report.js, notifyTargets): the store's
 * server and its anchor's, each profiled alone (profile.js) under all-new notifications.
 */
async function missedProfiles(notify) {
  const missed = notifyTargets(notify).filter((t) => t.met === false && t.kind === 'throughput')
  const profiles = {}
  const anchors = {}
  const spec = (name) => TURNS.find(([n]) => n === name)
  for (const target of missed) {
    log(`profiling notify-${target.store} and ${target.anchor} (target missed)…`)
    try {
      const options = (tag) => ({ warmupSec: WARMUP_SEC, seconds: ROUND_SEC, prefix: `${RUN}X${tag}` })
      anchors[target.anchor] ??= await profileServer(spec(target.anchor)[1], spec(target.anchor)[2], options(spec(target.anchor)[3]))
      const store = await profileServer(spec(target.store)[1], spec(target.store)[2], options(spec(target.store)[3]))
      profiles[target.store] = compareProfiles(`notify-${target.store}`, store, target.anchor, anchors[target.anchor])
      removeProfiles(store)
    } catch (err) {
      profiles[target.store] = [`Profiling failed: ${err instanceof Error ? err.message : String(err)}`]
    }
  }
  removeProfiles(...Object.values(anchors))
  return profiles
}

/**
 * The all-duplicates pass again with `logger: console`, the router's default: each duplicate is then
 * logged at debug level, a synchronous write to stdout (a pipe here).
 */
async function consoleLogger() {
  log('notify-memory, all duplicates, console logger…')
  const server = await startServer('notify', ['memory'], [], { BENCH_LOGGER: 'console' })
  const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', prefix: `${RUN}L` }
  const { sent } = await warm(config)
  const result = combine([await measure(server, { ...config, prefix: `${RUN}LD`, dup: duplicatesOf(`${RUN}LW`, sent, 1) }, ROUND_SEC)])
  await server.stop()
  return result
}

/**
 * The pay route in front of a sandbox, and a second sandbox hit directly by the same load. Each
 * at full speed, then paced (the latency comparison). Sockets opened at the sandbox and its
 * token calls are counted per phase.
 */
async function pay() {
  log('pay route…')
  const sandbox = await startServer('sandbox')
  const server = await startServer('pay', [`http://127.0.0.1:${sandbox.port}`])
  const config = { url: `http://127.0.0.1:${server.port}/gat/pay`, kind: 'pay' }
  await warm({ ...config, prefix: `${RUN}PM` })
  const routeMax = await measure(server, { ...config, prefix: `${RUN}PM` })
  const atMax = await sandbox.report()
  const rate = PAY_RATE || Math.max(50, Math.round((routeMax.rps * 0.25) / 50) * 50)
  const routePaced = await measure(server, { ...config, prefix: `${RUN}PP`, rate })
  await server.stop()
  const upstream = await sandbox.stop()

  log('sandbox direct…')
  const direct = await startServer('sandbox')
  const target = { url: `http://127.0.0.1:${direct.port}/platformDealer/employee/pay`, tokenUrl: `http://127.0.0.1:${direct.port}`, kind: 'direct' }
  await warm({ ...target, prefix: `${RUN}DM` })
  const directMax = await measure(direct, { ...target, prefix: `${RUN}DM` })
  const directPaced = await measure(direct, { ...target, prefix: `${RUN}DP`, rate })
  await direct.stop()
  return {
    rate,
    routeMax,
    routePaced,
    directMax,
    directPaced,
    upstream: {
      ...upstream,
      connectionsAtFullSpeed: atMax.connections,
      payCallsAtFullSpeed: atMax.payCalls,
      connectionsWhilePaced: upstream.connections - atMax.connections,
    },
  }
}

/**
 * What settling on the pay answer adds (issue 10): the pay route with settleOnPay off, with the
 * default MemoryStore and with a RedisStore, at the same paced load against one sandbox, in turns.
 */
async function paySettle(rate) {
  log(`pay route settle: off / memory / redis at ${rate} req/s, ${ROUNDS} rounds of ${ROUND_SEC} s each…`)
  const sandbox = await startServer('sandbox')
  const upstream = `http://127.0.0.1:${sandbox.port}`
  const servers = { off: await startServer('pay', [upstream, 'off']), memory: await startServer('pay', [upstream, 'memory']), redis: await startServer('pay', [upstream, 'redis']) }
  const names = Object.keys(servers).filter((name) => !servers[name].skipped)
  const config = (name, tag) => ({ url: `http://127.0.0.1:${servers[name].port}/gat/pay`, kind: 'pay', rate, prefix: `${RUN}S${name[0].toUpperCase()}${tag}` })
  for (const name of names) await warm(config(name, 'W'))
  const runs = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of names) runs[name].push(await measure(servers[name], config(name, round), ROUND_SEC))
  }
  for (const name of Object.keys(servers)) await servers[name].stop()
  await sandbox.stop()
  return Object.fromEntries(Object.keys(servers).map((name) => [name, servers[name].skipped ? { skipped: servers[name].skipped } : combine(runs[name])]))
}

/**
 * RedisStore on a primary with one replica (both started here), without and with waitReplicas: 1,
 * in turns; then the replica is killed and the waiting store measured again: every WAIT then
 * runs into waitTimeoutMs while it holds the store's one connection.
 */
async function replication() {
  log(`notify-redis on a primary with a replica, waitReplicas off / 1: ${ROUNDS} rounds of ${ROUND_SEC} s each…`)
  const primary = await startRedis()
  if (primary.skipped) return { skipped: primary.skipped }
  const replica = await startRedis(primary.port)
  if (replica.skipped) {
    await primary.stop()
    return { skipped: replica.skipped }
  }
  const env = (waitReplicas) => ({ BENCH_REDIS_PORT: String(primary.port), ...(waitReplicas ? { BENCH_WAIT_REPLICAS: String(waitReplicas) } : {}) })
  const servers = { plain: await startServer('notify', ['redis'], [], env(0)), wait: await startServer('notify', ['redis'], [], env(1)) }
  const config = (name, tag) => ({ url: `http://127.0.0.1:${servers[name].port}/gat/notify`, kind: 'notify', prefix: `${RUN}R${name[0].toUpperCase()}${tag}` })
  for (const name of ['plain', 'wait']) await warm(config(name, 'W'))
  const runs = { plain: [], wait: [] }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of ['plain', 'wait']) runs[name].push(await measure(servers[name], config(name, round), ROUND_SEC))
  }
  log('waitReplicas: 1 with the replica down…')
  await replica.stop()
  const replicaDown = combine([await measure(servers.wait, config('wait', 'X'), ROUND_SEC)])
  await servers.plain.stop()
  await servers.wait.stop()
  await primary.stop()
  return { plain: combine(runs.plain), wait: combine(runs.wait), replicaDown }
}

/**
 * Seconds of load the whole bench runs by design (warmups, runs, rounds, and the profiles when every
 * throughput target is missed); processes starting, bodies being signed and reports add to it.
 */
function plannedLoadSeconds() {
  const W = WARMUP_SEC
  const R = ROUND_SEC
  const D = DURATION_SEC
  const n = TURNS.length
  return (W + D) // ceiling
    + n * W + ROUNDS * n * R + STORES.length * R // notify turns, then each store's duplicates
    + ADAPTER_TURNS.length * (W + ROUNDS * R) // adapters and their frameworks' bare handlers
    + W + R // console logger
    + 3 * W + OTEL_ROUNDS * 3 * R // OpenTelemetry
    + 2 * W + 4 * D // pay route and sandbox direct, each at full speed and paced
    + 3 * W + ROUNDS * 3 * R // pay settle
    + 2 * W + ROUNDS * 2 * R + R // replication
    + (STORES.length + 3) * (W + R) // profiles: every store and its anchor, at worst
}

const started = Date.now()
const settings = { warmupSec: WARMUP_SEC, durationSec: DURATION_SEC, rounds: ROUNDS, roundSec: ROUND_SEC, connections: CONNECTIONS, sqlPool: Number(process.env.BENCH_SQL_POOL ?? 10) }
const machine = () => ({ cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}`, loadAvg: os.loadavg() })
/**
 * Where the results go: bench/results.{json,md} only for a whole run with the default durations
 * (what the README quotes); any shorter or partial run writes .tmp/bench/ instead. BENCH_OUT overrides.
 */
const fullRun = !SMOKE && !process.env.BENCH_ONLY && ['BENCH_WARMUP', 'BENCH_DURATION', 'BENCH_ROUNDS', 'BENCH_OTEL_ROUNDS'].every((key) => !process.env[key])
const outDir = process.env.BENCH_OUT ?? (fullRun ? fileURLToPath(new URL('.', import.meta.url)) : fileURLToPath(new URL('../.tmp/bench/', import.meta.url)))

// The whole bench is bounded: each scenario runs for fixed durations (README, "Time"), and past
// BENCH_TIME_LIMIT_SEC (default 15 min) it stops its children and fails rather than hang.
const limitSec = Number(process.env.BENCH_TIME_LIMIT_SEC ?? 900)
setTimeout(() => {
  log(`time limit of ${limitSec} s reached: stopping (BENCH_TIME_LIMIT_SEC)`)
  killChildren()
  process.exit(2)
}, limitSec * 1000).unref()

if (process.env.BENCH_ONLY === 'replication') {
  // One scenario on its own (no results files written): `BENCH_ONLY=replication node bench/run.js`.
  process.stdout.write(`${JSON.stringify(await replication(), null, 2)}\n`)
  process.exit(0)
}
if (process.env.BENCH_ONLY === 'adapters') {
  // The adapter rows alone, written to .tmp/bench/results.{json,md}.
  const adapters = await adapterScenarios()
  writeResults({ date: new Date().toISOString(), smoke: SMOKE, partial: 'adapters', machine: machine(), settings, elapsedSec: Math.round((Date.now() - started) / 1000), notify: {}, adapters }, outDir)
  process.exit(0)
}
if (process.env.BENCH_ONLY === 'notify') {
  // The notify turns alone (anchors, stores, duplicates, profiles of missed targets), written to the
  // notify sections of .tmp/bench/results.{json,md}.
  const notify = await notifyScenarios()
  writeResults({ date: new Date().toISOString(), smoke: SMOKE, partial: 'notify', machine: machine(), settings, elapsedSec: Math.round((Date.now() - started) / 1000), notify, profiles: await missedProfiles(notify) }, outDir)
  process.exit(0)
}
log(`${os.cpus().length} cores, Node ${process.version}; ${WARMUP_SEC} s warmup, ${DURATION_SEC} s runs, ${ROUNDS} rounds of ${ROUND_SEC} s, ${CONNECTIONS} connections${SMOKE ? '; SMOKE RUN' : ''}; ` +
  `at most ${plannedLoadSeconds()} s of load, time limit ${limitSec} s; results to ${outDir}`)
log('micro-benchmarks…')
const micro = await runJson('./micro.js', [], ['--expose-gc'])
const ceilingResult = await ceiling()
const notify = await notifyScenarios()
const adapters = await adapterScenarios()
const consoleResult = await consoleLogger()
const otelResult = await otelScenarios(RUN)
const payResults = await pay()
const paySettleResults = await paySettle(payResults.rate)
const replicationResult = await replication()
const profiles = await missedProfiles(notify)

writeResults({
  date: new Date().toISOString(),
  smoke: SMOKE,
  machine: machine(),
  settings: { ...settings, payRate: payResults.rate },
  elapsedSec: Math.round((Date.now() - started) / 1000),
  plannedLoadSec: plannedLoadSeconds(),
  micro,
  ceiling: ceilingResult,
  notify,
  adapters,
  consoleLogger: consoleResult,
  otel: otelResult,
  pay: payResults,
  paySettle: paySettleResults,
  replication: replicationResult,
  profiles,
}, outDir)
