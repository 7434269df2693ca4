/**
 * The command line, run as a real child process through tsx (`node --import tsx src/cli.ts …`),
 * against a small Express app that mounts the router.
 */
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import express from 'express'
import { version } from '../../package.json'
import { createClient } from '../../src/client'
import { guanaitong } from '../../src/adapters/express/router'
import { sign } from '../../src/kernel/signature'
import type { Logger, Notification } from '../../src/kernel/types'
import { sleep, waitFor } from '../helpers'

const root = resolve(import.meta.dirname, '..', '..')
const APP_ID = '20110698'
const SECRET = 'secret123'

const EXAMPLE = [
  'appid=20110698', 'outer_trade_no=1000000005', 'total_amount=100.00',
  'buyer_open_id=d87797eea12a2f80ad72ed93214a0908', 'trade_no=2018070920000005', 'timestamp=1531120153',
]
const EXAMPLE_MASKED = 'appid=20110698&appsecret=***&buyer_open_id=d87797eea12a2f80ad72ed93214a0908' +
  '&outer_trade_no=1000000005&timestamp=1531120153&total_amount=100.00&trade_no=2018070920000005'
const EXAMPLE_SIGN = '5ad48cf46541f84b9e5741dfac48227d40b322aa'

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  const clean = { ...process.env }
  delete clean.GAT_APPID
  delete clean.GAT_APPSECRET
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Runs the CLI to completion. Asynchronous: the test's own server must keep answering meanwhile. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = start(args, env)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  return { code, signal, stdout, stderr }
}

function quiet(): Logger {
  const none = () => undefined
  return { debug: none, info: none, warn: none, error: none }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)))
}

describe('cli (express-guanaitong command line)', function () {
  this.timeout(60_000)

  describe('sign', () => {
    it("prints the worked example's canonical string with the secret masked, and its signature", async () => {
      const run = await cli(['sign', '--app-secret', SECRET, ...EXAMPLE])
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stdout).to.contain(EXAMPLE_MASKED)
      expect(run.stdout).to.contain(`sign (sha1): ${EXAMPLE_SIGN}`)
      expect(run.stdout + run.stderr).to.not.contain(SECRET)
    })

    it('takes the secret from GAT_APPSECRET, a whole form with --form, and another hash with --sign-type', async () => {
      const form = EXAMPLE.join('&')
      const run = await cli(['sign', '--sign-type', 'sha256', '--form', form], { GAT_APPSECRET: SECRET })
      expect(run.code, run.stderr).to.equal(0)
      const expected = sign(Object.fromEntries(EXAMPLE.map((p) => p.split('='))), SECRET, 'sha256')
      expect(run.stdout).to.contain(`sign (sha256): ${expected}`)
      expect(run.stdout + run.stderr).to.not.contain(SECRET)
    })

    it('compares a given sign: exit 0 when it matches, 1 when it does not', async () => {
      const good = await cli(['sign', '--app-secret', SECRET, ...EXAMPLE, `sign=${EXAMPLE_SIGN}`])
      expect(good.code).to.equal(0)
      expect(good.stdout).to.contain('given sign: matches')
      const bad = await cli(['sign', '--app-secret', SECRET, ...EXAMPLE, 'sign=31f531d0ca40e6d7fb02688564f637f458e63ec8'])
      expect(bad.code).to.equal(1)
      expect(bad.stdout).to.contain('does NOT match')
      expect(bad.stdout + bad.stderr).to.not.contain(SECRET)
    })
  })

  describe('notify', () => {
    let server: Server
    let url: string
    let paid: Notification[]
    let failed: Notification[]
    let handlerDelayMs = 0

    before(async () => {
      const app = express()
      app.use('/gat', guanaitong({
        appId: APP_ID,
        appSecret: SECRET,
        payPath: false,
        logger: quiet(),
        onPaid: async (payment) => {
          paid.push(payment)
          await sleep(handlerDelayMs)
        },
        onPayFailed: (notice) => {
          failed.push(notice)
        },
      }))
      server = createServer(app)
      url = `http://127.0.0.1:${await listen(server)}/gat/notify`
    })
    after(() => {
      server.closeAllConnections()
      server.close()
    })
    beforeEach(() => {
      paid = []
      failed = []
      handlerDelayMs = 0
    })

    const base = () => ['notify', '--url', url, '--app-id', APP_ID, '--app-secret', SECRET]

    it('sends a signed payment: the server answers success, onPaid runs, exit 0', async () => {
      const run = await cli([...base(), '--outer-trade-no', 'ORD100', '--amount', '12.50', '--attach', '测试'])
      expect(run.code, run.stdout + run.stderr).to.equal(0)
      expect(run.stdout).to.match(/#1\s+HTTP 200\s+[\d.]+ ms\s+"success"/)
      expect(run.stdout).to.contain('every answer was "success"')
      expect(paid).to.have.length(1)
      expect(paid[0]).to.include({ outerTradeNo: 'ORD100', totalAmount: '12.50', totalFen: 1250, attach: '测试', appId: APP_ID })
      expect(paid[0].tradeNo).to.match(/^\d{16}$/)
      expect(run.stdout + run.stderr).to.not.contain(SECRET)
    })

    it('--repeat 3: three deliveries, each answered success, onPaid ran once', async () => {
      const run = await cli([...base(), '--outer-trade-no', 'ORD101', '--repeat', '3'])
      expect(run.code, run.stdout).to.equal(0)
      expect(run.stdout.match(/^#\d\s+HTTP 200 .*"success"$/gm)).to.have.length(3)
      expect(paid.map((p) => p.outerTradeNo)).to.deep.equal(['ORD101'])
    })

    it('--repeat 3 --concurrency 3: concurrent duplicates while onPaid runs are answered fail, onPaid ran once', async () => {
      handlerDelayMs = 300
      const run = await cli([...base(), '--outer-trade-no', 'ORD102', '--repeat', '3', '--concurrency', '3'])
      expect(paid.map((p) => p.outerTradeNo)).to.deep.equal(['ORD102'])
      const lines = run.stdout.split('\n').filter((l) => /^#\d\.\d/.test(l))
      expect(lines).to.have.length(9)
      // Round 1: one copy ran the handler, the others found it in progress (Guanaitong would retry).
      const answered = (l: string) => l.replace(/^(\S+\s+){4}\S+\s+/, '').split(' ')[0]
      const first = lines.filter((l) => l.startsWith('#1.'))
      expect(first.map(answered).sort(), run.stdout).to.deep.equal(['"fail"', '"fail"', '"success"'])
      expect(first.filter((l) => /HTTP 409 .*"fail" +<- not "success"/.test(l))).to.have.length(2)
      // Rounds 2 and 3: already done, acknowledged without running it again.
      expect(lines.slice(3).map(answered), run.stdout).to.deep.equal(Array(6).fill('"success"'))
      expect(run.code).to.equal(1)
      expect(run.stdout).to.contain('9 sent: 7 "success", 2 something else')
    })

    it('--failed sends a failure notice (empty trade_no): onPayFailed runs, not onPaid', async () => {
      const run = await cli([...base(), '--outer-trade-no', 'ORD103', '--failed', '--amount', '5.00'])
      expect(run.code, run.stdout).to.equal(0)
      expect(run.stdout).to.contain('failure notice (empty trade_no)')
      expect(paid).to.have.length(0)
      expect(failed).to.have.length(1)
      expect(failed[0]).to.include({ outerTradeNo: 'ORD103', tradeNo: '', totalAmount: '5.00' })
    })

    it('a wrong secret: the server answers fail, exit 1, and neither secret is printed', async () => {
      const run = await cli(['notify', '--url', url, '--app-id', APP_ID, '--app-secret', 'not-the-secret'])
      expect(run.code).to.equal(1)
      expect(run.stdout).to.match(/#1\s+HTTP 401\s+[\d.]+ ms\s+"fail"/)
      expect(run.stdout).to.contain('Guanaitong would retry')
      expect(paid).to.have.length(0)
      expect(run.stdout + run.stderr).to.not.contain('not-the-secret')
    })

    it('an unreachable server: exit 3', async () => {
      const closed = createServer()
      const port = await listen(closed)
      await new Promise((r) => closed.close(r))
      const run = await cli(['notify', '--url', `http://127.0.0.1:${port}/gat/notify`, '--app-id', APP_ID, '--app-secret', SECRET, '--repeat', '3'])
      expect(run.code).to.equal(3)
      expect(run.stdout).to.contain('ECONNREFUSED')
      expect(run.stdout).to.contain('stopping: nothing could connect')
      expect(run.stderr).to.contain(`could not reach http://127.0.0.1:${port}`)
    })
  })

  describe('arguments', () => {
    const bad: Array<[string, string[], RegExp]> = [
      ['an unknown flag', ['notify', '--bogus'], /Unknown option '--bogus'/],
      ['a flag without its value', ['notify', '--app-id', '1', '--app-secret', 's', '--url'], /'--url <value>' argument missing/],
      ['a flag eating the next flag', ['notify', '--url', '--app-id', '1'], /'--url' argument is ambiguous/],
      ['a missing required flag', ['notify', '--url', 'http://127.0.0.1:1/n', '--app-id', '1'], /--app-secret is required \(or set GAT_APPSECRET\)/],
      ['a bad number', ['notify', '--url', 'http://127.0.0.1:1/n', '--app-id', '1', '--app-secret', SECRET, '--repeat', 'many'], /--repeat must be a whole number from 1 to 1000; got "many"/],
      ['a bad URL', ['notify', '--url', 'localhost:3000', '--app-id', '1', '--app-secret', SECRET], /--url must be/],
      ['a bad sign type', ['sign', '--app-secret', SECRET, '--sign-type', 'md5', 'a=1'], /--sign-type must be one of sha1, sha256, sha512/],
      ['a parameter without "="', ['sign', '--app-secret', SECRET, 'appid'], /parameters are key=value/],
      ['a stray argument', ['sandbox', 'now'], /sandbox takes no positional arguments; got 'now'/],
      ['a misspelt flag', ['notify', '--app-secrte', SECRET], /Unknown option '--app-secrte' \(did you mean "--app-secret"\?\)/],
      ['a misspelt sandbox flag', ['sandbox', '--time-scal', '1'], /Unknown option '--time-scal' \(did you mean "--time-scale"\?\)/],
      ['a bad time scale', ['sandbox', '--time-scale', 'fast'], /--time-scale must be a number/],
      ['a bad notifications mode', ['sandbox', '--notifications', 'later'], /--notifications must be one of after-answer, before-answer, off/],
      ['an unknown command', ['refund'], /unknown command "refund"/],
    ]
    for (const [what, args, message] of bad) {
      it(`${what}: exit 2 with a message`, async () => {
        const run = await cli(args)
        expect(run.code, run.stdout + run.stderr).to.equal(2)
        expect(run.stderr).to.match(message)
        expect(run.stdout + run.stderr).to.not.contain(SECRET)
      })
    }

    it('--help for the tool and each command, --version', async () => {
      const tool = await cli(['--help'])
      expect(tool.code).to.equal(0)
      for (const command of ['sandbox', 'notify', 'sign']) expect(tool.stdout).to.contain(`  ${command} `)
      for (const command of ['sandbox', 'notify', 'sign']) {
        const run = await cli([command, '--help'])
        expect(run.code).to.equal(0)
        expect(run.stdout).to.contain(`Usage: express-guanaitong ${command}`)
        expect(run.stdout).to.contain('Examples:')
      }
      const notifyHelp = await cli(['help', 'notify'])
      expect(notifyHelp.stdout).to.contain('Exit codes: 0 every answer was exactly "success"')
      const v = await cli(['--version'])
      expect(v.code).to.equal(0)
      expect(v.stdout.trim()).to.equal(version)
      const none = await cli([])
      expect(none.code).to.equal(2)
      expect(none.stderr).to.contain('Usage: express-guanaitong <command>')
    })
  })

  describe('sandbox', () => {
    it('--port 0 starts, prints its URL, takes a token call and a pay, notifies, and stops on SIGTERM', async () => {
      const shopSecret = 'sandbox-cli-secret-42'
      let notified = 0
      const app = express()
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: shopSecret, payPath: false, logger: quiet(),
        onPaid: () => { notified += 1 },
      }))
      const shop = createServer(app)
      const shopPort = await listen(shop)

      const child = start(['sandbox', '--port', '0', '--app-secret', shopSecret, '--time-scale', '0.001'])
      let stdout = ''
      let stderr = ''
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
      const checks = new Set<() => void>()
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        for (const check of [...checks]) check()
      })
      const waitFor = (pattern: RegExp, what: string) => new Promise<RegExpMatchArray>((resolve, reject) => {
        const timer = setTimeout(() => {
          checks.delete(check)
          reject(new Error(`no ${what} in the sandbox output:\n${stdout}\n${stderr}`))
        }, 20_000)
        const check = () => {
          const m = stdout.match(pattern)
          if (!m) return
          checks.delete(check)
          clearTimeout(timer)
          resolve(m)
        }
        checks.add(check)
        check()
      })
      try {
        const [, baseUrl] = await waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 'URL')
        const client = createClient({ appId: APP_ID, appSecret: shopSecret, baseUrl, logger: quiet() })
        expect(await client.getToken()).to.match(/^[0-9a-f]{32}$/)
        await waitFor(/token\s+issued [0-9a-f]{8}…/, 'token line')

        const tradeNo = await client.pay({
          buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', reason: '午餐', total_amount: '25.80',
          outer_trade_no: 'SBX1', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
          notify_url: `http://127.0.0.1:${shopPort}/gat/notify`,
        })
        await waitFor(new RegExp(`pay\\s+outer_trade_no=SBX1 total_amount=25.80 .*trade_no=${tradeNo} \\(paid\\)`), 'pay line')
        await waitFor(/notify #1 outer_trade_no=SBX1 \(payment\) -> HTTP 200 "success" .*acknowledged/, 'notify line')
        expect(notified).to.equal(1)

        child.kill('SIGTERM')
        const [code] = (await once(child, 'close')) as [number | null]
        expect(code, stderr).to.equal(0)
        expect(stdout).to.match(/stopped \(SIGTERM\): 1 payment\(s\), 1 notification attempt\(s\)/)
        expect(stdout + stderr).to.not.contain(shopSecret)
        expect(stderr, 'no warning on a loopback address').to.not.contain('warning')
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        shop.closeAllConnections()
        shop.close()
      }
    })

    it('--notifications off: a pay is answered and recorded, and never notified', async () => {
      const child = start(['sandbox', '--port', '0', '--app-secret', SECRET, '--notifications', 'off'])
      let stdout = ''
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
      try {
        await waitFor('the sandbox to listen', () => /use it as the API host/.test(stdout), { timeoutMs: 20_000 })
        const baseUrl = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]
        expect(stdout).to.contain('notifications off')
        const client = createClient({ appId: '20110698', appSecret: SECRET, baseUrl, logger: quiet() })
        const tradeNo = await client.pay({
          buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', reason: '午餐', total_amount: '1.15',
          outer_trade_no: 'SBXOFF1', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
          notify_url: 'http://127.0.0.1:9/gat/notify',
        })
        await waitFor('the pay to be printed', () => stdout.includes(`trade_no=${tradeNo}`))
        await sleep(300) // a notification, were one sent, would be printed by now
        expect(stdout).to.contain(`trade_no=${tradeNo} (paid)`)
        expect(stdout).to.not.contain('notify #1')
      } finally {
        child.kill('SIGKILL')
      }
    })

    it('reads its secret from GAT_APPSECRET (as notify does) and warns when it listens on a non-loopback address', async () => {
      const envSecret = 'sandbox-env-secret-77'
      const child = start(['sandbox', '--port', '0', '--host', '0.0.0.0'], { GAT_APPSECRET: envSecret })
      let stdout = ''
      let stderr = ''
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
      try {
        const deadline = Date.now() + 20_000
        while (!/listening on http:\/\/0\.0\.0\.0:\d+/.test(stdout) || !/warning/.test(stderr)) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sandbox did not start as expected:\n${stdout}\n${stderr}`)
          await sleep(50)
        }
        expect(stderr).to.match(/warning: the sandbox listens on 0\.0\.0\.0, not a loopback address: .*POST .*notify_url/)
        const port = /listening on http:\/\/0\.0\.0\.0:(\d+)/.exec(stdout)![1]
        const baseUrl = `http://127.0.0.1:${port}`
        const signedWithEnv = createClient({ appId: APP_ID, appSecret: envSecret, baseUrl, logger: quiet() })
        expect(await signedWithEnv.getToken()).to.match(/^[0-9a-f]{32}$/)
        const signedWithDefault = createClient({ appId: APP_ID, appSecret: 'sandbox-secret', baseUrl, logger: quiet() })
        const refused = await signedWithDefault.getToken().then(() => null, (err: unknown) => err)
        expect(refused, 'the default secret no longer signs').to.be.instanceOf(Error)
        child.kill('SIGTERM')
        const [code] = (await once(child, 'close')) as [number | null]
        expect(code, stderr).to.equal(0)
        expect(stdout + stderr).to.not.contain(envSecret)
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    })
  })
})
