/**
 * The example shop: a cashier page (收银台) where the logged-in employee pays an order with
 * their Guanaitong points (积分) or quota (额度).
 *
 * `startShop()` runs it in-process (the browser test does); `server.ts` is the `npm start` runner.
 * Without `gat` it plays against an embedded sandbox, so it works with no credentials.
 *
 * In your own app, import from 'express-guanaitong' and 'express-guanaitong/testing'; the
 * example imports the sources so it runs without a build.
 */
import express, { type Express, type Request } from 'express'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { amountToFen, fenToAmount, guanaitong, type LogFields, type Logger, type OrderMismatch } from '../../src/index'
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/testing/index'

/** An asset the employee can pay with. The shop keeps its own list: listing assets is not part of this package. */
export interface Asset {
  /** "1" points (积分), "4" quota (额度). */
  asset_type: '1' | '4'
  asset_open_id: string
  name: string
  /**
   * For display: a decimal amount, or "?" when unknown. This demo shop keeps it itself and takes
   * each payment off it; listing real balances is not part of this package.
   */
  balance: string
  /** Sandbox mode only: the sandbox reports this asset's payments as failed. */
  sandboxFails?: boolean
}

export type OrderStatus = 'pending' | 'paid' | 'failed'

export interface Order {
  /** Also the outer_trade_no sent to Guanaitong (2–22 characters). */
  id: string
  title: string
  /** Decimal yuan, decided by the server, never by the browser. */
  amount: string
  buyerOpenId: string
  status: OrderStatus
  /** The asset chosen for the payment (set when it is sent). */
  assetOpenId: string | null
  assetName: string | null
  tradeNo: string | null
  message: string | null
  createdAt: string
  paidAt: string | null
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
}

export interface Shop {
  /** e.g. http://127.0.0.1:3000 */
  url: string
  port: number
  app: Express
  /** The embedded sandbox; null with real Guanaitong. */
  sandbox: Sandbox | null
  orders: Map<string, Order>
  /** How many times onPaid / onPayFailed ran. */
  handled: { paid: number; failed: number }
  /** Notifications `findOrder` disagreed with (unknown order, other amount or buyer): answered `fail`, left for review. */
  mismatches: OrderMismatch[]
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

function publicAsset(asset: Asset) {
  return { asset_type: asset.asset_type, asset_open_id: asset.asset_open_id, name: asset.name, balance: asset.balance }
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
  const mismatches: OrderMismatch[] = []
  const buyerOpenId = options.buyerOpenId ?? DEMO_BUYER_OPEN_ID

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
    // The secure pattern: the buyer comes from the session, the amount and reason from the
    // server's own order, the asset from the employee's own list. The body only names them.
    preparePayment: (req, params) => {
      const employee = employeeOf(req)
      const order = orders.get(String(params.outer_trade_no ?? ''))
      if (!order || order.buyerOpenId !== employee.openId) throw refuse(404, '没有这个订单 No such order')
      if (order.status === 'paid') throw refuse(409, '订单已支付 This order is paid already')
      if (order.status === 'failed') throw refuse(409, '此订单支付失败，请新建订单 This order\'s payment failed: start a new order')
      const asset = assets.find((a) => a.asset_open_id === params.asset_open_id)
      if (!asset) throw refuse(400, '请选择您的一项资产 Choose one of your assets')
      // The demo's own balance; the sandbox's failing asset is let through to show Guanaitong's failure notice.
      const balanceFen = amountToFen(asset.balance)
      if (!asset.sandboxFails && balanceFen !== null && balanceFen < amountToFen(order.amount)!) {
        throw refuse(409, `余额不足 Not enough balance on ${asset.name}`)
      }
      order.assetOpenId = asset.asset_open_id
      order.assetName = asset.name
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
    findOrder: (outerTradeNo) => {
      const order = orders.get(outerTradeNo)
      return order ? { totalAmount: order.amount, buyerOpenId: order.buyerOpenId } : null
    },
    onMismatch: (mismatch) => {
      // A real shop alerts someone; the router has logged it with ORDER_MISMATCH.
      mismatches.push(mismatch)
    },
    onPaid: (payment) => {
      handled.paid += 1
      const order = orders.get(payment.outerTradeNo)!
      if (order.status === 'paid') return
      order.status = 'paid'
      order.tradeNo = payment.tradeNo
      order.paidAt = new Date().toISOString()
      order.message = null
      const asset = assets.find((a) => a.asset_open_id === order.assetOpenId)
      const balanceFen = asset ? amountToFen(asset.balance) : null
      if (asset && balanceFen !== null) asset.balance = fenToAmount(balanceFen - payment.totalFen)
      log('info', { outerTradeNo: order.id }, `[shop] order ${order.id} paid: trade_no ${payment.tradeNo}, ${payment.totalAmount}`)
    },
    onPayFailed: (notice) => {
      handled.failed += 1
      const order = orders.get(notice.outerTradeNo)
      if (!order || order.status === 'paid') return
      order.status = 'failed'
      order.message = '关爱通通知此次支付未成功 Guanaitong reported that the payment did not go through'
      log('info', { outerTradeNo: order.id }, `[shop] order ${order.id}: payment failed`)
    },
  }))

  app.get('/session', (req, res) => {
    const employee = employeeOf(req)
    res.json({ employee: { name: employee.name }, mode: sandbox ? 'sandbox' : 'guanaitong', assets: assets.map(publicAsset) })
  })

  let seq = 0
  app.post('/orders', (req, res) => {
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
    orders.set(order.id, order)
    res.status(201).json(order)
  })

  app.get('/orders/:id', (req, res) => {
    const order = orders.get(req.params.id)
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
    handled,
    mismatches,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await sandbox?.close()
    },
  }
}
