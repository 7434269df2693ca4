/**
 * The example shop: a cashier page (收银台) where the logged-in employee pays an order with
 * their Guanaitong points (积分) or quota (额度).
 *
 * `startShop()` runs it in-process (the browser test does); `server.ts` is the `npm start` runner.
 * Without `gat` it plays against an embedded sandbox, so it works with no credentials. With
 * `databaseUrl` its orders live in PostgreSQL and payments settle through a `PostgresStore`: the
 * order's update commits in the same transaction as the store's done-marker (exactly once).
 *
 * In your own app, import from 'express-guanaitong' and 'express-guanaitong/testing'; the
 * example imports the sources so it runs without a build.
 */
import express, { type Express, type Request } from 'express'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { amountToFen, fenToAmount, guanaitong, PostgresStore, type LogFields, type Logger, type Mismatch } from '../../src/index'
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/testing/index'
import { memoryOrders, postgresOrders, type Order, type OrderBook } from './orders'

export type { Order, OrderStatus } from './orders'

/** An asset the employee can pay with. The shop keeps its own list: listing assets is not part of this package. */
export interface Asset {
  /** "1" points (积分), "4" quota (额度). */
  asset_type: '1' | '4'
  asset_open_id: string
  name: string
  /**
   * The starting balance: a decimal amount, or "?" when unknown. This demo shop shows it less the
   * orders paid with the asset; listing real balances is not part of this package.
   */
  balance: string
  /** Sandbox mode only: the sandbox reports this asset's payments as failed. */
  sandboxFails?: boolean
}

export interface ShopOptions {
  /** Port to listen on. Default 3000; 0 picks a free one. */
  port?: number
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string
  /** Real Guanaitong. Without it, the shop starts an embedded sandbox. */
  gat?: {
    appId: string
    appSecret: string
    baseUrl: string
    /** The public URL Guanaitong posts to. Default http://127.0.0.1:<port>/gat/notify (only a sandbox can reach that). */
    notifyUrl?: string
  }
  /** Options of the embedded sandbox (ignored with `gat`), e.g. `{ timeScale: 0.001 }`. */
  sandbox?: SandboxOptions
  /** The fake session's employee open id. Default the seed's d87797eea12a2f80ad72ed93214a0908. */
  buyerOpenId?: string
  /** The employee's assets. Default: points and quota (plus, in sandbox mode, one that fails). */
  assets?: Asset[]
  /** Where the shop and the router log. Default console. */
  logger?: Logger
  /**
   * A PostgreSQL URL: orders in its table `orders` (created if missing), settlements through a
   * `PostgresStore` (table `gat_settlements`). Default: both in memory.
   */
  databaseUrl?: string
}

export interface Shop {
  /** e.g. http://127.0.0.1:3000 */
  url: string
  port: number
  app: Express
  /** The embedded sandbox; null with real Guanaitong. */
  sandbox: Sandbox | null
  /** The orders, in memory mode; empty with `databaseUrl` (use `order(id)`). */
  orders: Map<string, Order>
  /** One order, from memory or the database. */
  order(id: string): Promise<Order | undefined>
  /** How many times onPaid / onPayFailed ran. */
  handled: { paid: number; failed: number }
  /** Notifications `findOrder` disagreed with (unknown order, other amount or buyer): answered `fail`, left for review. */
  mismatches: Mismatch[]
  close(): Promise<void>
}

export const DEMO_BUYER_OPEN_ID = 'd87797eea12a2f80ad72ed93214a0908'
/** The sandbox-only asset whose payments fail (`sandbox.failPaysWithAsset`), to show a failed payment. */
export const FAILING_ASSET_ID = 'sandbox-fails-insufficient'

const MENU = { title: '午餐套餐 Lunch set', amount: '25.80' }

function defaultAssets(sandboxMode: boolean): Asset[] {
  const assets: Asset[] = [
    { asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec', name: '积分 Points', balance: '1280.00' },
    { asset_type: '4', asset_open_id: 'b7e1c0d2f3a4958677a1b2c3d4e5f607', name: '额度 Quota', balance: '500.00' },
  ]
  if (sandboxMode) {
    assets.push({ asset_type: '4', asset_open_id: FAILING_ASSET_ID, name: '额度 (余额不足, sandbox: fails)', balance: '0.00', sandboxFails: true })
  }
  return assets
}

/** An error the pay route answers with its status and message (see "The secure pay pattern"). */
function refuse(status: number, message: string): Error {
  return Object.assign(new Error(message), { status })
}

/** The asset as the page shows it: its balance less what the shop's paid orders took off it. */
function publicAsset(asset: Asset, paidFen: number) {
  const start = amountToFen(asset.balance)
  const balance = start === null ? asset.balance : fenToAmount(start - paidFen)
  return { asset_type: asset.asset_type, asset_open_id: asset.asset_open_id, name: asset.name, balance }
}

/** Node-postgres pools for the orders and, of its own, for the settlement store (docs/sql-stores.md). */
function postgresPools(url: string, log: (fields: LogFields, message: string) => void) {
  const make = (max: number) => {
    const pool = new pg.Pool({ connectionString: url, max })
    // An idle client the server dropped emits 'error' on its pool: unheard, it would crash the shop.
    pool.on('error', (error) => log({}, `[shop] PostgreSQL connection lost: ${error.message}`))
    return pool
  }
  return { orders: make(10), settlements: make(5) }
}

export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const logger: Logger = options.logger ?? console
  // The shop logs as the router does: (fields, message) for pino and friends, message first for console.
  const log = (level: 'info' | 'warn' | 'error', fields: LogFields, message: string) => {
    const method = (logger[level] ?? logger.warn).bind(logger)
    if (logger === console) console[level](message, fields)
    else method(fields, message)
  }
  const orders = new Map<string, Order>()
  const handled = { paid: 0, failed: 0 }
  const mismatches: Mismatch[] = []
  const buyerOpenId = options.buyerOpenId ?? DEMO_BUYER_OPEN_ID

  let book: OrderBook = memoryOrders(orders)
  let store: PostgresStore | undefined
  let settlementsPool: pg.Pool | undefined
  if (options.databaseUrl) {
    const pools = postgresPools(options.databaseUrl, (fields, message) => log('warn', fields, message))
    try {
      book = await postgresOrders(pools.orders)
    } catch (error) {
      await Promise.all([pools.orders.end(), pools.settlements.end()])
      throw Object.assign(new Error(`could not open the orders table: ${(error as Error).message}`), { code: 'SHOP_DATABASE', cause: error })
    }
    settlementsPool = pools.settlements
    store = new PostgresStore({ pool: settlementsPool })
  }
  const closeDatabase = async () => {
    await book.close()
    await settlementsPool?.end()
  }

  let sandbox: Sandbox | null = null
  if (!options.gat) {
    sandbox = createSandbox({ ...options.sandbox })
    await sandbox.start()
  }
  const assets = options.assets ?? defaultAssets(sandbox !== null)

  // Listen first: the notify URL needs the port (PORT=0 picks one). Routes are added right after.
  const app = express()
  const server: Server = createServer(app)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 3000, options.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    await sandbox?.close()
    await closeDatabase()
    throw error
  }
  const port = (server.address() as AddressInfo).port
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`

  // The fake session: every visitor is the same demo employee. A real shop reads req.session.
  const employeeOf = (_req: Request) => ({ name: '张三 Zhang San (demo)', openId: buyerOpenId })

  // The demo's failing asset behaves like one without enough balance.
  for (const asset of assets) if (sandbox && asset.sandboxFails) sandbox.failPaysWithAsset(asset.asset_open_id)

  app.use('/gat', guanaitong({
    appId: sandbox ? sandbox.appId : options.gat!.appId,
    appSecret: sandbox ? sandbox.appSecret : options.gat!.appSecret,
    baseUrl: sandbox ? sandbox.url : options.gat!.baseUrl,
    notifyUrl: options.gat?.notifyUrl ?? `${url}/gat/notify`,
    logger,
    // Without a database, the default MemoryStore.
    store,
    // The secure pattern: the buyer comes from the session, the amount and reason from the
    // server's own order, the asset from the employee's own list. The body only names them.
    preparePayment: async (req, params) => {
      const employee = employeeOf(req)
      const order = await book.get(params.outer_trade_no)
      if (!order || order.buyerOpenId !== employee.openId) throw refuse(404, '没有这个订单 No such order')
      if (order.status === 'paid') throw refuse(409, '订单已支付 This order is paid already')
      if (order.status === 'failed') throw refuse(409, '此订单支付失败，请新建订单 This order\'s payment failed: start a new order')
      const asset = assets.find((a) => a.asset_open_id === params.asset_open_id)
      if (!asset) throw refuse(400, '请选择您的一项资产 Choose one of your assets')
      // The demo's own balance; the sandbox's failing asset is let through to show Guanaitong's failure notice.
      const startFen = amountToFen(asset.balance)
      const paidFen = (await book.paidFenByAsset()).get(asset.asset_open_id) ?? 0
      if (!asset.sandboxFails && startFen !== null && startFen - paidFen < amountToFen(order.amount)!) {
        throw refuse(409, `余额不足 Not enough balance on ${asset.name}`)
      }
      await book.chooseAsset(order.id, asset)
      return {
        outer_trade_no: order.id,
        buyer_open_id: employee.openId,
        total_amount: order.amount,
        reason: order.title,
        asset_type: asset.asset_type,
        asset_open_id: asset.asset_open_id,
      }
    },
    // A notification for an order this shop does not know, or for another amount or buyer, never
    // reaches onPaid: the router answers `fail` and calls onMismatch (see the README's Security).
    findOrder: async (outerTradeNo) => {
      const order = await book.get(outerTradeNo)
      return order ? { totalAmount: order.amount, buyerOpenId: order.buyerOpenId } : null
    },
    onMismatch: (mismatch) => {
      // A real shop alerts someone; the router has logged it with ORDER_MISMATCH.
      mismatches.push(mismatch)
    },
    // With a database, ctx.tx is the PostgresStore's transaction: the order's update commits with
    // the store's done-marker, so it happens once. In memory, a paid order is left as it is.
    onPaid: async (payment, _req, ctx) => {
      handled.paid += 1
      if (!(await book.markPaid(payment.outerTradeNo, payment.tradeNo, ctx.tx))) return
      log('info', { outerTradeNo: payment.outerTradeNo }, `[shop] order ${payment.outerTradeNo} paid: trade_no ${payment.tradeNo}, ${payment.totalAmount}`)
    },
    onPayFailed: async (notice, _req, ctx) => {
      handled.failed += 1
      const message = '关爱通通知此次支付未成功 Guanaitong reported that the payment did not go through'
      if (!(await book.markFailed(notice.outerTradeNo, message, ctx.tx))) return
      log('info', { outerTradeNo: notice.outerTradeNo }, `[shop] order ${notice.outerTradeNo}: payment failed`)
    },
  }))

  app.get('/session', async (req, res) => {
    const employee = employeeOf(req)
    const paid = await book.paidFenByAsset()
    res.json({
      employee: { name: employee.name },
      mode: sandbox ? 'sandbox' : 'guanaitong',
      assets: assets.map((a) => publicAsset(a, paid.get(a.asset_open_id) ?? 0)),
    })
  })

  let seq = 0
  app.post('/orders', async (req, res) => {
    seq = (seq + 1) % 1000
    const order: Order = {
      id: `ORD${Date.now()}${String(seq).padStart(3, '0')}`,
      title: MENU.title,
      amount: MENU.amount,
      buyerOpenId: employeeOf(req).openId,
      status: 'pending',
      assetOpenId: null,
      assetName: null,
      tradeNo: null,
      message: null,
      createdAt: new Date().toISOString(),
      paidAt: null,
    }
    await book.add(order)
    res.status(201).json(order)
  })

  app.get('/orders/:id', async (req, res) => {
    const order = await book.get(req.params.id)
    if (!order || order.buyerOpenId !== employeeOf(req).openId) {
      res.status(404).json({ msg: '没有这个订单 No such order' })
      return
    }
    res.set('cache-control', 'no-store').json(order)
  })

  app.use(express.static(join(import.meta.dirname, 'public')))

  return {
    url,
    port,
    app,
    sandbox,
    orders,
    order: (id) => book.get(id),
    handled,
    mismatches,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await sandbox?.close()
      await closeDatabase()
    },
  }
}
