/**
 * One shop instance for the fleet tests, run as a real child process:
 *
 *   node --import tsx test/fleet/app-process.ts
 *
 * Environment (all optional except SANDBOX_URL and NOTIFY_URL):
 * - PORT              port to listen on; 0 (default) for a free one.
 * - REDIS_URL         the Redis of the store and token cache (default redis://127.0.0.1:6379).
 * - REDIS_CLUSTER     instead of REDIS_URL: a Redis Cluster's seed nodes, `host:port,host:port,...`,
 *                     reached with an ioredis Cluster (settings: IOREDIS_CLUSTER_OPTIONS).
 * - WAIT_REPLICAS, WAIT_TIMEOUT_MS  RedisStore waitReplicas / waitTimeoutMs (default: not set).
 * - COUNT_REDIS_URL   the always-up Redis where onPaid counts (default redis://127.0.0.1:6379).
 * - SANDBOX_URL       Guanaitong (the sandbox) base URL.
 * - NOTIFY_URL        the notify_url sent with pays (the balancer's /gat/notify).
 * - PREFIX            RedisStore prefix (default "gat:"); the counting keys are derived from COUNT_PREFIX.
 * - TOKEN_PREFIX      RedisTokenCache prefix (default PREFIX + "token:").
 * - COUNT_PREFIX      prefix of the counting hashes (default PREFIX + "count:").
 * - LEASE_MS          RedisStore leaseMs (default 60 000).
 * - HANDLER_DELAY_MS  simulated work inside onPaid (default 0).
 * - KILL_ON           an outer_trade_no prefix: the FIRST execution of onPaid for such a payment
 *                     prints `INSIDE_ONPAID <no>` and never returns, so the test can SIGKILL the
 *                     process inside onPaid. Later executions (on another instance) run normally.
 * - WAIT_REDIS_MS     how long to wait for the Redis connection before printing READY (default 3000);
 *                     an unreachable Redis does not stop the instance from starting.
 * - INSTANCE          a name, recorded with each payment this instance completed.
 * - APP_ID, APP_SECRET (default the sandbox's 20110698 / sandbox-secret).
 * - PAY_TIMEOUT_MS    the client's timeoutMs (default 10 000).
 * - UNSETTLED_AFTER_MS when set, the router's unsettledAfterMs, with an onUnsettled that counts
 *                     (HINCRBY <COUNT_PREFIX>unsettled <outer_trade_no> 1) and prints `UNSETTLED <no>`.
 * - SWEEP_EVERY_MS    the router's sweepEveryMs (default its own).
 * - STORE             `redis` (default), or `postgres` / `mysql`: a PostgresStore / MysqlStore on
 *                     POSTGRES_URL / MYSQL_URL (test/stores/sql-helpers.ts) instead of the RedisStore.
 *                     The token cache stays in Redis (REDIS_URL).
 * - STORE_TABLE, SHOP_TABLE  with a SQL store: its settlement table, and the shop's table (made by
 *                     the test) where onPaid writes one row `(outer_trade_no, source)` through ctx.tx.
 * - POOL_MAX          with a SQL store: the pool's size (default 10).
 * - THROW_AFTER_WRITE with a SQL store: the fraction of onPaid calls (0 to 1, default 0) that throw
 *                     after their row is written (and after HANDLER_DELAY_MS), so the transaction
 *                     rolls the row back; each is counted (HINCRBY <COUNT_PREFIX>threw <no> 1).
 *
 * Counting, in the COUNT Redis (never in this process's memory, which dies with a SIGKILL):
 * - HINCRBY <COUNT_PREFIX>started <outer_trade_no> 1   when onPaid begins,
 * - HINCRBY <COUNT_PREFIX>paid <outer_trade_no> 1      when onPaid has done its work (its last step),
 * - HSET    <COUNT_PREFIX>by <outer_trade_no> <INSTANCE> (same MULTI as `paid`),
 * - HSET    <COUNT_PREFIX>source <outer_trade_no> pay|notify (same MULTI: which channel settled it).
 * "Processed exactly once" is `paid` = 1; `started` shows executions that were cut short.
 * With a SQL store the shop table is the record that counts: `paid` is counted before the COMMIT.
 *
 * stdout protocol (one line each): `READY <port>`, `INSIDE_ONPAID <no>`,
 * `ONPAID_BEGIN <no>` and `ONPAID_END <no>` around every execution of onPaid (thrown or not),
 * `COMPLETE_FAILED <key> <error message>` when the store's complete() rejected,
 * `LOG <level> <reason|-> <outer_trade_no|-> <message>` for every log line of the router,
 * `REDIS <event>` for the store client's connection events.
 */
import express from 'express'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import { guanaitong } from '../../src/adapters/express/router'
import { RedisStore } from '../../src/stores/redis'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import type { Logger, UnsettledRecord } from '../../src/kernel/types'
import { IOREDIS_CLUSTER_OPTIONS } from '../stores/cluster-options'
import { SQL_KINDS, sqlTarget, type SqlKind } from '../stores/sql-helpers'
import { sleep } from '../helpers'

const env = process.env
const num = (name: string, fallback: number) => (env[name] === undefined || env[name] === '' ? fallback : Number(env[name]))

const PORT = num('PORT', 0)
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const REDIS_CLUSTER = env.REDIS_CLUSTER ?? ''
const WAIT_REPLICAS = env.WAIT_REPLICAS ? Number(env.WAIT_REPLICAS) : undefined
const WAIT_TIMEOUT_MS = env.WAIT_TIMEOUT_MS ? Number(env.WAIT_TIMEOUT_MS) : undefined
const COUNT_REDIS_URL = env.COUNT_REDIS_URL ?? 'redis://127.0.0.1:6379'
const SANDBOX_URL = env.SANDBOX_URL
const NOTIFY_URL = env.NOTIFY_URL
const PREFIX = env.PREFIX ?? 'gat:'
const TOKEN_PREFIX = env.TOKEN_PREFIX ?? `${PREFIX}token:`
const COUNT_PREFIX = env.COUNT_PREFIX ?? `${PREFIX}count:`
const LEASE_MS = num('LEASE_MS', 60_000)
const HANDLER_DELAY_MS = num('HANDLER_DELAY_MS', 0)
const KILL_ON = env.KILL_ON ?? ''
const WAIT_REDIS_MS = num('WAIT_REDIS_MS', 3000)
const INSTANCE = env.INSTANCE ?? String(process.pid)
const APP_ID = env.APP_ID ?? '20110698'
const APP_SECRET = env.APP_SECRET ?? 'sandbox-secret'
const PAY_TIMEOUT_MS = num('PAY_TIMEOUT_MS', 10_000)
const UNSETTLED_AFTER_MS = env.UNSETTLED_AFTER_MS ? Number(env.UNSETTLED_AFTER_MS) : undefined
const SWEEP_EVERY_MS = env.SWEEP_EVERY_MS ? Number(env.SWEEP_EVERY_MS) : undefined
const STORE = env.STORE ?? 'redis'
const STORE_TABLE = env.STORE_TABLE ?? ''
const SHOP_TABLE = env.SHOP_TABLE ?? ''
const POOL_MAX = num('POOL_MAX', 10)
const THROW_AFTER_WRITE = num('THROW_AFTER_WRITE', 0)

if (!SANDBOX_URL || !NOTIFY_URL) {
  process.stderr.write('app-process: SANDBOX_URL and NOTIFY_URL are required\n')
  process.exit(2)
}
const isSql = (kind: string): kind is SqlKind => (SQL_KINDS as readonly string[]).includes(kind)
if (STORE !== 'redis' && !(isSql(STORE) && STORE_TABLE !== '' && SHOP_TABLE !== '')) {
  process.stderr.write(`app-process: STORE must be redis, ${SQL_KINDS.join(' or ')}; a SQL store needs STORE_TABLE and SHOP_TABLE\n`)
  process.exit(2)
}

const say = (line: string) => process.stdout.write(`${line}\n`)
const oneLine = (s: string) => s.replace(/\s+/g, ' ')

/** The store's client, configured to fail fast as the README recommends. */
const client = REDIS_CLUSTER !== ''
  ? new Cluster(REDIS_CLUSTER.split(',').map((node) => {
    const [host, port] = node.split(':')
    return { host, port: Number(port) }
  }), IOREDIS_CLUSTER_OPTIONS)
  : new Redis(REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: 1000,
    connectTimeout: 1000,
    // Keep reconnecting, forever, at most every 200 ms: Redis coming back must be noticed quickly.
    retryStrategy: (times) => Math.min(times * 50, 200),
    lazyConnect: false,
  })
let lastEvent = ''
for (const event of ['ready', 'close', 'end', 'error'] as const) {
  client.on(event, (err?: Error) => {
    const line = event === 'error' ? `error ${oneLine(err?.message ?? '')}` : event
    // Every reconnection attempt fails the same way while Redis is down: print each change once.
    if (line !== lastEvent) say(`REDIS ${line}`)
    lastEvent = line
  })
}

/** The counting connection: the machine's own Redis, always up; ordinary (patient) settings. */
const counter = new Redis(COUNT_REDIS_URL, { maxRetriesPerRequest: 3 })
counter.on('error', (err) => process.stderr.write(`count redis: ${err.message}\n`))

const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (context, message) => log('warn', message, context),
  error: (context, message) => log('error', message, context),
}
function log(level: string, message: string, context: Record<string, unknown> = {}): void {
  const reason = typeof context.reason === 'string' ? context.reason : '-'
  const no = typeof context.outerTradeNo === 'string' ? context.outerTradeNo : '-'
  say(`LOG ${level} ${reason} ${no} ${oneLine(message)}`)
}

/** With a SQL store: the database, and the shop table onPaid writes to. */
const sql = isSql(STORE) ? sqlTarget(STORE, POOL_MAX) : null
const shop = sql ? await sql.shop(SHOP_TABLE, false) : null

/** The store, printing why a complete() rejected (the router logs only that it did). */
function reportingCompleteFailures(store: RedisStore): RedisStore {
  const complete = store.complete.bind(store)
  store.complete = async (key, owner) => {
    try {
      return await complete(key, owner)
    } catch (err) {
      say(`COMPLETE_FAILED ${key} ${oneLine(err instanceof Error ? err.message : String(err))}`)
      throw err
    }
  }
  return store
}

const app = express()
// Which instance answered, for the tests (the balancer picks at random).
app.use((_req, res, next) => {
  res.setHeader('x-instance', INSTANCE)
  next()
})
app.get('/health', (_req, res) => {
  res.json({ instance: INSTANCE, pid: process.pid, redis: client.status })
})
app.use('/gat', guanaitong({
  appId: APP_ID,
  appSecret: APP_SECRET,
  baseUrl: SANDBOX_URL,
  notifyUrl: NOTIFY_URL,
  logger,
  timeoutMs: PAY_TIMEOUT_MS,
  store: sql ? sql.store({ table: STORE_TABLE }) : reportingCompleteFailures(new RedisStore({
    client, prefix: PREFIX, leaseMs: LEASE_MS, waitReplicas: WAIT_REPLICAS, waitTimeoutMs: WAIT_TIMEOUT_MS,
  })),
  ...(UNSETTLED_AFTER_MS === undefined ? {} : {
    unsettledAfterMs: UNSETTLED_AFTER_MS,
    sweepEveryMs: SWEEP_EVERY_MS,
    async onUnsettled(record: UnsettledRecord) {
      await counter.multi()
        .hincrby(`${COUNT_PREFIX}unsettled`, record.outerTradeNo, 1)
        .hset(`${COUNT_PREFIX}unsettled-by`, record.outerTradeNo, INSTANCE)
        .exec()
      say(`UNSETTLED ${record.outerTradeNo}`)
    },
  }),
  tokenCache: new RedisTokenCache({ client, prefix: TOKEN_PREFIX }),
  preparePayment: (_req, params) => ({
    ...params,
    buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
    total_amount: '12.34',
    reason: typeof params.reason === 'string' ? params.reason : 'fleet test',
    asset_type: '1',
    asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
  }),
  async onPaid(payment, _req, ctx) {
    const no = payment.outerTradeNo
    say(`ONPAID_BEGIN ${no}`)
    try {
      const started = await counter.hincrby(`${COUNT_PREFIX}started`, no, 1)
      if (KILL_ON !== '' && no.startsWith(KILL_ON) && started === 1) {
        say(`INSIDE_ONPAID ${no}`)
        await new Promise<never>(() => undefined)
      }
      if (shop) await shop.write(ctx.tx, no, ctx.source)
      if (HANDLER_DELAY_MS > 0) await sleep(HANDLER_DELAY_MS)
      if (shop && Math.random() < THROW_AFTER_WRITE) {
        await counter.hincrby(`${COUNT_PREFIX}threw`, no, 1)
        throw new Error(`onPaid for ${no} threw after writing its row (THROW_AFTER_WRITE)`)
      }
      await counter.multi()
        .hincrby(`${COUNT_PREFIX}paid`, no, 1)
        .hset(`${COUNT_PREFIX}by`, no, INSTANCE)
        .hset(`${COUNT_PREFIX}source`, no, ctx.source)
        .exec()
    } finally {
      say(`ONPAID_END ${no}`)
    }
  },
}))

const server = app.listen(PORT, '127.0.0.1')
// Longer than the balancer's idle sockets live: the balancer never reuses a socket we are closing.
server.keepAliveTimeout = 60_000
server.headersTimeout = 61_000
await once(server, 'listening')

if (client.status !== 'ready') {
  // Only 'ready' ends the wait early (events.once would also settle on 'error', which an
  // unreachable Redis emits at once; then the wait simply runs out).
  await Promise.race([new Promise((resolve) => client.once('ready', resolve)), sleep(WAIT_REDIS_MS)])
}
say(`READY ${(server.address() as AddressInfo).port}`)

async function shutdown(): Promise<void> {
  server.closeAllConnections()
  server.close()
  client.disconnect()
  await sql?.end().catch(() => undefined)
  await counter.quit().catch(() => undefined)
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())
// The test is our parent: when it goes away (its stdin pipe closes), so do we.
process.stdin.on('end', () => void shutdown())
process.stdin.resume()
