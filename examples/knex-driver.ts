import type { Knex } from 'knex'
import type { SqlDriver, SqlResult } from '../src/index'

/** node-postgres answers `{ rows, rowCount }`; mysql2 answers `[rows, fields]`, or `[ResultSetHeader, …]` for a write. */
function result(raw: any): SqlResult {
  if (!Array.isArray(raw)) return { rows: raw.rows ?? [], affected: raw.rowCount ?? 0 }
  return Array.isArray(raw[0]) ? { rows: raw[0], affected: 0 } : { rows: [], affected: raw[0]?.affectedRows ?? 0 }
}

/** A SqlDriver on a Knex instance (client 'pg' or 'mysql2'); `ctx.tx` in onPaid is the Knex transaction. */
export function knexDriver(db: Knex): SqlDriver<Knex.Transaction> {
  return {
    query: async (sql, params) => result(await db.raw(sql, [...params] as Knex.RawBinding[])),
    begin: async () => {
      const trx = await db.transaction()
      // Knex's commit() resolves even when the COMMIT failed: the failure rejects executionPromise.
      // PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, not an error; that needs
      // no check here, as the store's done-marker UPDATE just before the COMMIT fails in one.
      const end = async (how: 'commit' | 'rollback') => { await trx[how](); await trx.executionPromise }
      return {
        tx: trx,
        query: async (sql, params) => result(await trx.raw(sql, [...params] as Knex.RawBinding[])),
        commit: () => end('commit'),
        rollback: () => end('rollback'),
      }
    },
  }
}
