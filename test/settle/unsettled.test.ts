/**
 * Issue 15 part 2: no charged-but-unpaid order goes unnoticed. Real router, real sandbox, both
 * Express majors, every store: MemoryStore, RedisStore (real Redis), PostgresStore and MysqlStore
 * (real PostgreSQL and MariaDB).
 */
import { expect } from 'chai'
import type { Server } from 'node:http'
import { Redis } from 'ioredis'
import request from 'supertest'
import { DEFAULTS } from '../../src/kernel/defaults'
import { ConfigError } from '../../src/kernel/errors'
import * as main from '../../src/index'
import { guanaitong, type GuanaitongRouter } from '../../src/adapters/express/router'
import { listUnsettled, sweepUnsettled } from '../../src/core/settle/unsettled'
import { MemoryStore } from '../../src/stores/memory'
import { RedisStore } from '../../src/stores/redis'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { PAY_PATH } from '../../src/testing/sandbox/http'
import { notificationFields } from '../../src/testing/sandbox/payments'
import type { GuanaitongOptions, SettleStore, UnsettledLedger, UnsettledRecord } from '../../src/kernel/types'
import type { SweepOptions } from '../../src/core/settle/unsettled'
import { EXPRESS_VERSIONS, recordingLogger, routerBehindSandbox, sleep, waitFor } from '../helpers'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { sqlTargets, uniqueTable } from '../stores/sql-helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
const BUYER = 'd87797eea12a2f80ad72ed93214a0908'
const HOUR = 60 * 60 * 1000
/** A sweep's clock this far ahead finds every record made now due, under the default window. */
const PAST_WINDOW = DEFAULTS.unsettledAfterMs + 1000

type LedgerStore = SettleStore & UnsettledLedger

let seq = 0
const order = () => ({
  outer_trade_no: `UN${Date.now() % 1e8}${++seq}`,
  reason: '午餐支付',
  asset_type: '1',
  asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
})

interface StoreKind {
  name: string
  make(): Promise<LedgerStore>
}

const SQL = sqlTargets()
const redisClients: Redis[] = []
const prefix = uniquePrefix('unsettled')
let redisStores = 0
const STORES: StoreKind[] = [
  { name: 'MemoryStore', make: async () => new MemoryStore() },
  {
    name: 'RedisStore',
    make: async () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 2000 })
      redisClients.push(client)
      await client.connect()
      // One prefix per test: its ledger holds that test's records only.
      return new RedisStore({ client, prefix: `${prefix}${++redisStores}:` })
    },
  },
  // One table per test: its ledger holds that test's records only.
  ...SQL.map((target) => ({ name: target.name, make: async () => target.store({ table: sqlTable() }) as LedgerStore })),
]

const sqlTables: string[] = []
const sqlTable = () => {
  const table = uniqueTable('unsettled')
  sqlTables.push(table)
  return table
}

after(async () => {
  for (const target of SQL) {
    for (const table of sqlTables) await target.drop(table)
    await target.end()
  }
  const admin = new Redis(REDIS_URL)
  await deleteKeys(admin, prefix)
  admin.disconnect()
  for (const client of redisClients) client.disconnect()
})

for (const { name: expressName, express } of EXPRESS_VERSIONS) {
  for (const kind of STORES) {
    describe(`unsettled pays (${expressName}, ${kind.name})`, function () {
      this.timeout(60_000)
      let sandbox: Sandbox
      let servers: Server[]
      let routers: GuanaitongRouter[]
      let logger: ReturnType<typeof recordingLogger>
      let reported: UnsettledRecord[]
      let onUnsettled: (record: UnsettledRecord) => unknown

      /** A shop on its own port; the sweep is run by the test unless `sweepEveryMs` is given. */
      async function shop(store: LedgerStore, options: Partial<GuanaitongOptions> = {}) {
        const { server, base, router } = routerBehindSandbox(express, sandbox, {
          ...APP,
          timeoutMs: 1000,
          logger,
          store,
          preparePayment: (_req, params) => ({ ...params, buyer_open_id: BUYER, total_amount: '19.90' }),
          onPaid: () => undefined,
          onUnsettled: (record) => onUnsettled(record),
          sweepEveryMs: false,
          ...options,
        })
        servers.push(server)
        routers.push(router)
        return { base, store }
      }

      /** A pay that took effect at the sandbox but whose answer never came: 504, ambiguous. */
      async function hungPay(base: string): Promise<string> {
        sandbox.hang({ path: PAY_PATH, processed: true })
        const body = order()
        const res = await request(base).post('/gat/pay').send(body)
        expect(res.status, JSON.stringify(res.body)).to.equal(504)
        expect(res.body.ambiguous).to.equal(true)
        expect(sandbox.getPayment(body.outer_trade_no), 'the pay took effect').to.not.equal(undefined)
        return body.outer_trade_no
      }

      /** Guanaitong's notification for a payment, delivered now (late), acknowledged. */
      async function lateNotification(base: string, outerTradeNo: string): Promise<void> {
        const payment = sandbox.getPayment(outerTradeNo)!
        const delivery = sandbox.notify(`${base}/gat/notify`, notificationFields(payment, APP.appId))
        const done = await sandbox.waitForDelivery(delivery)
        expect(done.state).to.equal('acknowledged')
      }

      const sweep = (store: LedgerStore, aheadMs = PAST_WINDOW, extra: Partial<SweepOptions> = {}) =>
        sweepUnsettled({ store, onUnsettled: (r) => onUnsettled(r), logger, now: () => Date.now() + aheadMs, ...extra })

      const gone = (store: LedgerStore, outerTradeNo: string) => waitFor(`${outerTradeNo} to leave the ledger`,
        async () => !(await listUnsettled(store)).some((r) => r.outerTradeNo === outerTradeNo))

      beforeEach(async () => {
        sandbox = createSandbox({ ...APP, timeScale: 0.001 })
        await sandbox.start()
        servers = []
        routers = []
        logger = recordingLogger()
        reported = []
        onUnsettled = (record) => { reported.push(record) }
      })
      afterEach(async () => {
        // A sweep left running would go on reading the store during the tests that follow.
        await Promise.all(routers.map((router) => router.close()))
        await sandbox.close()
        for (const server of servers) server.close()
      })

      it('a hung pay whose notification never comes: recorded at once, reported once after the window with its fields', async () => {
        const { base, store } = await shop(await kind.make())
        sandbox.setNotifications('off')
        const before = Date.now()
        const outerTradeNo = await hungPay(base)
        const after = Date.now()
        const [record] = await listUnsettled(store)
        expect(record).to.deep.include({
          key: `${APP.appId}:paid:${outerTradeNo}`, appId: APP.appId, outerTradeNo, totalAmount: '19.90', totalFen: 1990,
          buyerOpenId: BUYER, tradeNo: null, reason: 'AMBIGUOUS',
        })
        expect(record.since).to.be.within(before, after)
        expect(record.deadline - record.since).to.equal(25 * HOUR)

        expect(await sweep(store, 24 * HOUR), 'not due within the window').to.deep.equal([])
        expect(reported).to.deep.equal([])
        expect(await sweep(store)).to.deep.equal([record])
        expect(reported).to.deep.equal([record])
        expect(await sweep(store, PAST_WINDOW + 48 * HOUR), 'reported once').to.deep.equal([])
        expect(reported).to.have.length(1)
        expect(await listUnsettled(store)).to.deep.equal([])
        expect(sandbox.getPayment(outerTradeNo)!.state).to.equal('unnotified')
      })

      it('a hung pay whose notification comes late: removed from the ledger, never reported', async () => {
        const { base, store } = await shop(await kind.make())
        sandbox.setNotifications('off')
        const outerTradeNo = await hungPay(base)
        expect((await listUnsettled(store)).map((r) => r.outerTradeNo)).to.deep.equal([outerTradeNo])
        await lateNotification(base, outerTradeNo)
        await gone(store, outerTradeNo)
        expect(await sweep(store)).to.deep.equal([])
        expect(reported).to.deep.equal([])
      })

      it('a notification settling the order before the ambiguous pay was recorded: the sweep finds it settled and drops it unreported', async () => {
        const { base, store } = await shop(await kind.make())
        // The notification goes out at once and is settled long before the pay's 1 s time-out.
        const outerTradeNo = await hungPay(base)
        await sandbox.waitForAcknowledged(outerTradeNo)
        // Its removal came first, so the record written by the time-out stays...
        expect((await listUnsettled(store)).map((r) => r.outerTradeNo)).to.deep.equal([outerTradeNo])
        // ...until the sweep checks the settlement store.
        expect(await sweep(store)).to.deep.equal([])
        expect(reported).to.deep.equal([])
        expect(await listUnsettled(store)).to.deep.equal([])
      })

      it('a pay answered settled: false is recorded with its trade number and reason; its notification later removes it', async () => {
        const { base, store } = await shop(await kind.make(), {
          onPaid: (_p, _req, ctx) => { if (ctx.source === 'pay') throw new Error('database busy') },
        })
        sandbox.setNotifications('off')
        const body = order()
        const res = await request(base).post('/gat/pay').send(body).expect(200)
        expect(res.body.settled).to.equal(false)
        const [record] = await listUnsettled(store)
        expect(record).to.deep.include({ outerTradeNo: body.outer_trade_no, tradeNo: res.body.trade_no, reason: 'HANDLER_FAILED' })
        await lateNotification(base, body.outer_trade_no)
        await gone(store, body.outer_trade_no)
        expect(await sweep(store)).to.deep.equal([])
        expect(reported).to.deep.equal([])
      })

      it('a pay answered settled: false that nothing settles is reported with its trade number', async () => {
        const { base, store } = await shop(await kind.make(), {
          onPaid: (_p, _req, ctx) => { if (ctx.source === 'pay') throw new Error('database busy') },
        })
        sandbox.setNotifications('off')
        const body = order()
        const res = await request(base).post('/gat/pay').send(body).expect(200)
        expect(await sweep(store)).to.have.length(1)
        expect(reported.map((r) => [r.outerTradeNo, r.tradeNo, r.reason])).to.deep.equal([[body.outer_trade_no, res.body.trade_no, 'HANDLER_FAILED']])
      })

      it('a failure notice for an ambiguous pay removes it: the question is answered', async () => {
        let failed = 0
        const { base, store } = await shop(await kind.make(), { onPayFailed: () => { failed++ } })
        sandbox.setNotifications('off')
        sandbox.failNextPays(1)
        const outerTradeNo = await hungPay(base)
        await lateNotification(base, outerTradeNo)
        expect(failed).to.equal(1)
        await gone(store, outerTradeNo)
        expect(await sweep(store)).to.deep.equal([])
        expect(reported).to.deep.equal([])
      })

      it('settled pays are not recorded; with settleOnPay: false each pay is watched until its notification settles it', async () => {
        const settling = await shop(await kind.make())
        sandbox.setNotifications('off')
        await request(settling.base).post('/gat/pay').send(order()).expect(200)
        expect(await listUnsettled(settling.store)).to.deep.equal([])

        const { base, store } = await shop(await kind.make(), { settleOnPay: false })
        const body = order()
        const res = await request(base).post('/gat/pay').send(body).expect(200)
        expect(await listUnsettled(store)).to.have.length(1)
        expect((await listUnsettled(store))[0]).to.deep.include({ tradeNo: res.body.trade_no, reason: 'AWAITING_NOTIFICATION' })
        await lateNotification(base, body.outer_trade_no)
        await gone(store, body.outer_trade_no)
      })

      it('onUnsettled throws: the record is kept and reported again by a later sweep; listUnsettled lists soonest first', async () => {
        const { base, store } = await shop(await kind.make())
        sandbox.setNotifications('off')
        const first = await hungPay(base)
        await sleep(5)
        const second = await hungPay(base)
        const listed = await listUnsettled(store)
        expect(listed.map((r) => r.outerTradeNo)).to.deep.equal([first, second])
        expect(listed[0].deadline).to.be.below(listed[1].deadline)
        expect((await listUnsettled(store, { limit: 1 })).map((r) => r.outerTradeNo)).to.deep.equal([first])

        let firstCalls = 0
        onUnsettled = (record) => {
          if (record.outerTradeNo === first && ++firstCalls <= 2) throw new Error('pager down')
          reported.push(record)
        }
        const retry = { retryAfterMs: 1000, hookTimeoutMs: 1000, storeTimeoutMs: 1000 }
        expect((await sweep(store, PAST_WINDOW, retry)).map((r) => r.outerTradeNo)).to.deep.equal([second])
        expect(logger.lines.some((l) => l.level === 'error' && /onUnsettled failed for .*pager down/.test(l.message))).to.equal(true)
        expect((await listUnsettled(store)).map((r) => r.outerTradeNo), 'kept').to.deep.equal([first])
        expect(await sweep(store, PAST_WINDOW, retry), 'taken: not again before its retry').to.deep.equal([])
        const lease = 5 * 1000 + 1000 + 1000
        expect(await sweep(store, PAST_WINDOW + lease, retry), 'the retry fails too').to.deep.equal([])
        const again = await sweep(store, PAST_WINDOW + 2 * lease, retry)
        expect(again.map((r) => r.outerTradeNo)).to.deep.equal([first])
        expect(reported.map((r) => r.outerTradeNo)).to.deep.equal([second, first])
        expect(firstCalls).to.equal(3)
        expect(await listUnsettled(store)).to.deep.equal([])
      })

      it('onUnsettled that never settles is given up at hookTimeoutMs and retried', async () => {
        const { base, store } = await shop(await kind.make())
        sandbox.setNotifications('off')
        const outerTradeNo = await hungPay(base)
        onUnsettled = () => new Promise(() => undefined)
        const started = Date.now()
        expect(await sweep(store, PAST_WINDOW, { hookTimeoutMs: 200, retryAfterMs: 100, storeTimeoutMs: 1000 })).to.deep.equal([])
        expect(Date.now() - started).to.be.below(5000)
        onUnsettled = (record) => { reported.push(record) }
        await sweep(store, PAST_WINDOW + 6000)
        expect(reported.map((r) => r.outerTradeNo)).to.deep.equal([outerTradeNo])
      })

      it('the router sweeps by itself every sweepEveryMs: a hung pay is reported once, after unsettledAfterMs', async () => {
        const { base, store } = await shop(await kind.make(), { sweepEveryMs: 50, unsettledAfterMs: 400 })
        let reportedAt = 0
        onUnsettled = (record) => { reportedAt = Date.now(); reported.push(record) }
        sandbox.setNotifications('off')
        const outerTradeNo = await hungPay(base)
        await waitFor('onUnsettled', () => reported.length > 0)
        expect(reportedAt - reported[0].since).to.be.at.least(400)
        await sleep(300) // six more sweeps
        expect(reported.map((r) => r.outerTradeNo)).to.deep.equal([outerTradeNo])
        expect(await listUnsettled(store)).to.deep.equal([])
      })

      it('a ledger that fails does not change the pay answer; the record is logged whole', async () => {
        const store = await kind.make()
        store.watchUnsettled = async () => { throw new Error('ledger down') }
        const { base } = await shop(store)
        sandbox.setNotifications('off')
        const outerTradeNo = await hungPay(base)
        const line = logger.lines.find((l) => l.level === 'error' && /could not record the unsettled pay/.test(l.message))
        expect(line?.message).to.contain('ledger down')
        expect(line?.context?.unsettled).to.deep.include({ outerTradeNo, reason: 'AMBIGUOUS', totalAmount: '19.90', buyerOpenId: BUYER })
      })

      it('a removal that fails is logged, and the sweep still finds the order settled', async () => {
        const store = await kind.make()
        store.resolveUnsettled = async () => { throw new Error('ledger down') }
        const { base } = await shop(store)
        sandbox.setNotifications('off')
        const outerTradeNo = await hungPay(base)
        await lateNotification(base, outerTradeNo)
        await waitFor('the warning', () => logger.lines.some((l) => /could not remove the settled/.test(l.message)))
        expect(await sweep(store)).to.deep.equal([])
        expect(reported).to.deep.equal([])
      })
    })
  }
}

describe('unsettled pays: several instances on one Redis', function () {
  this.timeout(60_000)
  let sandbox: Sandbox
  const servers: Server[] = []
  afterEach(async () => {
    await sandbox?.close()
    for (const server of servers.splice(0)) server.close()
  })

  it('three routers with their own Redis clients sweeping at once report each hung pay once', async () => {
    sandbox = createSandbox({ ...APP, timeScale: 0.001 })
    await sandbox.start()
    sandbox.setNotifications('off')
    const shared = `${prefix}fleet:`
    const reported = new Map<string, string[]>()
    const instances = await Promise.all(['a', 'b', 'c'].map(async (name) => {
      const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false })
      redisClients.push(client)
      await client.connect()
      const store = new RedisStore({ client, prefix: shared })
      const app = EXPRESS_VERSIONS[0].express()
      const server = app.listen(0)
      servers.push(server)
      app.use('/gat', guanaitong({
        ...APP, baseUrl: sandbox.url, timeoutMs: 500, store, logger: recordingLogger(), sweepEveryMs: false,
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: BUYER, total_amount: '1.00' }),
        onPaid: () => undefined,
      }))
      const onUnsettled = (record: UnsettledRecord) => {
        reported.set(record.outerTradeNo, [...(reported.get(record.outerTradeNo) ?? []), name])
      }
      return { name, store, onUnsettled, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` }
    }))
    const PAYS = 12
    sandbox.hang({ path: PAY_PATH, processed: true, times: PAYS })
    const answers = await Promise.all(Array.from({ length: PAYS }, (_, i) =>
      request(instances[i % 3].base).post('/gat/pay').send(order())))
    expect(answers.map((a) => a.status)).to.deep.equal(answers.map(() => 504))
    expect(await listUnsettled(instances[0].store)).to.have.length(PAYS)

    const now = () => Date.now() + PAST_WINDOW
    // Each instance sweeps several times at once, small batches: every take races the others.
    const sweeps = await Promise.all(instances.flatMap((i) => Array.from({ length: 4 }, () =>
      sweepUnsettled({ store: i.store, onUnsettled: i.onUnsettled, now, limit: 2 }))))
    const more = await Promise.all(instances.map((i) => sweepUnsettled({ store: i.store, onUnsettled: i.onUnsettled, now, limit: 100 })))
    expect(sweeps.flat().length + more.flat().length).to.equal(PAYS)
    expect(reported.size).to.equal(PAYS)
    expect([...reported.entries()].filter(([, by]) => by.length !== 1), 'reported more than once').to.deep.equal([])
    expect(new Set([...reported.values()].flat()).size, 'instances that reported').to.be.greaterThan(1)
    expect(await listUnsettled(instances[0].store)).to.deep.equal([])
  })
})

describe('unsettled pays: options', () => {
  const base = { ...APP, onPaid: () => undefined, payPath: false as const }
  it('onUnsettled needs a store that keeps the ledger', () => {
    const noLedger = { leaseMs: 1, retentionMs: 1, claim: async () => ({ status: 'busy' as const }), complete: async () => true, release: async () => true }
    expect(() => guanaitong({ ...base, store: noLedger, onUnsettled: () => undefined })).to.throw(ConfigError, /onUnsettled needs a store/)
    expect(() => guanaitong({ ...base, store: noLedger })).to.not.throw()
  })
  it('checks onUnsettled, unsettledAfterMs and sweepEveryMs', () => {
    expect(() => guanaitong({ ...base, onUnsettled: 'yes' as never })).to.throw(ConfigError, /onUnsettled must be a function/)
    expect(() => guanaitong({ ...base, unsettledAfterMs: 0 })).to.throw(ConfigError, /unsettledAfterMs must be a positive number/)
    expect(() => guanaitong({ ...base, sweepEveryMs: true as never })).to.throw(ConfigError, /sweepEveryMs must be a positive number/)
    expect(() => guanaitong({ ...base, onUnsettled: () => undefined, sweepEveryMs: false })).to.not.throw()
  })
  it('warns when unsettledAfterMs outlasts the done-markers the sweep checks against', () => {
    const logger = recordingLogger()
    guanaitong({ ...base, logger, store: new MemoryStore({ retentionMs: HOUR }), unsettledAfterMs: 2 * HOUR })
    expect(logger.lines.map((l) => l.message).join('\n')).to.match(/unsettledAfterMs \(7200000\) is longer than the store's retentionMs \(3600000\)/)
    const quiet = recordingLogger()
    guanaitong({ ...base, logger: quiet, store: new MemoryStore() })
    expect(quiet.lines).to.deep.equal([])
  })
  it('sweepUnsettled and listUnsettled come from the main entry', () => {
    expect(main.sweepUnsettled).to.equal(sweepUnsettled)
    expect(main.listUnsettled).to.equal(listUnsettled)
  })
  it('sweepUnsettled checks its numbers', async () => {
    for (const bad of [{ limit: 0 }, { limit: 1.5 }, { hookTimeoutMs: -1 }, { retryAfterMs: Number.NaN }, { storeTimeoutMs: '5' as never }]) {
      await sweepUnsettled({ store: new MemoryStore(), onUnsettled: () => undefined, ...bad }).then(
        () => expect.fail(`${JSON.stringify(bad)} accepted`), (err: Error) => expect(err.message).to.match(/must be a positive/))
    }
    expect(await sweepUnsettled({ store: new MemoryStore(), onUnsettled: () => undefined, storeTimeoutMs: 1500.5 })).to.deep.equal([])
  })
  it('sweepUnsettled and listUnsettled refuse a store without the ledger', async () => {
    const noLedger = { leaseMs: 1, retentionMs: 1, claim: async () => ({ status: 'busy' as const }), complete: async () => true, release: async () => true }
    await sweepUnsettled({ store: noLedger as never, onUnsettled: () => undefined }).then(
      () => expect.fail('resolved'), (err: Error) => expect(err.message).to.match(/keeps no unsettled ledger/))
    await listUnsettled(noLedger).then(() => expect.fail('resolved'), (err: Error) => expect(err.message).to.match(/keeps no unsettled ledger/))
  })
})
