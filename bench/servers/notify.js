// The router's notify route: parse, verify, dedupe, a no-op onPaid.
// `node notify.js memory` uses the default MemoryStore; `node notify.js redis` a RedisStore on
// BENCH_REDIS_URL (default redis://127.0.0.1:6379; prints `SKIP <why>` and exits when no Redis
// answers or RedisStore is missing). Round trips to the database are counted on the wire (wire.js).
// `node notify.js postgres` / `mysql`: a PostgresStore / MysqlStore on the local database, and an
// onPaid that INSERTs a payment row through ctx.tx (sql.js; SKIP when the database is missing).
// BENCH_OTEL=sdk registers the OpenTelemetry SDK first (otel-sdk.js); started with
// `--require hide-otel.cjs`, the package finds no OpenTelemetry API at all.
// BENCH_REDIS_PORT picks another Redis; BENCH_WAIT_REPLICAS sets the store's waitReplicas;
// BENCH_REDIS_AUTOPIPELINING=1 creates the client with ioredis's enableAutoPipelining.
import { createRequire } from 'node:module'
import express from 'express'
import * as gat from '../../dist/index.js'
import { APP_ID, APP_SECRET } from '../config.js'
import { announce } from './control.js'
import { cpuUsOf, sqlStore } from './sql.js'
import { countRoundTrips } from './wire.js'

const kind = process.argv[2] ?? 'memory'
if (process.env.BENCH_OTEL === 'sdk') await import('./otel-sdk.js')
/** Whether the package can load @opentelemetry/api here (it resolves it the same way). */
const otelApi = (() => {
  try {
    createRequire(import.meta.url).resolve('@opentelemetry/api')
    return true
  } catch {
    return false
  }
})()
let paid = 0
let redis = null
let counter = null
let database = () => undefined
let sql = null
let store

// Rejections are logged at warn/error (there should be none); duplicates are logged at debug,
// which a production logger usually drops. BENCH_LOGGER=console uses console for everything.
const logger = process.env.BENCH_LOGGER === 'console' ? console : {
  debug() {},
  info() {},
  warn: (message, context) => console.warn(message, context),
  error: (message, context) => console.error(message, context),
}

if (kind === 'redis') {
  try {
    if (typeof gat.RedisStore !== 'function') throw new Error('RedisStore is not exported by dist/index.js')
    const { default: Redis } = await import('ioredis')
    const url = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379')
    if (process.env.BENCH_REDIS_PORT) url.port = process.env.BENCH_REDIS_PORT
    const enableAutoPipelining = process.env.BENCH_REDIS_AUTOPIPELINING === '1'
    redis = new Redis(url.href, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, enableAutoPipelining })
    redis.on('error', () => {})
    await redis.connect()
    // Redis's CPU: the whole redis-server process (other clients' commands included), from /proc.
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1])
    database = () => {
      const wholeUs = pid ? cpuUsOf(`/proc/${pid}/stat`) : null
      return wholeUs === null ? undefined : { source: `redis-server ${pid}`, wholeUs }
    }
    counter = countRoundTrips(Number(url.port || 6379), 'redis')
    const waitReplicas = process.env.BENCH_WAIT_REPLICAS ? Number(process.env.BENCH_WAIT_REPLICAS) : undefined
    store = new gat.RedisStore({ client: redis, prefix: `gatbench:${process.pid}:`, waitReplicas })
  } catch (err) {
    process.stdout.write(`SKIP ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(0)
  }
}

if (kind === 'postgres' || kind === 'mysql') {
  try {
    sql = await sqlStore(gat, kind)
    store = sql.store
    counter = sql.counter
    database = sql.databaseCpu
  } catch (err) {
    process.stdout.write(`SKIP ${kind}: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(0)
  }
}

const app = express()
app.use('/gat', gat.guanaitong({
  appId: APP_ID,
  appSecret: APP_SECRET,
  notifyUrl: 'https://shop.example/gat/notify',
  onPaid: sql
    ? (payment, req, ctx) => {
      paid += 1
      return sql.onPaid(payment, req, ctx)
    }
    : () => { paid += 1 },
  payPath: false,
  logger,
  ...(store ? { store } : {}),
}))

/** Deletes what this run left in Redis (done-markers are kept 25 h otherwise), or its SQL tables. */
async function clean() {
  if (sql) await sql.close()
  if (!redis) return
  const keys = await redis.keys(`gatbench:${process.pid}:*`)
  for (let i = 0; i < keys.length; i += 10_000) await redis.unlink(...keys.slice(i, i + 10_000))
  await redis.quit()
}

// `shopRoundTrips`: the shop's own statements among the round trips (onPaid sends one per call).
const report = () => ({
  paid,
  otelApi,
  ...(counter ? { roundTrips: counter.snapshot(), shopRoundTrips: sql ? paid : 0, database: database() } : {}),
})
const server = app.listen(0, '127.0.0.1', () => announce(server, { report, close: clean, lastWriteAt: counter && (() => counter.lastWriteAt) }))
