/**
 * Drivers for the two pools the SQL stores take: node-postgres and mysql2/promise. Neither package
 * is imported: the shop's pool is used as given, so the package loads without them.
 */
import type { EventEmitter } from 'node:events'
import type {
  MysqlConnectionLike, MysqlPoolLike, PgClientLike, PgPoolLike, SqlDriver, SqlResult, SqlTransaction,
} from '../../types'

type ErrorEvents = { on(e: 'error', l: (err: Error) => void): unknown; off(e: 'error', l: (err: Error) => void): unknown }

/** One pooled connection, as the two drivers differ in using it. */
interface Connection<Tx> {
  tx: Tx & ErrorEvents
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  run(statement: 'BEGIN' | 'COMMIT' | 'ROLLBACK'): Promise<void>
  /** Back to the pool; destroyed instead when `broken`. */
  release(broken: Error | undefined): void
}

/**
 * A transaction on a connection just taken from the pool. The connection goes back after COMMIT
 * or ROLLBACK, or is destroyed when either failed or the server dropped it meanwhile: a dropped
 * connection emits 'error', which, unheard, would crash the process.
 */
async function openTransaction<Tx>(conn: Connection<Tx>): Promise<SqlTransaction<Tx>> {
  let broken: Error | undefined
  const onError = (err: Error) => { broken ??= err }
  conn.tx.on('error', onError)
  const giveBack = (err?: unknown) => {
    conn.tx.off('error', onError)
    conn.release(err === undefined ? broken : err instanceof Error ? err : new Error(String(err)))
  }
  const run = async (statement: 'BEGIN' | 'COMMIT' | 'ROLLBACK') => {
    try {
      await conn.run(statement)
    } catch (err) {
      giveBack(err)
      throw err
    }
    if (statement !== 'BEGIN') giveBack()
  }
  await run('BEGIN')
  return { tx: conn.tx, query: conn.query, commit: () => run('COMMIT'), rollback: () => run('ROLLBACK') }
}

/** `?` placeholders as node-postgres wants them: `$1`, `$2`, … (the stores' SQL has no `?` elsewhere). */
const numbered = new Map<string, string>()
function pgText(sql: string): string {
  let text = numbered.get(sql)
  if (text === undefined) {
    let n = 0
    text = sql.replace(/\?/g, () => `$${++n}`)
    numbered.set(sql, text)
  }
  return text
}

const pgResult = (r: { rows: any[]; rowCount: number | null }): SqlResult => ({ rows: r.rows ?? [], affected: r.rowCount ?? 0 })

export function pgDriver<Tx extends PgClientLike>(pool: PgPoolLike<Tx>): SqlDriver<Tx> {
  // node-postgres emits an idle connection's error (the server restarted, or killed it) on the
  // pool, which has already dropped that connection: nothing is lost, but an 'error' event no one
  // hears crashes the process. A pool whose owner listens is left alone.
  const events = pool as Partial<EventEmitter>
  if (typeof events.listenerCount === 'function' && typeof events.on === 'function' && events.listenerCount('error') === 0) {
    events.on('error', () => {})
  }
  return {
    query: async (sql, params) => pgResult(await pool.query(pgText(sql), [...params])),
    begin: async () => {
      const client = await pool.connect()
      return openTransaction({
        tx: client,
        query: async (sql, params) => pgResult(await client.query(pgText(sql), [...params])),
        run: async (statement) => {
          const result = await client.query(statement)
          // PostgreSQL answers COMMIT of a transaction an error aborted with ROLLBACK, not an error.
          if (statement === 'COMMIT' && result.command !== 'COMMIT') {
            throw new Error(`COMMIT was answered ${result.command}: a statement in the transaction had failed, and it was rolled back`)
          }
        },
        release: (broken) => client.release(broken),
      })
    },
  }
}

function mysqlResult([rows]: [any, any]): SqlResult {
  return Array.isArray(rows) ? { rows, affected: 0 } : { rows: [], affected: Number(rows?.affectedRows ?? 0) }
}

export function mysqlDriver<Tx extends MysqlConnectionLike>(pool: MysqlPoolLike<Tx>): SqlDriver<Tx> {
  return {
    query: async (sql, params) => mysqlResult(await pool.query(sql, [...params])),
    begin: async () => {
      const conn = await pool.getConnection()
      const finish = { BEGIN: () => conn.beginTransaction(), COMMIT: () => conn.commit(), ROLLBACK: () => conn.rollback() }
      return openTransaction({
        tx: conn,
        query: async (sql, params) => mysqlResult(await conn.query(sql, [...params])),
        run: (statement) => finish[statement](),
        release: (broken) => (broken ? conn.destroy() : conn.release()),
      })
    },
  }
}
