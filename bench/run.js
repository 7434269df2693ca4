// `npm run bench`: every server in its own child process, the load generator (autocannon) in
// another. Prints a table; writes bench/results.json and bench/results.md. See bench/README.md.
import os from 'node:os'
import { CONNECTIONS, DURATION_SEC, ROUNDS, ROUND_SEC, WARMUP_SEC, combine, log, measure, warm } from './measure.js'
import { otelScenarios } from './otel.js'
import { runJson, startRedis, startServer } from './proc.js'
import { writeResults, writeSqlResults } from './report.js'

/**
 * The pay comparison's paced load, requests/s over all connections. Default: a quarter of the
 * pay route's throughput measured just before, so neither side queues and p50 shows the hop itself.
 */
const PAY_RATE = Number(process.env.BENCH_PAY_RATE ?? 0)
/** Order numbers must be new to Redis and to each sandbox: every bench run has its own prefix. */
const RUN = Date.now().toString(36).slice(-5).toUpperCase()

/**
 * 30 % of the requests repeat one of the last 5 000 notifications sent with `prefix` (still in the
 * store); fewer when fewer were sent (the SQL stores' rounds), so every repeat was sent before.
 */
const duplicatesOf = (prefix, sent) => ({ prefix, last: sent - CONNECTIONS, window: Math.min(5000, sent - CONNECTIONS), share: 0.3 })

async function ceiling() {
  log('ceiling…')
  const server = await startServer('ceiling')
  const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', prefix: `${RUN}C` }
  await warm(config, WARMUP_SEC, 'ceiling')
  const result = await measure(server, config, DURATION_SEC, 'ceiling')
  await server.stop()
  return result
}

/** The stores measured in turns with the baseline, and the letter of their order numbers. */
const STORES = { memory: 'M', redis: 'R', postgres: 'P', mysql: 'Y' }

/**
 * Baseline, notify-memory, notify-redis, notify-postgres and notify-mysql (all new notifications)
 * in turns, so a burst of other work on the machine hits them alike; then the 30 % duplicate pass
 * of each store.
 */
async function notifyScenarios(repeat = '') {
  log(`baseline, ${Object.keys(STORES).map((store) => `notify-${store}`).join(', ')}: ${ROUNDS} rounds of ${ROUND_SEC} s each…`)
  const servers = { baseline: await startServer('baseline') }
  for (const store of Object.keys(STORES)) servers[store] = await startServer('notify', [store])
  const names = Object.keys(servers).filter((name) => !servers[name].skipped)
  const config = (name, tag) => ({ url: `http://127.0.0.1:${servers[name].port}/gat/notify`, kind: 'notify', prefix: `${RUN}${repeat}${STORES[name] ?? 'B'}${tag}` })
  for (const name of names) await warm(config(name, 'W'))
  const runs = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of names) runs[name].push(await measure(servers[name], config(name, round), ROUND_SEC))
  }
  const out = { baseline: combine(runs.baseline) }
  for (const store of Object.keys(STORES)) {
    if (servers[store].skipped) {
      out[store] = { skipped: servers[store].skipped }
      continue
    }
    log(`notify-${store}, 30 % duplicates…`)
    const dup = duplicatesOf(`${config(store, ROUNDS).prefix}`, runs[store].at(-1).sent)
    const duplicates = combine([await measure(servers[store], { ...config(store, 'D'), dup })])
    out[store] = { unique: combine(runs[store]), duplicates }
  }
  for (const name of names) {
    await servers[name].stop()
    // What a server logged (rejections are logged at warn/error): the why of any non-2xx answer.
    if (out[name] && servers[name].stderr) out[name].stderr = servers[name].stderr.slice(-2000)
  }
  return out
}

/**
 * The 30 % duplicates pass again with `logger: console`, the router's default: each duplicate
 * is then logged at info level, a synchronous write to stdout (a pipe here).
 */
async function consoleLogger() {
  log('notify-memory, 30 % duplicates, console logger…')
  const server = await startServer('notify', ['memory'], [], { BENCH_LOGGER: 'console' })
  const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', prefix: `${RUN}L` }
  const { sent } = await warm(config)
  const result = combine([await measure(server, { ...config, prefix: `${RUN}LD`, dup: duplicatesOf(`${RUN}LW`, sent) })])
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

const started = Date.now()
if (process.env.BENCH_ONLY === 'replication') {
  // One scenario on its own (no results files written): `BENCH_ONLY=replication node bench/run.js`.
  process.stdout.write(`${JSON.stringify(await replication(), null, 2)}\n`)
  process.exit(0)
}
if (process.env.BENCH_ONLY === 'notify') {
  // Baseline and the notify stores in turns, alone, BENCH_REPEAT times (default 3): one line per
  // scenario and run, then bench/results-sql.{json,md} (results.{json,md} are left as they are).
  const repeats = Number(process.env.BENCH_REPEAT ?? 3)
  const runs = []
  for (let repeat = 1; repeat <= repeats; repeat++) {
    const loadBefore = os.loadavg()
    const only = await notifyScenarios(repeat)
    const base = only.baseline
    log(`run ${repeat} of ${repeats}:`)
    for (const [name, run] of Object.entries(only)) {
      const pass = run.unique ?? run
      if (!pass.rps) {
        log(`${name}: skipped (${run.skipped})`)
        continue
      }
      const rounds = pass.rounds.map((round, i) => (round.rps / base.rounds[i].rps).toFixed(2)).join(' ')
      const trips = pass.sqlStatementsPerSettled ?? pass.redisCommandsPerRequest
      log(`${name}: ${Math.round(pass.rps)} req/s, ${(pass.rps / base.rps).toFixed(2)} × baseline (rounds ${rounds}), ` +
        `CPU µs/req: server ${pass.cpuUsPerRequest}, load generator ${pass.loadCpuUsPerRequest}` +
        `${pass.databaseCpuUsPerRequest === undefined ? '' : `, database ${pass.databaseCpuUsPerRequest}`}` +
        `${trips === undefined ? '' : `; ${trips} round trips per new notification`}` +
        `${run.duplicates ? `; 30 % dup ${Math.round(run.duplicates.rps)} req/s, ${run.duplicates.sqlStatementsPerRequest ?? run.duplicates.redisCommandsPerRequest ?? '–'} round trips/req` : ''}`)
    }
    const loadAfter = os.loadavg()
    log(`load average ${loadBefore.map((n) => n.toFixed(2)).join(' ')} before, ${loadAfter.map((n) => n.toFixed(2)).join(' ')} after`)
    runs.push({ date: new Date().toISOString(), loadBefore, loadAfter, ...only })
  }
  writeSqlResults({
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` },
    settings: { warmupSec: WARMUP_SEC, rounds: ROUNDS, roundSec: ROUND_SEC, connections: CONNECTIONS, sqlPool: Number(process.env.BENCH_SQL_POOL ?? 10) },
    elapsedSec: Math.round((Date.now() - started) / 1000),
    runs,
  })
  process.exit(0)
}
log(`${os.cpus().length} cores, Node ${process.version}; ${WARMUP_SEC} s warmup, ${DURATION_SEC} s runs, ${CONNECTIONS} connections`)
log('micro-benchmarks…')
const micro = await runJson('./micro.js', [], ['--expose-gc'])
const ceilingResult = await ceiling()
const notify = await notifyScenarios()
const consoleResult = await consoleLogger()
const otelResult = await otelScenarios(RUN)
const payResults = await pay()
const paySettleResults = await paySettle(payResults.rate)
const replicationResult = await replication()

writeResults({
  date: new Date().toISOString(),
  machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` },
  settings: { warmupSec: WARMUP_SEC, durationSec: DURATION_SEC, rounds: ROUNDS, roundSec: ROUND_SEC, connections: CONNECTIONS, payRate: payResults.rate, sqlPool: Number(process.env.BENCH_SQL_POOL ?? 10) },
  elapsedSec: Math.round((Date.now() - started) / 1000),
  micro,
  ceiling: ceilingResult,
  baseline: notify.baseline,
  notifyMemory: notify.memory,
  notifyRedis: notify.redis,
  notifyPostgres: notify.postgres,
  notifyMysql: notify.mysql,
  consoleLogger: consoleResult,
  otel: otelResult,
  pay: payResults,
  paySettle: paySettleResults,
  replication: replicationResult,
})
