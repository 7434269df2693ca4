import type { MysqlConnectionLike, MysqlPoolLike, MysqlStoreOptions } from './sql/types'
import { MYSQL_STORE_RULES } from '../kernel/validate'
import { mysql } from './sql/dialect'
import { mysqlDriver } from './sql/drivers'
import { SqlStore } from './sql/sql-store'

/**
 * Exactly-once settlement in MySQL 8 or MariaDB ≥ 10.6: the done-marker commits in the same
 * transaction as the writes `onPaid` makes through `ctx.tx` (a mysql2 `PoolConnection`).
 * See docs/sql-stores.md.
 *
 * ```ts
 * const store = new MysqlStore({ pool: mysql.createPool(process.env.DATABASE_URL) }) // from 'mysql2/promise'
 * ```
 */
export class MysqlStore<Tx = MysqlConnectionLike> extends SqlStore<Tx> {
  constructor(options: MysqlStoreOptions<Tx>) {
    super({
      name: 'MysqlStore',
      rules: MYSQL_STORE_RULES,
      example: "mysql.createPool(url) from 'mysql2/promise'",
      dialect: mysql,
      driver: (pool) => mysqlDriver(pool as MysqlPoolLike<Tx & MysqlConnectionLike>),
    }, options)
  }
}
