/**
 * Races between two settlements of one key on PostgreSQL and MariaDB that the shared conformance
 * suite cannot stage: a statement held back by a wrapped driver until the other settlement is at
 * a chosen point.
 */
import { expect } from 'chai'
import type { TransactionalResult } from '../../src/kernel/types'
import type { SqlDriver } from '../../src/stores/sql/types'
import { sleep } from '../helpers'
import { SQL_KINDS, sqlTarget, uniqueTable } from './sql-helpers'

const NAMES = { postgres: 'PostgresStore', mysql: 'MysqlStore (MariaDB)' } as const

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void
  const promise = new Promise<void>((resolve) => { fire = resolve })
  return { promise, fire }
}

for (const kind of SQL_KINDS) {
  describe(`${NAMES[kind]}: races over one key`, () => {
    const db = sqlTarget(kind, 4)
    const table = uniqueTable(`race_${kind}`)

    after(async () => {
      await db.drop(table)
      await db.end()
    })

    it('a duplicate whose unlocked read found no marker, and whose insert then meets the marker a running settlement created and locked, is answered busy at once', async () => {
      const key = `20110698:paid:I${Date.now()}`
      const first = db.store({ table })
      await first.settle(`${key}-warm`, async () => {}) // the table exists before the race
      // The duplicate's insert waits here until the first settlement holds the row.
      const atInsert = signal()
      const go = signal()
      const base = db.driver()
      const held: SqlDriver<unknown> = {
        begin: () => base.begin(),
        async query(sql, params) {
          if (sql.includes('INSERT INTO')) {
            atInsert.fire()
            await go.promise
          }
          return base.query(sql, params)
        },
      }
      const duplicate = db.store({ table, driver: held }).settle(key, async () => { throw new Error('the duplicate ran the work') })
      await atInsert.promise
      const inWork = signal()
      const finish = signal()
      const settling = first.settle(key, async () => {
        inWork.fire()
        await finish.promise
      })
      await inWork.promise
      go.fire()
      const answer = await Promise.race([duplicate, sleep(2000).then((): TransactionalResult | 'waiting' => 'waiting')])
      finish.fire()
      expect(await settling).to.include({ status: 'completed' })
      expect(answer, 'the duplicate while the first settlement holds the row').to.deep.equal({ status: 'busy' })
    })
  })
}
