import type { PgClientLike, PostgresStoreOptions } from '../types'
import { checkOptions, checkPoolOrDriver, POSTGRES_STORE_RULES } from '../validate'
import { checkTable, postgres } from './sql/dialect'
import { pgDriver } from './sql/drivers'
import { SqlStore } from './sql/sql-store'

const WHERE = 'new PostgresStore()'

/**
 * Exactly-once settlement in PostgreSQL: the done-marker commits in the same transaction as the
 * writes `onPaid` makes through `ctx.tx` (a node-postgres `PoolClient`). See docs/sql-stores.md.
 *
 * ```ts
 * const store = new PostgresStore({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) })
 * ```
 */
export class PostgresStore<Tx = PgClientLike> extends SqlStore<Tx> {
  constructor(options: PostgresStoreOptions<Tx>) {
    checkOptions(WHERE, options, POSTGRES_STORE_RULES, '{ pool: new pg.Pool({ connectionString }) }')
    checkPoolOrDriver(WHERE, options, 'new pg.Pool({ connectionString })')
    const table = checkTable(options.table, WHERE)
    const driver = options.driver ?? pgDriver(options.pool!)
    super('PostgresStore', driver, postgres(table), table, options)
  }
}
