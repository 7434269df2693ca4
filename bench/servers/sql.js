// The SQL side of the bench servers: a pool on the machine's PostgreSQL or MariaDB/MySQL, the shop's
// payments table and its one write, the round trips the pool makes (wire.js) and the database's CPU.
// Used by the notify server with a PostgresStore / MysqlStore (`sqlStore`) and by the hand-written
// handlers the stores are compared with (handwritten.js, `sqlDatabase`).
//
// The shop's write: one row into a payments table (the order number as primary key, Guanaitong's
// trade number, the amount in fen, the buyer, the time). With a store, onPaid sends it through ctx.tx,
// in the store's transaction; the hand-written handler sends it as INSERT … ON CONFLICT DO NOTHING /
// INSERT IGNORE in a transaction of its own.
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { countRoundTrips } from './wire.js'

const POOL_MAX = Number(process.env.BENCH_SQL_POOL ?? 10)
const URLS = {
  postgres: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
}

/** utime + stime of a /proc stat line, in µs (clock ticks of 10 ms, CLK_TCK 100); null when unreadable. */
export function cpuUsOf(path, withChildren = false) {
  try {
    const stat = readFileSync(path, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) + (withChildren ? Number(fields[13]) + Number(fields[14]) : 0)
    return ticks * 10_000
  } catch {
    return null
  }
}

const parentOf = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return null
  }
}

/**
 * PostgreSQL's CPU so far, all processes: the postmaster with its exited children (cutime, cstime:
 * reaped backends, other clients' included) and its live children (backends, WAL writer, checkpointer…).
 */
function postgresWholeCpu(postmaster) {
  let cpuUs = cpuUsOf(`/proc/${postmaster}/stat`, true)
  if (cpuUs === null) return null
  for (const pid of readdirSync('/proc')) {
    if (/^\d+$/.test(pid) && parentOf(pid) === postmaster) cpuUs += cpuUsOf(`/proc/${pid}/stat`) ?? 0
  }
  return cpuUs
}

/** A label for one SQL text in the round-trip breakdown: its statements' verbs and which table they touch. */
function labeller(suffix) {
  const statement = (sql) => {
    // The first data verb (`/*M! SET STATEMENT … FOR */ INSERT …` is an INSERT), else the first word.
    const verb = (/\b(SELECT|INSERT|UPDATE|DELETE|REPLACE|CALL)\b/i.exec(sql)?.[1] ?? sql.split(/\s/, 1)[0]).toUpperCase()
    const table = sql.includes(`${suffix}_pay`) ? ' shop' : sql.includes(`${suffix}_settle_unsettled`) ? ' ledger'
      : sql.includes(`${suffix}_settle`) ? ' store' : ''
    return `${verb}${table}${/FOR\s+UPDATE/i.test(sql) ? ' FOR UPDATE' : ''}`
  }
  return (text) => text.split(';').map((s) => s.trim()).filter(Boolean).map(statement).join('; ')
}

/**
 * A pool on `kind` ('postgres' | 'mysql'), the shop's payments table, and the measuring: resolves
 * with { pool, table, payments, insertPayment(queryable, values), counter, databaseCpu(), close() }.
 * `table` is a name for the store's settlement table; everything the store derives from it (the
 * ledger table, routines) carries the same suffix and is dropped by close(). Throws when the
 * database is missing.
 */
export async function sqlDatabase(kind) {
  const suffix = `gb${process.pid}_${Date.now().toString(36)}`
  const table = `${suffix}_settle`
  const payments = `${suffix}_pay`
  const port = Number(new URL(URLS[kind]).port || (kind === 'postgres' ? 5432 : 3306))
  const counter = countRoundTrips(port, kind, labeller(suffix))
  const columns = 'outer_trade_no VARCHAR(64) NOT NULL PRIMARY KEY, trade_no VARCHAR(64) NOT NULL, total_fen BIGINT NOT NULL, buyer_open_id VARCHAR(64) NOT NULL'

  if (kind === 'postgres') {
    const { default: pg } = await import('pg')
    // Idle connections are kept a minute, as mysql2's pool keeps them: the scenarios' turns leave
    // each server idle longer than pg's default 10 s, which would reconnect at every round.
    const pool = new pg.Pool({ connectionString: URLS.postgres, max: POOL_MAX, idleTimeoutMillis: 60_000 })
    pool.on('error', () => {})
    // The backends of this pool's connections (one process each; an exited one's last reading is kept).
    const backends = new Map()
    pool.on('connect', (client) => backends.set(client.processID, cpuUsOf(`/proc/${client.processID}/stat`) ?? 0))
    await pool.query(`CREATE TABLE ${payments} (${columns}, paid_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const [{ pid }] = (await pool.query('SELECT pg_backend_pid() AS pid')).rows
    const postmaster = parentOf(pid)
    const insert = `INSERT INTO ${payments} (outer_trade_no, trade_no, total_fen, buyer_open_id) VALUES ($1, $2, $3, $4)`
    return {
      pool,
      table,
      payments,
      insertPayment: (queryable, values, ignoreDuplicate = false) => queryable.query(ignoreDuplicate ? `${insert} ON CONFLICT DO NOTHING` : insert, values),
      counter,
      databaseCpu() {
        let own = 0
        for (const [backend, last] of backends) {
          const now = cpuUsOf(`/proc/${backend}/stat`)
          if (now !== null) backends.set(backend, now)
          own += now ?? last
        }
        const whole = postmaster ? postgresWholeCpu(postmaster) : null
        return { source: `postgres ${postmaster}`, ownUs: own, ...(whole === null ? {} : { wholeUs: whole }) }
      },
      async close() {
        const { rows } = await pool.query('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND strpos(table_name, $1) > 0', [suffix])
        if (rows.length) await pool.query(`DROP TABLE IF EXISTS ${rows.map((r) => `"${r.table_name}"`).join(', ')} CASCADE`)
        const routines = await pool.query("SELECT p.oid::regprocedure AS sig, p.prokind FROM pg_proc p WHERE strpos(p.proname, $1) > 0 AND p.pronamespace = current_schema()::regnamespace", [suffix])
        for (const r of routines.rows) await pool.query(`DROP ${r.prokind === 'p' ? 'PROCEDURE' : 'FUNCTION'} IF EXISTS ${r.sig} CASCADE`)
        await pool.end()
      },
    }
  }

  const { default: mysql } = await import('mysql2/promise')
  const pool = mysql.createPool({ uri: URLS.mysql, connectionLimit: POOL_MAX })
  // The server's threads serving this pool's connections (MariaDB's processlist has their TID).
  const threads = new Map()
  const mariadbd = (() => {
    try {
      return Number(execFileSync('pgrep', ['-o', '-x', 'mariadbd|mysqld'], { encoding: 'utf8' }).trim()) || null
    } catch {
      return null
    }
  })()
  pool.pool.on('connection', (conn) => {
    conn.query('SELECT TID AS tid FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()', (err, rows) => {
      const tid = !err && rows[0]?.tid
      if (tid && mariadbd) threads.set(tid, cpuUsOf(`/proc/${mariadbd}/task/${tid}/stat`) ?? 0)
    })
  })
  await pool.query(`CREATE TABLE ${payments} (${columns}, paid_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`)
  const insert = `INTO ${payments} (outer_trade_no, trade_no, total_fen, buyer_open_id) VALUES (?, ?, ?, ?)`
  return {
    pool,
    table,
    payments,
    insertPayment: (queryable, values, ignoreDuplicate = false) => queryable.query(`INSERT ${ignoreDuplicate ? 'IGNORE ' : ''}${insert}`, values),
    counter,
    databaseCpu() {
      if (!mariadbd) return null
      let own = 0
      for (const [tid, last] of threads) {
        const now = cpuUsOf(`/proc/${mariadbd}/task/${tid}/stat`)
        if (now !== null) threads.set(tid, now)
        own += now ?? last
      }
      const whole = cpuUsOf(`/proc/${mariadbd}/stat`)
      return { source: `mariadbd ${mariadbd}`, ...(threads.size ? { ownUs: own } : {}), ...(whole === null ? {} : { wholeUs: whole }) }
    },
    async close() {
      const [tables] = await pool.query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND INSTR(table_name, ?) > 0', [suffix])
      if (tables.length) await pool.query(`DROP TABLE IF EXISTS ${tables.map((t) => `\`${t.name}\``).join(', ')}`)
      const [routines] = await pool.query('SELECT routine_name AS name, routine_type AS type FROM information_schema.routines WHERE routine_schema = DATABASE() AND INSTR(routine_name, ?) > 0', [suffix])
      for (const r of routines) await pool.query(`DROP ${r.type} IF EXISTS \`${r.name}\``)
      await pool.end()
    },
  }
}

/**
 * A PostgresStore or MysqlStore on `sqlDatabase(kind)`, and an onPaid writing the shop's row through
 * ctx.tx. Resolves with the database's fields plus { store, onPaid }; throws when the database or
 * the store is missing.
 */
export async function sqlStore(gat, kind) {
  const Store = kind === 'postgres' ? gat.PostgresStore : gat.MysqlStore
  if (typeof Store !== 'function') throw new Error(`${kind === 'postgres' ? 'PostgresStore' : 'MysqlStore'} is not exported by dist/index.js`)
  const db = await sqlDatabase(kind)
  return {
    ...db,
    store: new Store({ pool: db.pool, table: db.table }),
    onPaid: (payment, req, ctx) => db.insertPayment(ctx.tx, [payment.outerTradeNo, payment.tradeNo, payment.totalFen, payment.buyerOpenId]),
  }
}
