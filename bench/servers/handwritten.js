// What a shop would write by hand instead of the router and a SQL store: the anchor of the
// notify-postgres and notify-mysql rows. Express 5 and express.urlencoded(), no signature check,
// then the shop's payment row written once however often Guanaitong repeats the notification:
//   `node handwritten.js postgres`  BEGIN; INSERT … ON CONFLICT DO NOTHING; COMMIT
//   `node handwritten.js mysql`     START TRANSACTION; INSERT IGNORE …; COMMIT
// on the same pool, table and database as the store's server (sql.js), answering `success` once
// committed. Prints `SKIP <why>` when the database is missing.
import express from 'express'
import { announce } from './control.js'
import { sqlDatabase } from './sql.js'

const kind = process.argv[2]
let db
try {
  db = await sqlDatabase(kind)
} catch (err) {
  process.stdout.write(`SKIP ${kind}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(0)
}

/** '128.50' → 12850, in integers (the amount is a decimal string with at most 2 decimals). */
const fen = (amount) => {
  const [yuan, cents = ''] = amount.split('.')
  return Number(yuan) * 100 + Number(cents.padEnd(2, '0'))
}

const begin = kind === 'postgres' ? 'BEGIN' : 'START TRANSACTION'
const connect = kind === 'postgres' ? () => db.pool.connect() : () => db.pool.getConnection()

const app = express()
app.use(express.urlencoded())
app.post('/gat/notify', async (req, res) => {
  const { outer_trade_no: order, trade_no: trade, total_amount: amount, buyer_open_id: buyer } = req.body
  const conn = await connect()
  try {
    await conn.query(begin)
    await db.insertPayment(conn, [order, trade, fen(amount), buyer], true)
    await conn.query('COMMIT')
    conn.release()
    res.send('success')
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => {})
    conn.release()
    console.error(err)
    res.status(500).send('fail')
  }
})

const server = app.listen(0, '127.0.0.1', () => announce(server, {
  report: () => ({ roundTrips: db.counter.snapshot(), database: db.databaseCpu() }),
  close: () => db.close(),
  lastWriteAt: () => db.counter.lastWriteAt,
}))
