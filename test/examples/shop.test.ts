/**
 * The example shop (examples/shop): its order checks and balances in-process, its `npm start`
 * process (signals, a taken port) as a real child process, and that process on PostgreSQL
 * (DATABASE_URL).
 */
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { resolve } from 'node:path'
import pg from 'pg'
import { DEMO_BUYER_OPEN_ID, startShop, type Order, type Shop } from '../../examples/shop/app'
import { encodeForm, signNotification } from '../../src/testing/index'
import { quietLogger } from '../../src/testing/quiet-logger'
import { POSTGRES_URL } from '../stores/sql-helpers'

const root = resolve(import.meta.dirname, '..', '..')
const POINTS = 'a5fad9894edd0d2202639248fa0461ec'

describe('example shop: order checks and balances', () => {
  let shop: Shop
  const logger = quietLogger()

  beforeEach(async () => {
    shop = await startShop({ port: 0, sandbox: { timeScale: 0.001 }, logger })
  })
  afterEach(() => shop.close())

  async function newOrder(): Promise<Order> {
    const res = await fetch(`${shop.url}/orders`, { method: 'POST' })
    expect(res.status).to.equal(201)
    return (await res.json()) as Order
  }

  const pay = (order: Order, asset = POINTS) => fetch(`${shop.url}/gat/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outer_trade_no: order.id, asset_type: '1', asset_open_id: asset }),
  })

  async function balances(): Promise<Record<string, string>> {
    const session = (await (await fetch(`${shop.url}/session`)).json()) as { assets: Array<{ asset_open_id: string; balance: string }> }
    return Object.fromEntries(session.assets.map((a) => [a.asset_open_id, a.balance]))
  }

  /** The first answer the shop gave to a notification the sandbox sent without a pay. */
  async function firstAnswer(input: { outerTradeNo: string; totalAmount: string; buyerOpenId?: string }): Promise<string | null> {
    const payment = shop.sandbox!.sendNotification({ notifyUrl: `${shop.url}/gat/notify`, buyerOpenId: DEMO_BUYER_OPEN_ID, ...input })
    while (payment.attempts.length === 0) await once(shop.sandbox!, 'attempt')
    return payment.attempts[0].body
  }

  it('a notification for another amount is answered fail and goes to onMismatch; the order stays pending', async () => {
    const order = await newOrder()
    expect(await firstAnswer({ outerTradeNo: order.id, totalAmount: '0.01' })).to.equal('fail')
    expect(shop.orders.get(order.id)!.status).to.equal('pending')
    expect(shop.handled.paid, 'onPaid did not run').to.equal(0)
    expect(shop.mismatches.map((m) => [m.problem, m.notification.outerTradeNo])).to.deep.equal([['amount', order.id]])
  })

  it('a notification for another buyer or an unknown order is answered fail and goes to onMismatch', async () => {
    const order = await newOrder()
    expect(await firstAnswer({ outerTradeNo: order.id, totalAmount: order.amount, buyerOpenId: 'someone-else' })).to.equal('fail')
    expect(await firstAnswer({ outerTradeNo: 'ORD-NOT-MADE-HERE', totalAmount: '25.80' })).to.equal('fail')
    expect(shop.mismatches.map((m) => m.problem)).to.deep.equal(['buyer', 'unknown-order'])
    expect(shop.orders.get(order.id)!.status).to.equal('pending')
  })

  it('a paid order takes its amount off the asset it was paid with', async () => {
    expect(await balances()).to.include({ [POINTS]: '1280.00' })
    const order = await newOrder()
    expect((await pay(order)).status).to.equal(200)
    await shop.sandbox!.waitForAcknowledged(order.id)
    expect(shop.orders.get(order.id)!.status).to.equal('paid')
    expect(await balances()).to.include({ [POINTS]: '1254.20', b7e1c0d2f3a4958677a1b2c3d4e5f607: '500.00' })
  })

  it('refuses a pay larger than the demo balance, naming the asset', async () => {
    await shop.close()
    shop = await startShop({
      port: 0, sandbox: { timeScale: 0.001 }, logger,
      assets: [{ asset_type: '1', asset_open_id: POINTS, name: '积分 Points', balance: '25.79' }],
    })
    const res = await pay(await newOrder())
    expect(res.status).to.equal(409)
    expect(((await res.json()) as { msg: string }).msg).to.contain('Not enough balance on 积分 Points')
    expect(shop.sandbox!.payments).to.have.length(0)
  })
})

/** Output of a child process so far, and a way to wait for a line. */
function watch(child: ChildProcess): { output: () => string; waitFor: (pattern: RegExp, timeoutMs: number) => Promise<RegExpExecArray> } {
  let output = ''
  const listeners = new Set<() => void>()
  const add = (chunk: Buffer) => {
    output += chunk.toString()
    for (const listener of listeners) listener()
  }
  child.stdout!.on('data', add)
  child.stderr!.on('data', add)
  return {
    output: () => output,
    waitFor: (pattern, timeoutMs) => new Promise((resolvePattern, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${output}`)), timeoutMs)
      const check = () => {
        const match = pattern.exec(output)
        if (!match) return
        clearTimeout(timer)
        listeners.delete(check)
        resolvePattern(match)
      }
      listeners.add(check)
      check()
    }),
  }
}

/** True while any process of the group is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

describe('example shop: the npm start process', function () {
  this.timeout(120_000)
  let group: number | undefined
  let blocker: Server | undefined

  afterEach(() => {
    // Whatever a failed test left behind in the group it started, and only that.
    if (group !== undefined && groupAlive(group)) process.kill(-group, 'SIGKILL')
    group = undefined
    blocker?.close()
    blocker = undefined
  })

  it('SIGTERM to `npm start` stops the server: the port closes and no process of it is left', async () => {
    const npm = spawn('npm', ['start'], { cwd: root, env: { ...process.env, PORT: '0' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    group = npm.pid!
    const out = watch(npm)
    const [, url] = await out.waitFor(/cashier page on (http:\/\/\S+)/, 60_000)
    expect((await fetch(`${url}/session`)).status).to.equal(200)

    const exited = once(npm, 'exit')
    npm.kill('SIGTERM')
    await exited
    await out.waitFor(/\[shop\] SIGTERM: stopped/, 10_000)
    const deadline = Date.now() + 10_000
    while (groupAlive(group) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(groupAlive(group), `processes of npm start still running:\n${out.output()}`).to.equal(false)
    const refused = await fetch(`${url}/session`).then(() => 'answered', (error: Error & { cause?: { code?: string } }) => error.cause?.code)
    expect(refused).to.equal('ECONNREFUSED')
  })

  it('prints a notify command that, run as printed, pays an order of the shop', async () => {
    const shop = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/server.ts'], {
      cwd: root, env: { ...process.env, PORT: '0' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    })
    group = shop.pid!
    const out = watch(shop)
    const [, url] = await out.waitFor(/cashier page on (http:\/\/\S+)/, 60_000)
    const [, id, command] = await out.waitFor(/try paying order (\S+) .*\n {2}(npx .+)\n/, 10_000)
    const notify = spawn('sh', ['-c', command], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    const printed = watch(notify)
    const [code] = (await once(notify, 'exit')) as [number | null]
    expect(code, printed.output()).to.equal(0)
    expect(printed.output()).to.contain('"success"')
    const order = (await (await fetch(`${url}/orders/${id}`)).json()) as Order
    expect(order.status).to.equal('paid')
  })

  it('a taken port prints what to do (set PORT) and exits 1, without a stack trace', async () => {
    blocker = createServer()
    await new Promise<void>((resolveListen) => blocker!.listen(0, '127.0.0.1', resolveListen))
    const port = (blocker.address() as { port: number }).port
    const shop = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/server.ts'], {
      cwd: root, env: { ...process.env, PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    })
    group = shop.pid!
    const out = watch(shop)
    const [code] = (await once(shop, 'exit')) as [number | null]
    expect(code, out.output()).to.equal(1)
    expect(out.output()).to.contain(`[shop] port ${port} is in use by another program: set PORT to another port`)
    expect(out.output(), 'no stack trace').to.not.match(/^\s+at /m)
  })
})

describe('example shop on PostgreSQL (DATABASE_URL)', function () {
  this.timeout(120_000)
  // A schema of its own per run, first on the search path, so the shop's tables orders and
  // gat_settlements never meet another run's.
  const schema = `shop_${randomBytes(4).toString('hex')}`
  const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 })
  let shop: ChildProcess | undefined
  let group: number | undefined

  before(() => admin.query(`CREATE SCHEMA ${schema}`))
  after(async () => {
    if (group !== undefined && groupAlive(group)) process.kill(-group, 'SIGKILL')
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })

  it('a payment marks the order paid in PostgreSQL once, however often it is delivered; SIGTERM closes the pools', async () => {
    const databaseUrl = new URL(POSTGRES_URL)
    databaseUrl.searchParams.set('options', `-c search_path=${schema}`)
    shop = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/server.ts'], {
      cwd: root,
      env: { ...process.env, PORT: '0', DATABASE_URL: databaseUrl.href, SANDBOX_TIME_SCALE: '0.001' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    group = shop.pid!
    const out = watch(shop)
    const [, url] = await out.waitFor(/cashier page on (http:\/\/\S+)/, 60_000)
    await out.waitFor(/orders and settlements in PostgreSQL/, 5_000)

    const newOrder = async () => (await (await fetch(`${url}/orders`, { method: 'POST' })).json()) as Order
    const notify = (order: Order, tradeNo: string) => fetch(`${url}/gat/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm(signNotification({
        appid: '20110698', outer_trade_no: order.id, total_amount: order.amount, buyer_open_id: DEMO_BUYER_OPEN_ID, trade_no: tradeNo,
      }, 'sandbox-secret')),
    }).then((res) => res.text())
    const row = async (id: string) => (await admin.query(`SELECT status, trade_no FROM ${schema}.orders WHERE id = $1`, [id])).rows[0]
    const marker = async (id: string) =>
      (await admin.query(`SELECT attempts, done_at FROM ${schema}.gat_settlements WHERE settle_key = $1`, [`20110698:paid:${id}`])).rows[0]
    const paidLines = (id: string) => out.output().split('\n').filter((line) => line.includes(`[shop] order ${id} paid`)).length

    // Paid through the pay route: the pay answer settles it, then Guanaitong's notification and
    // two more deliveries of it find it done.
    const first = await newOrder()
    const payRes = await fetch(`${url}/gat/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outer_trade_no: first.id, asset_type: '1', asset_open_id: POINTS }),
    })
    const answer = (await payRes.json()) as { trade_no: string; settled: boolean }
    expect(payRes.status).to.equal(200)
    expect(answer.settled).to.equal(true)
    expect([await notify(first, answer.trade_no), await notify(first, answer.trade_no)]).to.deep.equal(['success', 'success'])
    expect(await row(first.id)).to.deep.equal({ status: 'paid', trade_no: answer.trade_no })
    expect(await marker(first.id)).to.include({ attempts: 1 })

    // Settled by notifications alone, two at the same moment: one runs onPaid, the other is
    // answered success (done) or fail (IN_PROGRESS, Guanaitong retries); a third reads done.
    const second = await newOrder()
    const together = await Promise.all([notify(second, '2099010100000002'), notify(second, '2099010100000002')])
    expect(together).to.include('success')
    expect(await notify(second, '2099010100000002')).to.equal('success')
    expect(await row(second.id)).to.deep.equal({ status: 'paid', trade_no: '2099010100000002' })

    expect([paidLines(first.id), paidLines(second.id)], out.output()).to.deep.equal([1, 1])
    // The demo balance is derived from the paid orders in the table: 25.80 taken off once.
    const session = (await (await fetch(`${url}/session`)).json()) as { assets: Array<{ asset_open_id: string; balance: string }> }
    expect(session.assets.find((a) => a.asset_open_id === POINTS)!.balance).to.equal('1254.20')

    const exited = once(shop, 'exit')
    shop.kill('SIGTERM')
    const [code] = (await exited) as [number | null]
    expect(code, out.output()).to.equal(0)
  })
})
