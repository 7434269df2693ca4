/**
 * `npm start`: the example shop on http://127.0.0.1:3000 (PORT, HOST to change).
 *
 * With GAT_APPID, GAT_APPSECRET and GAT_BASE_URL set it talks to real Guanaitong (also set
 * GAT_NOTIFY_URL to a public URL of /gat/notify, and GAT_BUYER_OPEN_ID, GAT_POINTS_ASSET_ID,
 * GAT_QUOTA_ASSET_ID to a real test employee and their assets); otherwise it starts an embedded
 * sandbox (SANDBOX_TIME_SCALE speeds up its retries, default 1). OTEL=1 starts OpenTelemetry and
 * serves Prometheus metrics at /metrics (see otel.ts). DATABASE_URL (a PostgreSQL URL) keeps the
 * orders in PostgreSQL and settles payments through a PostgresStore; without it, both are in memory.
 */
import { startShop, type Asset, type Order, type ShopOptions } from './app'

const env = process.env
const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number (0 picks a free one); got ${JSON.stringify(env.PORT)}`)
  process.exit(2)
}

const real = ['GAT_APPID', 'GAT_APPSECRET', 'GAT_BASE_URL'] as const
const set = real.filter((name) => env[name])
const options: ShopOptions = { port, host: env.HOST || undefined }
if (set.length === real.length) {
  options.gat = { appId: env.GAT_APPID!, appSecret: env.GAT_APPSECRET!, baseUrl: env.GAT_BASE_URL!, notifyUrl: env.GAT_NOTIFY_URL || undefined }
  if (env.GAT_BUYER_OPEN_ID) options.buyerOpenId = env.GAT_BUYER_OPEN_ID
  const assets: Asset[] = []
  if (env.GAT_POINTS_ASSET_ID) assets.push({ asset_type: '1', asset_open_id: env.GAT_POINTS_ASSET_ID, name: '积分 Points', balance: '?' })
  if (env.GAT_QUOTA_ASSET_ID) assets.push({ asset_type: '4', asset_open_id: env.GAT_QUOTA_ASSET_ID, name: '额度 Quota', balance: '?' })
  if (assets.length) options.assets = assets
} else {
  if (set.length) console.warn(`[shop] ${set.join(', ')} set but not ${real.filter((n) => !env[n]).join(', ')}: using the embedded sandbox`)
  const timeScale = env.SANDBOX_TIME_SCALE ? Number(env.SANDBOX_TIME_SCALE) : undefined
  options.sandbox = { timeScale }
}
if (env.DATABASE_URL) options.databaseUrl = env.DATABASE_URL

/** The database's host and name, never its password. */
function databaseName(url: string): string {
  try {
    const { host, pathname } = new URL(url)
    return `${host}${pathname}`
  } catch {
    return 'DATABASE_URL'
  }
}

// Loaded only when asked for: the shop runs without the OpenTelemetry SDK too.
const telemetry = env.OTEL === '1' ? (await import('./otel')).startTelemetry() : null
const shop = await startShop(options).catch((error: NodeJS.ErrnoException) => {
  if (error.code === 'EADDRINUSE') {
    console.error(`[shop] port ${port} is in use by another program: set PORT to another port, e.g. PORT=3001 npm start (PORT=0 picks a free one)`)
    process.exit(1)
  }
  if (error.code === 'SHOP_DATABASE') {
    console.error(`[shop] PostgreSQL at ${databaseName(options.databaseUrl!)}: ${error.message}`)
    process.exit(1)
  }
  throw error
})
console.log(`[shop] cashier page on ${shop.url}`)
if (options.databaseUrl) {
  console.log(`[shop] orders and settlements in PostgreSQL at ${databaseName(options.databaseUrl)} (tables orders, gat_settlements)`)
}
if (telemetry) {
  shop.app.get('/metrics', telemetry.metrics)
  console.log(`[shop] OpenTelemetry on: Prometheus metrics at ${shop.url}/metrics`)
}
if (shop.sandbox) {
  console.log(`[shop] embedded Guanaitong sandbox on ${shop.sandbox.url} (app id ${shop.sandbox.appId}, the sandbox's default secret)`)
} else {
  console.log(`[shop] using Guanaitong at ${env.GAT_BASE_URL}`)
}

// `npm start` execs this process (package.json), so npm's SIGTERM reaches it; close the
// server and the sandbox, then exit. A second signal exits at once.
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130)
    stopping = true
    shop.close().then(() => telemetry?.shutdown()).then(() => {
      console.log(`[shop] ${signal}: stopped`)
      process.exit(0)
    }, (error: unknown) => {
      console.error(`[shop] ${signal}: could not stop cleanly:`, error)
      process.exit(1)
    })
  })
}

// An order of the shop's own, so the printed notification pays it (an unknown order is answered
// `fail`); made after the signal handlers are in place, and skipped if the shop stops first.
if (shop.sandbox) {
  const appId = shop.sandbox.appId
  fetch(`${shop.url}/orders`, { method: 'POST' }).then((res) => res.json() as Promise<Order>).then((order) => {
    console.log(`[shop] try paying order ${order.id} with a signed notification, as Guanaitong would send it:\n` +
      `  npx tsx src/cli.ts notify --url ${shop.url}/gat/notify --app-id ${appId} --app-secret sandbox-secret ` +
      `--outer-trade-no ${order.id} --amount ${order.amount} --buyer-open-id ${order.buyerOpenId}`)
  }, () => {})
}
