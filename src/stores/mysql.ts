import type { MysqlConnectionLike, MysqlStoreOptions } from '../types'
import { checkOptions, checkPoolOrDriver, MYSQL_STORE_RULES } from '../validate'
import { checkTable, mysql } from './sql/dialect'
import { mysqlDriver } from './sql/drivers'
import { SqlStore } from './sql/sql-store'

const WHERE = 'new MysqlStore()'

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
    checkOptions(WHERE, options, MYSQL_STORE_RULES, "{ pool: mysql.createPool(url) } (from 'mysql2/promise')")
    checkPoolOrDriver(WHERE, options, "mysql.createPool(url) from 'mysql2/promise'")
    const table = checkTable(options.table, WHERE)
    const driver = options.driver ?? mysqlDriver(options.pool!)
    super('MysqlStore', driver, mysql(table), table, options)
  }
}
