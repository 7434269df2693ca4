/** The SQL stores' contracts: the driver (node-postgres, mysql2, or a shop's own) and the stores' options. */
/** A row as a driver returns it: column name → value. */
export type SqlRow = Record<string, unknown>

/** What one statement returned: its rows (none for an UPDATE or DELETE) and how many rows it changed. */
export interface SqlResult {
  /** The rows a SELECT returned; empty for other statements. */
  rows: SqlRow[]
  /** Rows an INSERT, UPDATE or DELETE changed (node-postgres `rowCount`, mysql2 `affectedRows`); 0 for a SELECT. */
  affected: number
}

/**
 * One open transaction on one connection, as a `SqlDriver` hands it to a SQL store. The store
 * calls `query` any number of times, then exactly one of `commit` or `rollback`; each of those
 * gives the connection back (a connection whose COMMIT or ROLLBACK failed must be destroyed, not
 * reused: it may still hold the transaction's locks).
 */
export interface SqlTransaction<Tx> {
  /** What the shop's handler receives as `ctx.tx`: the transaction it writes through. */
  readonly tx: Tx
  /** Runs one statement in the transaction. Placeholders are `?`, one per value in `params`. */
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  /** COMMITs, then gives the connection back. Rejects when the COMMIT did not succeed. */
  commit(): Promise<void>
  /** ROLLBACKs, then gives the connection back. */
  rollback(): Promise<void>
}

/**
 * How a SQL store talks to its database: statements outside a transaction, and transactions on
 * a connection of their own. `PostgresStore` and `MysqlStore` build one from a node-postgres or
 * mysql2 pool; write one to use Knex or another query builder (README, "Other drivers").
 */
export interface SqlDriver<Tx> {
  /** Runs one statement on its own (autocommit), on any connection. Placeholders are `?`. */
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  /** Takes a connection and starts a transaction on it. */
  begin(): Promise<SqlTransaction<Tx>>
}

/** The part of a node-postgres `PoolClient` the store uses. */
export interface PgClientLike {
  query(text: string, values?: any[]): Promise<{ rows: any[]; rowCount: number | null; command: string }>
  release(err?: Error | boolean): void
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
}

/** The part of a node-postgres `Pool` the store uses: `new Pool({ connectionString })`. */
export interface PgPoolLike<Tx extends PgClientLike> {
  connect(): Promise<Tx>
  query(text: string, values?: any[]): Promise<{ rows: any[]; rowCount: number | null }>
  /** Callers waiting for a connection (pg-pool): while there are any, no connection is parked (drivers.ts, PgSessions). */
  readonly waitingCount?: number
}

/** The part of a mysql2 `PoolConnection` (from `mysql2/promise`) the store uses. */
export interface MysqlConnectionLike {
  query(sql: string, values?: any): Promise<[any, any]>
  beginTransaction(): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
  release(): void
  destroy(): void
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
}

/** The part of a mysql2 promise `Pool` the store uses: `mysql.createPool(url)` from `mysql2/promise`. */
export interface MysqlPoolLike<Tx extends MysqlConnectionLike> {
  getConnection(): Promise<Tx>
  query(sql: string, values?: any): Promise<[any, any]>
}

/** Options common to `PostgresStore` and `MysqlStore`. */
export interface SqlStoreOptions {
  /**
   * The table of settlement markers. Default "gat_settlements". Letters, digits and `_`, with an
   * optional schema (`payments.gat_settlements`). `postgresSchema(table)` / `mysqlSchema(table)` give its DDL.
   */
  table?: string
  /** How long a done-marker is kept, in ms. Default 25 h: Guanaitong retries for 24 h. */
  retentionMs?: number
  /**
   * How often the store deletes markers older than `retentionMs`, ms: at most once per this
   * interval, after a settlement, without delaying it. Default 600 000 (10 minutes); `false` never
   * (call `purge()` from your own scheduler).
   */
  purgeEveryMs?: number | false
  /** Create the table and its index on first use when missing. Default true; `false` if your migrations own it. */
  createTable?: boolean
}

/** Options of `new PostgresStore()`: a node-postgres pool, or a driver of your own. */
export type PostgresStoreOptions<Tx> = SqlStoreOptions & (
  | { /** A node-postgres `Pool`; the store neither creates nor ends it. `ctx.tx` is its `PoolClient`. */ pool: { connect(): Promise<Tx> } & PgPoolLike<PgClientLike>; driver?: never }
  | { /** A driver of your own (Knex, …); `ctx.tx` is its `tx`. */ driver: SqlDriver<Tx>; pool?: never }
)

/** Options of `new MysqlStore()`: a mysql2 promise pool, or a driver of your own. */
export type MysqlStoreOptions<Tx> = SqlStoreOptions & (
  | { /** A `mysql2/promise` pool; the store neither creates nor ends it. `ctx.tx` is its `PoolConnection`. */ pool: { getConnection(): Promise<Tx> } & MysqlPoolLike<MysqlConnectionLike>; driver?: never }
  | { /** A driver of your own (Knex, …); `ctx.tx` is its `tx`. */ driver: SqlDriver<Tx>; pool?: never }
)
