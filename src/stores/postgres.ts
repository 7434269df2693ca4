import type { PgClientLike, PgPoolLike, PostgresStoreOptions } from './sql/types'
import { POSTGRES_STORE_RULES } from '../kernel/validate'
import { postgres } from './sql/dialect'
import { pgDriver } from './sql/drivers'
import { SqlStore } from './sql/sql-store'

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
    super({
      name: 'PostgresStore',
      rules: POSTGRES_STORE_RULES,
      example: 'new pg.Pool({ connectionString })',
      dialect: postgres,
      driver: (pool) => pgDriver(pool as PgPoolLike<Tx & PgClientLike>),
    }, options)
  }
}
