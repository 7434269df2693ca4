/**
 * Where the example shop keeps its orders: in memory (the default), or in PostgreSQL
 * (`DATABASE_URL`), where the payment's update runs in the settlement's transaction (`ctx.tx`).
 */
import pg from 'pg'
import { amountToFen } from '../../src/index'

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

export interface OrderBook {
  add(order: Order): Promise<void>
  get(id: string): Promise<Order | undefined>
  /** Records the asset a pay is sent with. */
  chooseAsset(id: string, asset: { asset_open_id: string; name: string }): Promise<void>
  /**
   * Marks the order paid unless it is already; false when it was (or is unknown). `tx` is the
   * settlement's transaction (`ctx.tx`): with PostgreSQL the update commits with the store's
   * done-marker, or not at all.
   */
  markPaid(id: string, tradeNo: string, tx: unknown): Promise<boolean>
  /** Marks a pending order failed; false when it was not pending. */
  markFailed(id: string, message: string, tx: unknown): Promise<boolean>
  /** Fen paid so far with each asset, for the demo balances. */
  paidFenByAsset(): Promise<Map<string, number>>
  close(): Promise<void>
}

export function memoryOrders(orders: Map<string, Order>): OrderBook {
  return {
    add: async (order) => { orders.set(order.id, order) },
    get: async (id) => orders.get(id),
    chooseAsset: async (id, asset) => {
      const order = orders.get(id)
      if (order) Object.assign(order, { assetOpenId: asset.asset_open_id, assetName: asset.name })
    },
    markPaid: async (id, tradeNo) => {
      const order = orders.get(id)
      if (!order || order.status === 'paid') return false
      Object.assign(order, { status: 'paid', tradeNo, paidAt: new Date().toISOString(), message: null })
      return true
    },
    markFailed: async (id, message) => {
      const order = orders.get(id)
      if (!order || order.status !== 'pending') return false
      Object.assign(order, { status: 'failed', message })
      return true
    },
    paidFenByAsset: async () => {
      const paid = new Map<string, number>()
      for (const o of orders.values()) {
        if (o.status === 'paid' && o.assetOpenId) paid.set(o.assetOpenId, (paid.get(o.assetOpenId) ?? 0) + amountToFen(o.amount)!)
      }
      return paid
    },
    close: async () => {},
  }
}

const ORDERS_DDL = `CREATE TABLE IF NOT EXISTS orders (
  id VARCHAR(22) PRIMARY KEY,
  title TEXT NOT NULL,
  amount NUMERIC(12, 2) NOT NULL,
  buyer_open_id TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  asset_open_id TEXT,
  asset_name TEXT,
  trade_no TEXT,
  message TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  paid_at TIMESTAMPTZ
)`

const iso = (d: Date | null) => (d ? d.toISOString() : null)

function orderOf(row: Record<string, any>): Order {
  return {
    id: row.id, title: row.title, amount: row.amount, buyerOpenId: row.buyer_open_id, status: row.status,
    assetOpenId: row.asset_open_id, assetName: row.asset_name, tradeNo: row.trade_no, message: row.message,
    createdAt: iso(row.created_at)!, paidAt: iso(row.paid_at),
  }
}

/** The settlement's transaction; a write outside it would commit apart from the done-marker. */
function inTransaction(tx: unknown): pg.PoolClient {
  if (!tx) throw new Error('no settlement transaction (ctx.tx): the router is not using the PostgresStore')
  return tx as pg.PoolClient
}

/** Orders in the table `orders` (created if missing), read and written through `pool`. */
export async function postgresOrders(pool: pg.Pool): Promise<OrderBook> {
  await pool.query(ORDERS_DDL)
  return {
    add: async (o) => {
      await pool.query('INSERT INTO orders (id, title, amount, buyer_open_id, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [o.id, o.title, o.amount, o.buyerOpenId, o.status, o.createdAt])
    },
    get: async (id) => {
      const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [id])
      return rows.length ? orderOf(rows[0]) : undefined
    },
    chooseAsset: async (id, asset) => {
      await pool.query('UPDATE orders SET asset_open_id = $2, asset_name = $3 WHERE id = $1', [id, asset.asset_open_id, asset.name])
    },
    markPaid: async (id, tradeNo, tx) => {
      const { rowCount } = await inTransaction(tx).query(
        "UPDATE orders SET status = 'paid', trade_no = $2, paid_at = now(), message = NULL WHERE id = $1 AND status <> 'paid'", [id, tradeNo])
      return rowCount === 1
    },
    markFailed: async (id, message, tx) => {
      const { rowCount } = await inTransaction(tx).query(
        "UPDATE orders SET status = 'failed', message = $2 WHERE id = $1 AND status = 'pending'", [id, message])
      return rowCount === 1
    },
    paidFenByAsset: async () => {
      const { rows } = await pool.query(
        "SELECT asset_open_id, (SUM(amount) * 100)::bigint AS fen FROM orders WHERE status = 'paid' AND asset_open_id IS NOT NULL GROUP BY asset_open_id")
      return new Map(rows.map((r) => [r.asset_open_id as string, Number(r.fen)]))
    },
    close: () => pool.end(),
  }
}
