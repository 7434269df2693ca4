/**
 * The two databases the SQL stores are tested on, described once: their pools, the shop's own
 * table `onPaid` writes to, and the server-side handles the tests need (kill a connection, list
 * tables). Every SQL test file iterates over `sqlTargets()`.
 */
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MysqlStore, PostgresStore } from '../../src/stores'
import { mysqlDriver, pgDriver } from '../../src/stores/sql/drivers'
import type { TransactionalStore } from '../../src/kernel/types'
import type { SqlDriver, SqlStoreOptions } from '../../src/stores/sql/types'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** A table name no other run uses: a purge in one suite must not delete another's markers. */
export function uniqueTable(label: string): string {
  return `gat_${label}_${randomBytes(4).toString('hex')}`
}

/**
 * Under Stryker a pool is never ended: its mocha runner loads the test files once and runs them
 * again for every mutant, so a pool a file makes when it loads and ends in an `after` hook would
 * fail every later run ("Cannot use a pool after calling end on the pool", mysql2's "Pool is
 * closed."), and Stryker would count each such failure as a killed mutant whatever the mutant did.
 * The pools end with the worker process. (A pool made inside a test is then left open once per
 * run: the files of stryker.config.mjs's parts make theirs when they load.)
 */
const UNDER_STRYKER = process.env.STRYKER_MUTATOR_WORKER !== undefined

function keptOpen<P extends { end(): Promise<void> }>(pool: P): P {
  if (UNDER_STRYKER) Object.assign(pool, { end: async () => {} })
  return pool
}

export function pgPool(max = 10, url = POSTGRES_URL): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max })
  // An idle client the server dropped (a restart) emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => {})
  return keptOpen(pool)
}

export function mysqlPool(max = 10, url = MYSQL_URL): mysql.Pool {
  return keptOpen(mysql.createPool({ uri: url, connectionLimit: max }))
}

/** What drops a store's schema: its two tables and the routines of every version. */
export function dropSchemaStatements(kind: SqlKind, table: string): string[] {
  const routines = kind === 'postgres' ? ['claim_v2'].map((name) => `DROP FUNCTION IF EXISTS ${table}_${name}`)
    : ['claim_v1', 'finish_v1', 'claim_v2', 'finish_v2'].map((name) => `DROP PROCEDURE IF EXISTS ${table}_${name}`)
  return [`DROP TABLE IF EXISTS ${table}, ${table}_unsettled`, ...routines]
}

/** One row of the shop's table: the payment it was written for, and by which channel (when told). */
export interface ShopRow {
  id: string
  source: string | null
}

/** The shop's own table, where `onPaid` writes one row per payment through `ctx.tx`. */
export interface ShopTable {
  name: string
  write(tx: unknown, id: string, source?: string): Promise<unknown>
  count(id: string): Promise<number>
  /** Every row, for the tallies of a whole run. */
  rows(): Promise<ShopRow[]>
  drop(): Promise<void>
}

/** Which database a SQL store runs on. */
export type SqlKind = 'postgres' | 'mysql'
export const SQL_KINDS: readonly SqlKind[] = ['postgres', 'mysql']

/** A store over a pool of its own that has no 'error' listener, and a way to kill that pool's idle connections. */
export interface BareStore {
  store: TransactionalStore
  killIdle(): Promise<number>
  end(): Promise<void>
}

export interface SqlTarget {
  kind: SqlKind
  /** The store class's name. */
  name: 'PostgresStore' | 'MysqlStore'
  /** A store over the shared pool (or `url`'s, for an unreachable database), or over `options.driver`. */
  store(options: SqlStoreOptions & { table: string; driver?: SqlDriver<unknown> }, url?: string): TransactionalStore
  /** The package's own driver over the shared pool. */
  driver(): SqlDriver<unknown>
  /** The shop table (a new one by default); `create: false` for a table another process made. */
  shop(name?: string, create?: boolean): Promise<ShopTable>
  /** How many of these settlement keys carry a done-marker in the store's table. */
  doneMarkers(table: string, keys: readonly string[]): Promise<number>
  /** Runs one statement through a handler's `tx`. */
  run(tx: unknown, sql: string): Promise<unknown>
  /** Kills the connection behind `tx` on the server, from another connection. */
  kill(tx: unknown): Promise<unknown>
  exists(table: string): Promise<boolean>
  /** Drops a store's table and its ledger table. */
  drop(table: string): Promise<unknown>
  bare(table: string): BareStore
  /** Where nothing listens. */
  unreachableUrl: string
  end(): Promise<void>
}

function postgresTarget(max: number): SqlTarget {
  const pool = pgPool(max)
  const extra: pg.Pool[] = []
  return {
    kind: 'postgres',
    name: 'PostgresStore',
    store: ({ driver, ...options }, url) => (driver
      ? new PostgresStore({ driver, ...options })
      : new PostgresStore({ pool: url ? remember(extra, pgPool(1, url)) : pool, ...options })),
    driver: () => pgDriver(pool) as SqlDriver<unknown>,
    async shop(name = uniqueTable('shop'), create = true) {
      if (create) await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, source VARCHAR(16), at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      return {
        name,
        write: (tx, id, source) => (tx as pg.PoolClient).query(`INSERT INTO ${name} (id, source) VALUES ($1, $2)`, [id, source ?? null]),
        count: async (id) => (await pool.query(`SELECT count(*)::int AS n FROM ${name} WHERE id = $1`, [id])).rows[0].n,
        rows: async () => (await pool.query<ShopRow>(`SELECT id, source FROM ${name}`)).rows,
        drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
      }
    },
    doneMarkers: async (table, keys) => (await pool.query(
      `SELECT count(*)::int AS n FROM ${table} WHERE done_at IS NOT NULL AND settle_key = ANY($1)`, [keys])).rows[0].n,
    run: (tx, sql) => (tx as pg.PoolClient).query(sql),
    kill: (tx) => pool.query('SELECT pg_terminate_backend($1)', [(tx as pg.PoolClient & { processID: number }).processID]),
    exists: async (table) => (await pool.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null,
    drop: async (table) => { for (const statement of dropSchemaStatements('postgres', table)) await pool.query(statement) },
    bare(table) {
      const name = `bare_${table}`
      const own = new pg.Pool({ connectionString: POSTGRES_URL, max: 3, application_name: name })
      return {
        store: new PostgresStore({ pool: own, table }),
        killIdle: async () => (await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'", [name])).rowCount ?? 0,
        end: () => own.end(),
      }
    },
    unreachableUrl: 'postgres://postgres@127.0.0.1:1/test',
    end: async () => { for (const p of [pool, ...extra]) await p.end() },
  }
}

function mysqlTarget(max: number): SqlTarget {
  const pool = mysqlPool(max)
  const extra: mysql.Pool[] = []
  return {
    kind: 'mysql',
    name: 'MysqlStore',
    store: ({ driver, ...options }, url) => (driver
      ? new MysqlStore({ driver, ...options })
      : new MysqlStore({ pool: url ? remember(extra, mysqlPool(1, url)) : pool, ...options })),
    driver: () => mysqlDriver(pool) as SqlDriver<unknown>,
    async shop(name = uniqueTable('shop'), create = true) {
      if (create) await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, source VARCHAR(16) NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`)
      return {
        name,
        write: (tx, id, source) => (tx as mysql.PoolConnection).query(`INSERT INTO ${name} (id, source) VALUES (?, ?)`, [id, source ?? null]),
        count: async (id) => Number(((await pool.query(`SELECT count(*) AS n FROM ${name} WHERE id = ?`, [id]))[0] as Array<{ n: number }>)[0].n),
        rows: async () => (await pool.query(`SELECT id, source FROM ${name}`))[0] as ShopRow[],
        drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
      }
    },
    doneMarkers: async (table, keys) => Number(((await pool.query(
      `SELECT count(*) AS n FROM ${table} WHERE done_at IS NOT NULL AND settle_key IN (?)`, [keys]))[0] as Array<{ n: number }>)[0].n),
    run: (tx, sql) => (tx as mysql.PoolConnection).query(sql),
    kill: (tx) => pool.query(`KILL ${Number((tx as mysql.PoolConnection).threadId)}`),
    exists: async (table) => ((await pool.query('SHOW TABLES LIKE ?', [table]))[0] as unknown[]).length > 0,
    drop: async (table) => { for (const statement of dropSchemaStatements('mysql', table)) await pool.query(statement) },
    bare(table) {
      const own = mysqlPool(3)
      return {
        store: new MysqlStore({ pool: own, table }),
        killIdle: async () => {
          // mysql2 keeps no public list of idle connections.
          const idle = (own.pool as unknown as { _freeConnections: { toArray(): Array<{ threadId: number }> } })._freeConnections.toArray()
          for (const { threadId } of idle) await pool.query(`KILL ${Number(threadId)}`)
          return idle.length
        },
        end: () => own.end(),
      }
    },
    unreachableUrl: 'mysql://root@127.0.0.1:1/test',
    end: async () => { for (const p of [pool, ...extra]) await p.end() },
  }
}

function remember<T>(list: T[], item: T): T {
  list.push(item)
  return item
}

/** One database, with pools of its own (`max` connections in the shared one); call `end()` after use. */
export function sqlTarget(kind: SqlKind, max = 10): SqlTarget {
  return kind === 'postgres' ? postgresTarget(max) : mysqlTarget(max)
}

/** Both databases; call `end()` on each after the file's tests. */
export function sqlTargets(): SqlTarget[] {
  return SQL_KINDS.map((kind) => sqlTarget(kind))
}
