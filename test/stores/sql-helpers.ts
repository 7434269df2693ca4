import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import pg from 'pg'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** Where nothing listens: a database that cannot be reached. */
export const UNREACHABLE = { postgres: 'postgres://postgres@127.0.0.1:1/test', mysql: 'mysql://root@127.0.0.1:1/test' }

/** A table name no other run uses: a purge in one suite must not delete another's markers. */
export function uniqueTable(label: string): string {
  return `gat_${label}_${randomBytes(4).toString('hex')}`
}

export function pgPool(max = 10, url = POSTGRES_URL): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max })
  // An idle client the server dropped (a restart) emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => {})
  return pool
}

export function mysqlPool(max = 10, url = MYSQL_URL): mysql.Pool {
  return mysql.createPool({ uri: url, connectionLimit: max })
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
