// The router's pay route against the sandbox at argv[2]. No notifyUrl and no preparePayment: the
// body carries every parameter and the sandbox has no notification to deliver.
// argv[3] is how the pay answer settles: `memory` (default: settleOnPay with the default
// MemoryStore), `redis` (settleOnPay with a RedisStore on BENCH_REDIS_URL, default redis://127.0.0.1:6379) or `off` (settleOnPay: false).
import express from 'express'
import * as gat from '../../dist/index.js'
import { APP_ID, APP_SECRET } from '../config.js'
import { announce } from './control.js'

const mode = process.argv[3] ?? 'memory'
let paid = 0
let redis = null
let store
if (mode === 'redis') {
  try {
    const { default: Redis } = await import('ioredis')
    redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
    redis.on('error', () => {})
    await redis.connect()
    store = new gat.RedisStore({ client: redis, prefix: `gatbench:pay:${process.pid}:` })
  } catch (err) {
    process.stdout.write(`SKIP ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(0)
  }
}

const logger = { info() {}, debug() {}, warn: (message, context) => console.error(message, context), error: (message, context) => console.error(message, context) }
const app = express()
app.use('/gat', gat.guanaitong({
  appId: APP_ID, appSecret: APP_SECRET, baseUrl: process.argv[2], onPaid: () => { paid += 1 }, logger,
  settleOnPay: mode !== 'off', ...(store ? { store } : {}),
}))

async function cleanRedis() {
  if (!redis) return
  const keys = await redis.keys(`gatbench:pay:${process.pid}:*`)
  for (let i = 0; i < keys.length; i += 10_000) await redis.unlink(...keys.slice(i, i + 10_000))
  await redis.quit()
}

const server = app.listen(0, '127.0.0.1', () => announce(server, { report: () => ({ paid }), close: cleanRedis }))
