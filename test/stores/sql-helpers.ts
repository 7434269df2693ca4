import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import pg from 'pg'
import type { SqlDriver, TransactionalStore } from '../../src/types'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** A table name no other run uses: a purge in one suite must not delete another's markers. */
export function uniqueTable(label: string): string {
  return `gat_${label}_${randomBytes(4).toString('hex')}`
}

export function pgPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max })
  // An idle client the server dropped (a restart) emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => {})
  return pool
}

export function mysqlPool(max = 10): mysql.Pool {
  return mysql.createPool({ uri: MYSQL_URL, connectionLimit: max })
}

/** The shop's own table, where `onPaid` writes one row per payment through `ctx.tx`. */
export interface ShopTable {
  name: string
  write(tx: unknown, id: string): Promise<unknown>
  count(id: string): Promise<number>
  drop(): Promise<void>
}

export async function pgShopTable(pool: pg.Pool, name = uniqueTable('shop')): Promise<ShopTable> {
  await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())`)
  return {
    name,
    write: (tx, id) => (tx as pg.PoolClient).query(`INSERT INTO ${name} (id) VALUES ($1)`, [id]),
    count: async (id) => (await pool.query(`SELECT count(*)::int AS n FROM ${name} WHERE id = $1`, [id])).rows[0].n,
    drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
  }
}

export async function mysqlShopTable(pool: mysql.Pool, name = uniqueTable('shop')): Promise<ShopTable> {
  await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`)
  return {
    name,
    write: (tx, id) => (tx as mysql.PoolConnection).query(`INSERT INTO ${name} (id) VALUES (?)`, [id]),
    count: async (id) => Number(((await pool.query(`SELECT count(*) AS n FROM ${name} WHERE id = ?`, [id]))[0] as Array<{ n: number }>)[0].n),
    drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
  }
}

export const pgKill = (pool: pg.Pool) => (tx: unknown) =>
  pool.query('SELECT pg_terminate_backend($1)', [(tx as pg.PoolClient & { processID: number }).processID])

export const mysqlKill = (pool: mysql.Pool) => (tx: unknown) =>
  pool.query(`KILL ${Number((tx as mysql.PoolConnection).threadId)}`)

/**
 * A driver whose next `n` unlocked reads of a marker row find nothing: a settlement that read
 * just before another created the row, a race too narrow to hit on purpose.
 */
export function blindReads<Tx>(driver: SqlDriver<Tx>): SqlDriver<Tx> & { blind(n: number): void } {
  let blind = 0
  return {
    begin: () => driver.begin(),
    query: async (sql, params) => {
      if (blind > 0 && sql.startsWith('SELECT done_at, attempts FROM')) {
        blind--
        return { rows: [], affected: 0 }
      }
      return driver.query(sql, params)
    },
    blind: (n) => { blind = n },
  }
}

/** Settles `key` with a work that waits until `open()`; `inside` resolves once the work runs. */
export function heldSettlement(store: TransactionalStore<unknown>, key: string) {
  let open!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const result = store.settle(key, async () => {
    entered()
    await gate
  })
  return { result, inside, open }
}
