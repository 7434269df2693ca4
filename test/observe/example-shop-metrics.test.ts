/**
 * `OTEL=1 npm start`: the example shop, run as its own process (the SDK registers globally),
 * takes a payment through its embedded sandbox and serves the router's metrics at /metrics.
 */
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { sleep } from '../helpers'

const root = resolve(import.meta.dirname, '..', '..')
const POINTS_ASSET = 'a5fad9894edd0d2202639248fa0461ec'

describe('observability: the example shop with OTEL=1 serves Prometheus metrics', function () {
  this.timeout(60_000)
  let shop: ChildProcess
  let url: string
  let output = ''

  before(async () => {
    shop = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/server.ts'], {
      cwd: root, env: { ...process.env, OTEL: '1', PORT: '0', SANDBOX_TIME_SCALE: '0.001' }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    shop.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    url = await new Promise<string>((found, fail) => {
      shop.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk
        const match = /cashier page on (http:\/\/\S+)/.exec(output)
        if (match) found(match[1])
      })
      shop.once('exit', (code) => fail(new Error(`the shop exited (${code}) before listening:\n${output}`)))
    })
  })
  after(async () => {
    if (shop.exitCode !== null) return
    shop.kill('SIGTERM')
    await once(shop, 'exit')
  })

  it('after a payment, /metrics has guanaitong_notifications (the pay answer\'s settlement: success, HANDLED) and the API calls', async () => {
    const order = await (await fetch(`${url}/orders`, { method: 'POST' })).json() as { id: string }
    const pay = await fetch(`${url}/gat/pay`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outer_trade_no: order.id, asset_type: '1', asset_open_id: POINTS_ASSET }),
    })
    expect(pay.status, await pay.clone().text()).to.equal(200)
    let status = ''
    for (let i = 0; i < 200 && status !== 'paid'; i++) {
      status = ((await (await fetch(`${url}/orders/${order.id}`)).json()) as { status: string }).status
      if (status !== 'paid') await sleep(25)
    }
    expect(status, output).to.equal('paid')

    const scrape = await fetch(`${url}/metrics`)
    expect(scrape.status).to.equal(200)
    const text = await scrape.text()
    // The pay answer settled the order (source pay); Guanaitong's notification follows (DUPLICATE).
    const lines = text.split('\n').filter((l) => l.startsWith('guanaitong_notifications'))
    const settled = lines.find((l) => l.includes('guanaitong_source="pay"'))
    expect(settled, text).to.be.a('string')
    expect(settled).to.contain('guanaitong_outcome="success"').and.contain('guanaitong_reason="HANDLED"').and.match(/ 1$/)
    expect(settled).to.contain('otel_scope_name="express-guanaitong"')
    expect(lines.every((l) => l.includes('guanaitong_outcome="success"')), text).to.equal(true)
    expect(text).to.match(/^guanaitong_api_calls_total\{guanaitong_api_path="\/platformDealer\/employee\/pay",guanaitong_api_code="0".*\} 1$/m)
  })
})
