// The SQL stores for the notify server (notify.js postgres | mysql): a PostgresStore or MysqlStore
// on the machine's database, the shop's own write for `onPaid`, and a count of every statement
// the pool sends. Loaded only for those two kinds, so the other notify servers stay as they were.
//
// The shop's write: onPaid INSERTs one row into a payments table through ctx.tx (the order
// number as primary key, Guanaitong's trade number, the amount in fen, the buyer, the time), in
// the store's transaction, so it commits with the done-marker or not at all.
//
// Counting: every statement a pooled connection sends is counted where the driver sends it
// (pg: a Client subclass given to the Pool; mysql2: each pooled connection's `query`, which
// beginTransaction/commit/rollback also go through). One statement is one round trip: neither
// driver pipelines here (pg sends the next query after ReadyForQuery; mysql2's query() formats
// values client-side, one COM_QUERY each). Connecting a pooled connection is not counted.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const POOL_MAX = Number(process.env.BENCH_SQL_POOL ?? 10)
const URLS = {
  postgres: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
}

/** What a statement is, from its text: the store's own steps and the shop's write. */
function kindOf(sql, settlements) {
  const head = sql.trimStart().slice(0, 6).toUpperCase()
  if (head === 'BEGIN' || head.startsWith('START')) return 'begin'
  if (head === 'COMMIT') return 'commit'
  if (head.startsWith('ROLLBA')) return 'rollback'
  if (!sql.includes(settlements)) return head === 'INSERT' ? 'shop insert' : `other ${head.trim()}`
  if (head === 'SELECT') return sql.includes('FOR UPDATE') ? 'lock' : 'read'
  if (head === 'INSERT') return 'insert marker'
  if (head === 'UPDATE') return sql.includes('done_at') ? 'done-marker' : 'count attempt'
  return `other ${head.trim()}`
}

/** CPU time (user + system) of a process from /proc, in µs; null when it is gone or there is no /proc. */
function cpuUsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10_000 // clock ticks of 10 ms (CLK_TCK 100)
  } catch {
    return null
  }
}

/**
 * The database's CPU time so far, as far as this server can see it: { source, cpuUs }, two
 * readings comparable when their source is the same. PostgreSQL: the backends of this pool's
 * connections (one process each; the last reading of one that exited is kept). MariaDB/MySQL:
 * the whole server process, threads of every client included (a restart changes the source).
 */
function databaseCpu(kind, backends) {
  if (kind === 'postgres') {
    let cpuUs = 0
    for (const [pid, last] of backends) {
      const now = cpuUsOf(pid)
      if (now !== null) backends.set(pid, now)
      cpuUs += now ?? last
    }
    return { source: 'postgres backends', cpuUs }
  }
  try {
    const pid = execFileSync('pgrep', ['-o', '-x', 'mariadbd|mysqld'], { encoding: 'utf8' }).trim()
    const cpuUs = pid ? cpuUsOf(pid) : null
    return cpuUs === null ? null : { source: `pid ${pid}`, cpuUs }
  } catch {
    return null
  }
}

/**
 * Sets up `kind` ('postgres' | 'mysql'). Resolves with { store, onPaid, statements,
 * databaseCpu(), close }, `statements` counting by kind; throws when the database or the store
 * is missing.
 */
export async function sqlSetup(gat, kind) {
  const suffix = `${process.pid}_${Date.now().toString(36)}`
  const settlements = `gatbench_settle_${suffix}`
  const payments = `gatbench_pay_${suffix}`
  const statements = {}
  const count = (sql) => {
    const name = kindOf(typeof sql === 'string' ? sql : sql?.text ?? sql?.sql ?? '', settlements)
    statements[name] = (statements[name] ?? 0) + 1
  }
  if (kind === 'postgres') {
    if (typeof gat.PostgresStore !== 'function') throw new Error('PostgresStore is not exported by dist/index.js')
    const { default: pg } = await import('pg')
    class CountingClient extends pg.Client {
      query(config, values, callback) {
        count(config)
        return super.query(config, values, callback)
      }
    }
    // Idle connections are kept a minute, as mysql2's pool keeps them: the scenarios' turns leave
    // each server idle longer than pg's default 10 s, which would reconnect at every round.
    const pool = new pg.Pool({ connectionString: URLS.postgres, max: POOL_MAX, idleTimeoutMillis: 60_000, Client: CountingClient })
    pool.on('error', () => {})
    const backends = new Map()
    pool.on('connect', (client) => backends.set(client.processID, cpuUsOf(client.processID) ?? 0))
    await pool.query(`CREATE TABLE ${payments} (outer_trade_no VARCHAR(64) PRIMARY KEY, trade_no VARCHAR(64) NOT NULL, ` +
      'total_fen BIGINT NOT NULL, buyer_open_id VARCHAR(64) NOT NULL, paid_at TIMESTAMPTZ NOT NULL DEFAULT now())')
    const insert = `INSERT INTO ${payments} (outer_trade_no, trade_no, total_fen, buyer_open_id) VALUES ($1, $2, $3, $4)`
    return {
      store: new gat.PostgresStore({ pool, table: settlements }),
      onPaid: (payment, req, ctx) => ctx.tx.query(insert, [payment.outerTradeNo, payment.tradeNo, payment.totalFen, payment.buyerOpenId]),
      statements,
      databaseCpu: () => databaseCpu(kind, backends),
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${payments}, ${settlements}, ${settlements}_unsettled`)
        await pool.end()
      },
    }
  }
  if (typeof gat.MysqlStore !== 'function') throw new Error('MysqlStore is not exported by dist/index.js')
  const { default: mysql } = await import('mysql2/promise')
  const pool = mysql.createPool({ uri: URLS.mysql, connectionLimit: POOL_MAX })
  // Every pooled connection, once connected: its query() carries pool.query's statements too.
  pool.pool.on('connection', (conn) => {
    const query = conn.query
    conn.query = function countedQuery(sql, values, callback) {
      count(sql)
      return query.call(this, sql, values, callback)
    }
  })
  await pool.query(`CREATE TABLE ${payments} (outer_trade_no VARCHAR(64) NOT NULL PRIMARY KEY, trade_no VARCHAR(64) NOT NULL, ` +
    'total_fen BIGINT NOT NULL, buyer_open_id VARCHAR(64) NOT NULL, paid_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB')
  const insert = `INSERT INTO ${payments} (outer_trade_no, trade_no, total_fen, buyer_open_id) VALUES (?, ?, ?, ?)`
  return {
    store: new gat.MysqlStore({ pool, table: settlements }),
    onPaid: (payment, req, ctx) => ctx.tx.query(insert, [payment.outerTradeNo, payment.tradeNo, payment.totalFen, payment.buyerOpenId]),
    statements,
    databaseCpu: () => databaseCpu(kind),
    close: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${payments}, ${settlements}, ${settlements}_unsettled`)
      await pool.end()
    },
  }
}
