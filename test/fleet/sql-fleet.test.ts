/**
 * GitHub issue 11: PostgresStore and MysqlStore in a fleet, on the machine's PostgreSQL and
 * MariaDB. Three shop processes (app-process.ts with STORE=postgres|mysql) behind the random
 * balancer share one settlement table; onPaid writes one row per payment into the shop's table
 * through ctx.tx, and 5 % of its calls throw after the write. Meanwhile instances are SIGKILLed
 * while handlers run (and restarted) and the database server is restarted once. The sandbox plays
 * Guanaitong: each notification is delivered 3 to 5 times at once, and retried until it reads
 * `success`; every fifth payment starts with a pay through the router, whose answer settles the
 * order too (settleOnPay), racing the notifications: the sandbox answers the first half of those
 * pays after their notification's first attempt ('before-answer'), the second half at once.
 *
 * What must hold: every delivery is acknowledged, and the shop's table holds exactly one row per
 * payment (the rows of killed, thrown and rolled-back transactions are gone).
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createSandbox, type Sandbox, type SandboxPayment } from '../../src/testing/sandbox'
import { notificationFields } from '../../src/testing/sandbox/payments'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { sleep } from '../helpers'
import { SQL_KINDS, sqlTarget, uniqueTable, type ShopTable, type SqlKind, type SqlTarget } from '../stores/sql-helpers'
import { Balancer } from './balancer'
import { counts, killAll, startApp, startFleet, type AppEnv, type AppInstance } from './fleet-helpers'
import { sqlServer, type SqlServer } from './sql-servers'

const PAYMENTS = 500
/** Every PAY_EVERY-th payment starts with a pay through the router; the others with a notification alone. */
const PAY_EVERY = 5
/** One payment starts every SEND_EVERY_MS: the kills and the restart land among them. */
const SEND_EVERY_MS = 40
/** The database restarts once this share of the payments has started. */
const RESTART_AT = 0.4
const THROW_AFTER_WRITE = 0.05
/** Work inside onPaid after its row is written: the window a kill lands in. */
const HANDLER_DELAY_MS = 60
/** Pause between one instance's restart and the next kill. */
const KILL_PAUSE_MS = 1500
/** Guanaitong's schedule, compressed: ten attempts over about 35 s (a restart takes a few seconds). */
const RETRY_SCHEDULE = [0, 250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 10_000]

const NAMES: Record<SqlKind, string> = { postgres: 'PostgreSQL', mysql: 'MariaDB' }

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0)

/** What one run did, printed for the issue note. */
interface Figures {
  payments: number
  /** Payments that began with a pay through the router (the others with a notification alone). */
  pays: number
  /** Pay answers that said settled: true (settled from the answer, or before it). */
  paysSettled: number
  /** Notification deliveries: each payment's own and its copies (3 to 5 a payment). */
  deliveries: number
  /** POSTs of those deliveries, retries included. */
  attempts: number
  kills: number
  appRestarts: number
  /** onPaid executions running in an instance when it was killed: their transactions died. */
  handlersKilled: number
  dbRestarts: number
  /** From the stop order to the server answering again. */
  dbDownMs: number
  /** onPaid executions begun, in all instances. */
  executions: number
  throws: number
  /** Settlements refused IN_PROGRESS (logged): another instance held the payment's row. */
  inProgress: number
  /** Settlements refused STORE_FAILED (logged): the database failed them, mostly while it restarted. */
  storeFailed: number
  /** Requests the balancer answered 502: cut by a kill. */
  badGateway: number
  rows: number
  rowsBySource: Record<string, number>
  seconds: number
}

describe('SQL fleet: three instances, one settlement table, kills and a database restart', function () {
  const prefix = uniquePrefix('sqlfleet')
  const run = Date.now().toString(36).slice(-6)
  let redis: Redis
  /** One per test: a request still in flight from one test never reaches the next one's instances. */
  let balancer: Balancer
  let sandbox: Sandbox | undefined
  /** Every instance started by the current test, the killed ones included (their log lines count). */
  let everyApp: AppInstance[] = []
  /** The current test's server, pool and tables, for afterEach. */
  let current: { server: SqlServer; db?: SqlTarget; shop?: ShopTable; storeTable?: string } | undefined

  before(() => {
    redis = new Redis(REDIS_URL)
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const app of everyApp) {
        process.stderr.write(`--- ${app.name} stderr:\n${app.errorOutput}\n--- ${app.name} last lines:\n${app.lines.slice(-15).join('\n')}\n`)
      }
    }
    await killAll()
    everyApp = []
    await balancer?.close()
    await sandbox?.close()
    sandbox = undefined
    if (!current) return
    const { server, db, shop, storeTable } = current
    current = undefined
    // Whatever happened, the shared server is up again for the tests after this one (a failure
    // to start it fails this hook), and then the test's tables are dropped.
    try {
      await server.ensureUp()
      await shop?.drop()
      if (storeTable) await db?.drop(storeTable)
    } finally {
      await db?.end()
    }
  })

  after(async () => {
    await killAll()
    if (redis) {
      await deleteKeys(redis, prefix)
      await redis.quit()
    }
  })

  for (const kind of SQL_KINDS) {
    it(`${NAMES[kind]}: ${PAYMENTS} payments delivered 3 to 5 times, pays racing, 5 % of onPaid throwing, instances killed, the server restarted: one row per payment`, async function () {
      this.timeout(300_000)
      const server = sqlServer(kind)
      const why = server.cannotRestart()
      if (why) {
        // The reporter lists a skipped test by its title: the reason goes there.
        this.test!.title += ` (skipped: ${why})`
        this.skip()
      }
      current = { server }
      await server.ensureUp()
      const db = sqlTarget(kind, 4)
      const storeTable = uniqueTable(`fleet_${kind}`)
      current = { server, db, storeTable }
      const shop = await db.shop(uniqueTable(`fleetshop_${kind}`))
      current.shop = shop
      balancer = new Balancer()
      await balancer.start()

      await fleetRun(kind, server, db, storeTable, shop)
    })
  }

  async function fleetRun(kind: SqlKind, server: SqlServer, db: SqlTarget, storeTable: string, shop: ShopTable): Promise<Figures> {
    const countPrefix = `${prefix}${kind}:count:`
    const s = createSandbox({ retrySchedule: RETRY_SCHEDULE, notifyTimeoutMs: 15_000 })
    sandbox = s
    await s.start()
    // A pay is answered after its notification's first attempt (until half the payments started):
    // the pay answer's settlement meets the copies still being delivered and retried.
    s.setNotifications('before-answer')
    const notifyUrl = `${balancer.url}/gat/notify`
    const env: AppEnv = {
      SANDBOX_URL: s.url,
      NOTIFY_URL: notifyUrl,
      PREFIX: `${prefix}${kind}:`,
      COUNT_PREFIX: countPrefix,
      STORE: kind,
      STORE_TABLE: storeTable,
      SHOP_TABLE: shop.name,
      POOL_MAX: 8,
      HANDLER_DELAY_MS,
      THROW_AFTER_WRITE,
    }
    const apps = await startFleet(3, env)
    everyApp.push(...apps)
    for (const app of apps) balancer.add(app.name, app.port)

    const figures: Figures = {
      payments: PAYMENTS, pays: 0, paysSettled: 0, deliveries: 0, attempts: 0, kills: 0, appRestarts: 0, handlersKilled: 0,
      dbRestarts: 0, dbDownMs: 0, executions: 0, throws: 0, inProgress: 0, storeFailed: 0, badGateway: 0, rows: 0, rowsBySource: {}, seconds: 0,
    }
    const orders = Array.from({ length: PAYMENTS }, (_, i) => `Q${kind[0]}${run}${i}`)
    const copiesOf = (i: number) => 2 + (i % 3)
    const deliverCopies = (payment: SandboxPayment, copies: number) => {
      const fields = notificationFields(payment, s.appId)
      for (let k = 0; k < copies; k++) s.notify(notifyUrl, fields)
      figures.deliveries += 1 + copies
    }
    s.on('pay', ({ payment }) => deliverCopies(payment, copiesOf(orders.indexOf(payment.outerTradeNo))))

    /** A pay through the router, sent again until the sandbox has the payment (an instance killed first). */
    const pay = async (no: string): Promise<void> => {
      for (let tries = 1; ; tries++) {
        const answer = await fetch(`${balancer.url}/gat/pay`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ outer_trade_no: no, reason: '午餐' }),
        }).then(async (res) => (res.status === 200 ? await res.json() as { settled?: boolean } : null), () => null)
        if (answer?.settled === true) figures.paysSettled += 1
        if (s.getPayment(no)) return
        if (tries === 20) throw new Error(`pay ${no}: no payment at the sandbox after ${tries} pays`)
        await sleep(250)
      }
    }

    let sending = true
    const killing = killLoop(apps, env, figures, () => !sending)
    const started = performance.now()
    const pays: Array<Promise<void>> = []
    let restart: Promise<void> | undefined
    let serverStartedBefore = 0
    for (let i = 0; i < PAYMENTS; i++) {
      if (i === Math.floor(PAYMENTS * RESTART_AT)) {
        serverStartedBefore = await server.startedAt()
        const down = performance.now()
        restart = server.restart().then(() => {
          figures.dbRestarts += 1
          figures.dbDownMs = Math.round(performance.now() - down)
        })
      }
      // The first half of the pays is answered after their notification's first attempt, the
      // second half at once: their answers' settlements race the notification itself.
      if (i === PAYMENTS / 2) s.setNotifications('after-answer')
      if (i % PAY_EVERY === 0) {
        figures.pays += 1
        pays.push(pay(orders[i]))
      } else {
        deliverCopies(s.sendNotification({ notifyUrl, outerTradeNo: orders[i], totalAmount: `${1 + (i % 50)}.00` }), copiesOf(i))
      }
      await sleep(SEND_EVERY_MS)
    }
    await Promise.all(pays)
    sending = false
    await Promise.all([killing, restart])
    const idle = await s.waitIdle(180_000).then(() => undefined, (err: Error) => err)
    figures.seconds = Math.round((performance.now() - started) / 100) / 10

    // The figures first, so a failed run shows them too.
    figures.attempts = s.deliveries.reduce((sum, d) => sum + d.attempts.length, 0)
    const rows = await shop.rows()
    const perOrder = new Map<string, number>()
    for (const row of rows) {
      perOrder.set(row.id, (perOrder.get(row.id) ?? 0) + 1)
      const source = row.source ?? 'none'
      figures.rowsBySource[source] = (figures.rowsBySource[source] ?? 0) + 1
    }
    figures.rows = rows.length
    figures.executions = sum((await counts(redis, `${countPrefix}started`)).values())
    figures.throws = sum((await counts(redis, `${countPrefix}threw`)).values())
    figures.inProgress = sum(everyApp.map((app) => app.rejections('IN_PROGRESS').length))
    figures.storeFailed = sum(everyApp.map((app) => app.rejections('STORE_FAILED').length))
    figures.badGateway = balancer.stats.badGateway
    console.log(`      ${NAMES[kind]}: ${JSON.stringify(figures)}`)
    if (idle) throw idle

    // Guanaitong read `success` for every copy of every payment.
    expect(s.payments.map((p) => p.outerTradeNo).sort(), 'payments at the sandbox').to.deep.equal([...orders].sort())
    const states: Record<string, number> = {}
    for (const d of s.deliveries) states[d.state] = (states[d.state] ?? 0) + 1
    expect(states, 'delivery states').to.deep.equal({ acknowledged: figures.deliveries })
    expect(s.payments.filter((p) => p.state !== 'acknowledged').map((p) => `${p.outerTradeNo}: ${p.state}`)).to.deep.equal([])

    // Exactly one row per payment in the shop's table, and a done-marker for each.
    expect([...perOrder].filter(([, n]) => n > 1), 'payments with 2 or more rows').to.deep.equal([])
    expect(orders.filter((no) => !perOrder.has(no)), 'payments without a row').to.deep.equal([])
    expect(perOrder.size, 'distinct payments in the shop table').to.equal(PAYMENTS)
    expect(rows.length, 'rows in the shop table').to.equal(PAYMENTS)
    expect(await db.doneMarkers(storeTable, orders.map((no) => `${s.appId}:paid:${no}`)), 'done-markers').to.equal(PAYMENTS)

    // The faults really happened, and no instance died but those the test killed.
    expect(figures.kills, 'instances SIGKILLed').to.be.greaterThan(0)
    expect(figures.appRestarts, 'killed instances started again').to.equal(figures.kills)
    expect(figures.handlersKilled, 'handlers running in the killed instances').to.be.greaterThan(0)
    expect(figures.dbRestarts, 'database restarts').to.equal(1)
    expect(await server.startedAt(), 'the server\'s start time after the restart').to.be.greaterThan(serverStartedBefore)
    expect(figures.throws, 'onPaid calls that threw after writing').to.be.greaterThan(0)
    expect(figures.executions, 'onPaid executions: one per payment, plus the thrown and the killed').to.be.greaterThan(PAYMENTS)
    expect(apps.filter((app) => !app.alive).map((app) => app.name), 'instances dead at the end').to.deep.equal([])
    expect(balancer.foundDead, 'instances found dead by the balancer').to.deep.equal([])
    return figures
  }

  /**
   * Until `done()`: waits until some instance runs a handler, SIGKILLs it, starts it again and puts
   * it back behind the balancer; then pauses. One instance down at a time.
   */
  async function killLoop(apps: AppInstance[], env: AppEnv, figures: Figures, done: () => boolean): Promise<void> {
    while (!done()) {
      await sleep(KILL_PAUSE_MS)
      let victim: AppInstance | undefined
      while (!done() && !victim) {
        const busy = apps.filter((app) => app.handlersRunning > 0)
        victim = busy[Math.floor(Math.random() * busy.length)]
        if (!victim) await sleep(5)
      }
      if (!victim) return
      balancer.remove(victim.name)
      await victim.kill('SIGKILL')
      figures.kills += 1
      // Its last lines read: the handlers that began and never ended died with it.
      await victim.outputEnded
      figures.handlersKilled += victim.handlersRunning
      const fresh = await startApp(victim.name, env)
      everyApp.push(fresh)
      apps[apps.indexOf(victim)] = fresh
      balancer.add(fresh.name, fresh.port)
      figures.appRestarts += 1
    }
  }
})
