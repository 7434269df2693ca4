/**
 * Drivers for the two pools the SQL stores take: node-postgres and mysql2/promise. Neither package
 * is imported: the shop's pool is used as given, so the package loads without them.
 */
import type { EventEmitter } from 'node:events'
import { errorMessage, GuanaitongError, ParamError } from '../../kernel/errors'
import type { MysqlConnectionLike, MysqlPoolLike, PgClientLike, PgPoolLike, SqlDriver, SqlResult, SqlTransaction } from './types'

/**
 * A pooled connection the store drives itself, for the package's own drivers: it sends its own
 * BEGIN and COMMIT inside a script, so a settlement takes two round trips and one COMMIT (sql-store.ts).
 */
export interface SqlSession<Tx> {
  readonly tx: Tx
  /** One round trip: `sql` (one or several statements, `?` for each of `params`); every result set, in order. */
  script(sql: string, params: readonly unknown[]): Promise<SqlResult[]>
  /** Back to the pool; destroyed instead when `broken` or when the server dropped it meanwhile. */
  release(broken?: unknown): void
}

/** A driver that also hands out sessions: `pgDriver` and `mysqlDriver`. */
export interface SessionDriver<Tx> extends SqlDriver<Tx> {
  session(): Promise<SqlSession<Tx>>
}

export function hasSessions<Tx>(driver: SqlDriver<Tx>): driver is SessionDriver<Tx> {
  return typeof (driver as Partial<SessionDriver<Tx>>).session === 'function'
}

type ErrorEvents = { on(e: 'error', l: (err: Error) => void): unknown; off(e: 'error', l: (err: Error) => void): unknown }

/** One pooled connection, as the two drivers differ in using it. */
interface Connection<Tx> {
  tx: Tx & ErrorEvents
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  run(statement: 'BEGIN' | 'COMMIT' | 'ROLLBACK'): Promise<void>
  /** Back to the pool; destroyed instead when `broken`. */
  release(broken: Error | undefined): void
}

/** What a failed statement threw, as the Error a pool's release takes to destroy the connection (it may be anything). */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new GuanaitongError(`the connection failed: ${errorMessage(err)}`, 'STORE_FAILED', { cause: err })
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
    conn.release(err === undefined ? broken : asError(err))
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

/** A session over `conn`: its 'error' event heard until it goes back, and a dropped connection destroyed. */
function openSession<Tx>(conn: Pick<Connection<Tx>, 'tx' | 'release'>, script: SqlSession<Tx>['script']): SqlSession<Tx> {
  let broken: Error | undefined
  const onError = (err: Error) => { broken ??= err }
  conn.tx.on('error', onError)
  return {
    tx: conn.tx,
    script,
    release: (err?: unknown) => {
      conn.tx.off('error', onError)
      conn.release(err === undefined ? broken : asError(err))
    },
  }
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

/**
 * `sql` with each `?` replaced by its value as a literal, escaped by the client's own
 * `escapeLiteral`, for a simple-protocol query (the only one that runs several statements).
 * PostgreSQL text cannot hold NUL, and a NUL would end the query message early: refused.
 */
function pgInline(sql: string, params: readonly unknown[], escapeLiteral: (s: string) => string): string {
  let i = 0
  return sql.replace(/\?/g, () => {
    const value = params[i++]
    if (value === null || value === undefined) return 'NULL'
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
    if (typeof value === 'string') {
      if (value.includes('\0')) throw new ParamError('value', 'cannot hold NUL (U+0000) in PostgreSQL text')
      return escapeLiteral(value)
    }
    throw new ParamError('script value', `must be a string, a safe integer or null; got ${typeof value}`)
  })
}

type PgEscaping = { escapeLiteral?: (s: string) => string }

export function pgDriver<Tx extends PgClientLike>(pool: PgPoolLike<Tx>): SqlDriver<Tx> | SessionDriver<Tx> {
  // node-postgres emits an idle connection's error (the server restarted, or killed it) on the
  // pool, which has already dropped that connection: nothing is lost, but an 'error' event no one
  // hears crashes the process. A pool whose owner listens is left alone.
  const events = pool as Partial<EventEmitter>
  if (typeof events.listenerCount === 'function' && typeof events.on === 'function' && events.listenerCount('error') === 0) {
    events.on('error', () => {})
  }
  const driver: SqlDriver<Tx> = {
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
            throw new GuanaitongError(`COMMIT was answered ${result.command}: a statement in the transaction had failed, and it was rolled back`, 'STORE_FAILED')
          }
        },
        release: (broken) => client.release(broken),
      })
    },
  }
  // A pg older than escapeLiteral (8.x has it) keeps the statement-by-statement path.
  if (typeof (pg(pool) as PgEscaping).escapeLiteral !== 'function') return driver
  return {
    ...driver,
    session: async () => {
      const client = await pool.connect()
      const escape = (literal: string) => (client as PgEscaping).escapeLiteral!(literal)
      return openSession({ tx: client, release: (broken) => client.release(broken) }, async (sql, params) => {
        const raw: any = await client.query(pgInline(sql, params, escape))
        return (Array.isArray(raw) ? raw : [raw]).map((r) => ({ ...pgResult(r), command: r.command }))
      })
    },
  }
}

/** The client class behind a pool, whose prototype carries `escapeLiteral` (pg ≥ 8.8). */
function pg(pool: unknown): unknown {
  return (pool as { Client?: { prototype: unknown } }).Client?.prototype ?? {}
}

function mysqlResult([rows]: [any, any]): SqlResult {
  return Array.isArray(rows) ? { rows, affected: 0 } : { rows: [], affected: Number(rows?.affectedRows ?? 0) }
}

export function mysqlDriver<Tx extends MysqlConnectionLike>(pool: MysqlPoolLike<Tx>): SessionDriver<Tx> {
  return {
    session: async () => {
      const conn = await pool.getConnection()
      return openSession({ tx: conn, release: (broken) => (broken ? conn.destroy() : conn.release()) },
        // A CALL answers its procedure's result sets, then a header: mysql2's values are escaped by its own escape().
        async (sql, params) => {
          const [rows] = await conn.query(sql, [...params])
          const sets: unknown[] = Array.isArray(rows) && rows.some(Array.isArray) ? rows : [rows]
          return sets.map((set) => mysqlResult([set, undefined]))
        })
    },
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
