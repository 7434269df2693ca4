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
  /**
   * Gives back a session whose transaction wrote nothing (a claim answered done or busy) without
   * waiting for its ROLLBACK: the pg driver sends it first in the next session's script, or on its
   * own after `PARK_MS`, so that a duplicate costs one round trip. Missing where no transaction
   * is left open (mysql2: the claim procedure starts none for them).
   */
  park?(): void
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
  const held = hold(conn)
  const run = async (statement: 'BEGIN' | 'COMMIT' | 'ROLLBACK') => {
    try {
      await conn.run(statement)
    } catch (err) {
      held.release(err)
      throw err
    }
    if (statement !== 'BEGIN') held.release()
  }
  await run('BEGIN')
  return { tx: conn.tx, query: conn.query, commit: () => run('COMMIT'), rollback: () => run('ROLLBACK') }
}

/** A pooled connection's 'error' event heard until it goes back, and a dropped connection destroyed. */
interface Held<Tx> {
  tx: Tx
  /** Whether the server dropped the connection meanwhile. */
  broken(): boolean
  release(err?: unknown): void
}

function hold<Tx>(conn: Pick<Connection<Tx>, 'tx' | 'release'>): Held<Tx> {
  let broken: Error | undefined
  const onError = (err: Error) => { broken ??= err }
  conn.tx.on('error', onError)
  return {
    tx: conn.tx,
    broken: () => broken !== undefined,
    release: (err?: unknown) => {
      conn.tx.off('error', onError)
      conn.release(err === undefined ? broken : asError(err))
    },
  }
}

function openSession<Tx>(held: Held<Tx>, script: SqlSession<Tx>['script'], park?: () => void): SqlSession<Tx> {
  return park ? { tx: held.tx, script, release: held.release, park } : { tx: held.tx, script, release: held.release }
}

/**
 * How long a parked pg connection waits for the next settlement to send its ROLLBACK: under load
 * the next claim comes sooner and carries it; when none comes, the connection is rolled back and
 * pooled, so that none stays idle in a transaction, or out of the pool, for longer.
 */
export const PARK_MS = 5

/** A connection for a session, and whether its first script must begin with the ROLLBACK of a parked transaction. */
interface Taken<Tx> {
  held: Held<Tx>
  rollBackFirst: boolean
}

/**
 * The pg driver's connections for scripts. A claim answered done or busy leaves open a
 * transaction that wrote nothing; its connection is parked instead of rolled back, and the next
 * session takes it, its first script beginning with ROLLBACK: a duplicate's one round trip.
 * Sessions beyond the pool's `max` wait here, first come first served, so that a parked
 * connection goes straight to the oldest. While anyone else waits for the pool (pg-pool's
 * `waitingCount`: the shop's own queries, the store's statement path), a connection is rolled
 * back and released instead, so the store never keeps the pool from them. A parked connection
 * no session took within PARK_MS is rolled back and released; one the server dropped meanwhile
 * is destroyed instead of taken.
 */
class PgSessions<Tx extends PgClientLike> {
  private readonly parked: Held<Tx>[] = []
  private readonly waiting: Array<{ resolve: (taken: Taken<Tx>) => void; reject: (err: unknown) => void }> = []
  /** Connections held or being taken from the pool, parked ones included: at most `limit`. */
  private active = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly pool: PgPoolLike<Tx>, private readonly limit: number) {}

  take(): Promise<Taken<Tx>> {
    for (let held = this.parked.pop(); held; held = this.parked.pop()) {
      if (!held.broken()) return Promise.resolve({ held, rollBackFirst: true })
      held.release()
    }
    if (this.active < this.limit) return this.connect()
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  park(held: Held<Tx>): void {
    if (held.broken()) return held.release()
    if ((this.pool.waitingCount ?? 0) > 0) return rollBack(held)
    const next = this.waiting.shift()
    if (next) return next.resolve({ held, rollBackFirst: true })
    this.parked.push(held)
    this.timer ??= setTimeout(() => this.rollBackParked(), PARK_MS)
  }

  private async connect(): Promise<Taken<Tx>> {
    this.active++
    let client: Tx
    try {
      client = await this.pool.connect()
    } catch (err) {
      this.gone()
      throw err
    }
    return { held: hold({ tx: client, release: (broken) => { client.release(broken); this.gone() } }), rollBackFirst: false }
  }

  /** A connection went back to the pool (or was destroyed): the oldest waiting session takes its place. */
  private gone(): void {
    this.active--
    const next = this.waiting.shift()
    if (next) this.connect().then(next.resolve, next.reject)
  }

  private rollBackParked(): void {
    this.timer = undefined
    for (const held of this.parked.splice(0)) rollBack(held)
  }
}

/** ROLLBACK, then back to the pool; destroyed when the ROLLBACK failed, as it may still hold locks. */
function rollBack<Tx extends PgClientLike>(held: Held<Tx>): void {
  held.tx.query('ROLLBACK').then(() => held.release(), (err: unknown) => held.release(err))
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
  // pg-pool's own limit (10 unless set): sessions beyond it wait in PgSessions, where a parked
  // connection can reach them.
  const sessions = new PgSessions(pool, (pool as { options?: { max?: number } }).options?.max ?? Infinity)
  return {
    ...driver,
    session: async () => {
      const { held, rollBackFirst } = await sessions.take()
      const escape = (literal: string) => (held.tx as PgEscaping).escapeLiteral!(literal)
      // A parked connection's ROLLBACK goes first, in the same round trip; its result is dropped.
      let first = rollBackFirst ? 1 : 0
      return openSession(held, async (sql, params) => {
        const text = pgInline(sql, params, escape)
        const skip = first
        first = 0
        const raw: any = await held.tx.query(skip ? `ROLLBACK; ${text}` : text)
        return (Array.isArray(raw) ? raw : [raw]).slice(skip).map((r) => ({ ...pgResult(r), command: r.command }))
      }, () => sessions.park(held))
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
      return openSession(hold({ tx: conn, release: (broken) => (broken ? conn.destroy() : conn.release()) }),
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
