/**
 * The example shop's cashier page in a real headless Chromium (Debian's /usr/bin/chromium, or
 * CHROMIUM_PATH; driven by playwright-core, no browser download). Run alone with
 * `npm run test:browser`. Each state is saved as a screenshot under test-results/.
 */
import { expect } from 'chai'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { FAILING_ASSET_ID, startShop, type Shop } from '../../examples/shop/app'
import { PAY_PATH } from '../../src/kernel/fields'
import { amountToFen, fenToAmount } from '../../src/kernel/money'
import { quietLogger } from '../../src/testing/quiet-logger'

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const RESULTS = resolve(import.meta.dirname, '..', '..', 'test-results')
const POINTS_ASSET = 'a5fad9894edd0d2202639248fa0461ec'
const PHONE = { width: 375, height: 740 }
const LAYOUT_PROBLEMS = readFileSync(join(import.meta.dirname, 'layout-problems.js'), 'utf8').replace(/^\/\/.*\n/gm, '')

describe('example shop: the cashier page in Chromium', function () {
  let shop: Shop
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const logger = quietLogger()
  const pageErrors: string[] = []
  /** GETs the page made that failed (a missing favicon, script or stylesheet). */
  const failedLoads: string[] = []

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH; playwright's own browsers are not used`)
    }
    mkdirSync(RESULTS, { recursive: true })
    shop = await startShop({ port: 0, sandbox: { timeScale: 0.001 }, logger })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  })

  after(async () => {
    await browser?.close()
    await shop?.close()
  })

  async function open(viewport = { width: 800, height: 900 }): Promise<void> {
    context = await browser.newContext({ viewport })
    page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(error.message))
    page.on('response', (response) => {
      if (response.request().method() === 'GET' && response.status() >= 400) failedLoads.push(`${response.status()} ${response.url()}`)
    })
    page.on('requestfailed', (request) => failedLoads.push(`failed ${request.url()}`))
    await page.goto(shop.url)
    // The page made its order and listed the assets.
    await page.locator('#order-status[data-status="pending"]').waitFor()
    await page.locator('input[name="asset"]').first().waitFor()
  }

  beforeEach(async () => {
    shop.sandbox!.clearFaults()
    pageErrors.length = 0
    failedLoads.length = 0
    await open()
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) {
      const name = this.currentTest.fullTitle().replace(/[^\p{L}\p{N} ._-]+/gu, '_').slice(0, 150)
      await page.screenshot({ path: join(RESULTS, `failed ${name}.png`), fullPage: true }).catch(() => undefined)
      console.log(`    screenshot: test-results/failed ${name}.png\n    shop log:\n      ${logger.lines.slice(-15).map((l) => `${l.level} ${l.message}`).join('\n      ')}`)
    }
    await context?.close()
  })

  /** Saves the page as test-results/cashier-<state>.png. */
  async function screenshot(state: string): Promise<void> {
    await page.screenshot({ path: join(RESULTS, `cashier-${state}.png`), fullPage: true })
  }

  async function orderId(): Promise<string> {
    const id = (await page.locator('#order-id').textContent())?.trim() ?? ''
    expect(id).to.match(/^ORD\d+$/)
    return id
  }

  async function balanceOf(assetOpenId: string): Promise<string> {
    const text = await page.locator(`label.asset:has(input[value="${assetOpenId}"]) .balance`).textContent()
    return text!.replace(/^余额\s*/, '')
  }

  /** Pays the open order (25.80) with points; resolves once the page shows it paid and the balance it reloads after. */
  async function payWithPoints(): Promise<void> {
    const before = await balanceOf(POINTS_ASSET)
    await page.locator(`input[name="asset"][value="${POINTS_ASSET}"]`).check()
    await page.locator('#pay').click()
    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: 15_000 })
    // The page reloads the balance after it shows the order paid: read too early, it is the old one.
    const after = fenToAmount(amountToFen(before)! - 2580)
    await page.locator(`label.asset:has(input[value="${POINTS_ASSET}"]) .balance`).filter({ hasText: after }).waitFor()
  }

  /** Elements sticking out of the viewport, and text that wraps where it must not (layout-problems.js). */
  function layoutProblems(): Promise<string[]> {
    return page.evaluate(`(${LAYOUT_PROBLEMS})()`)
  }

  it('pays an order with points: the order turns paid once onPaid ran, the balance goes down, the sandbox got "success"', async () => {
    await screenshot('1-new-order')
    const id = await orderId()
    expect(await page.locator('#order-amount').textContent()).to.equal('¥25.80')
    expect(await page.locator('#pay').isDisabled(), 'pay waits for an asset').to.equal(true)
    const before = await balanceOf(POINTS_ASSET)

    await payWithPoints()
    expect(await page.locator('#order-status').textContent()).to.contain('已支付')
    expect(await page.locator('#message').textContent()).to.contain('支付成功')
    expect(await balanceOf(POINTS_ASSET), `the points balance was ${before}`).to.equal(fenToAmount(amountToFen(before)! - 2580))
    await screenshot('2-paid')

    const order = shop.orders.get(id)!
    expect(order.status).to.equal('paid')
    const payment = await shop.sandbox!.waitForAcknowledged(id)
    expect(payment.outcome).to.equal('paid')
    expect(payment.totalAmount, 'the amount came from the server-side order').to.equal('25.80')
    expect(payment.buyerOpenId).to.equal(order.buyerOpenId)
    expect(payment.assetType).to.equal('1')
    expect(payment.attempts.at(-1)?.body).to.equal('success')
    expect(order.tradeNo).to.equal(payment.tradeNo)
    expect(await page.locator('#pay').isDisabled(), 'a paid order cannot be paid again').to.equal(true)
    expect(pageErrors).to.deep.equal([])
    expect(failedLoads, 'every GET of the page succeeded').to.deep.equal([])
  })

  it('declares a favicon that loads (headless Chromium does not fetch it by itself)', async () => {
    const href = await page.locator('link[rel="icon"]').getAttribute('href')
    expect(href, 'a <link rel="icon">, so browsers do not ask for a missing /favicon.ico').to.be.a('string')
    const icon = await page.request.get(new URL(href!, shop.url).href)
    expect(icon.status()).to.equal(200)
    expect(icon.headers()['content-type']).to.match(/^image\//)
  })

  it('starts a new order after a paid one, without reloading, and pays it too', async () => {
    const first = await orderId()
    await payWithPoints()
    const afterFirst = await balanceOf(POINTS_ASSET)

    await page.locator('#new-order').click()
    await page.locator('#order-status[data-status="pending"]').waitFor()
    const second = await orderId()
    expect(second).to.not.equal(first)
    expect(await page.locator('#new-order').isHidden(), 'the button goes away with the new order').to.equal(true)
    expect(await page.locator('#message').isHidden(), 'the old success message is gone').to.equal(true)
    await screenshot('3-new-order-after-paid')

    await payWithPoints()
    expect(shop.orders.get(second)!.status).to.equal('paid')
    expect(await balanceOf(POINTS_ASSET)).to.equal(fenToAmount(amountToFen(afterFirst)! - 2580))
    expect(pageErrors).to.deep.equal([])
  })

  it('a payment the sandbox fails (the sandbox-failing asset) is refused at once, saying it once; its failure notice reaches onPayFailed', async () => {
    const id = await orderId()
    const failedBefore = shop.handled.failed
    await page.getByLabel('额度 (余额不足, sandbox: fails)').check()
    await page.locator('#pay').click()

    // The pay answer agrees with the notification (docs/settlement.md): a failed pay is refused, nothing charged.
    const message = page.locator('#message.error')
    await message.waitFor({ timeout: 15_000 })
    expect(await message.textContent()).to.match(/^支付被拒绝 Payment refused \(HTTP 502\): 支付失败/)
    const visible = await page.locator('main').innerText()
    expect(visible.match(/支付失败/g), 'the status says 支付失败, the message does not repeat it').to.have.length(1)
    expect(await page.locator('#new-order').isVisible()).to.equal(true)
    await screenshot('4-failed')

    const payment = await shop.sandbox!.waitForAcknowledged(id)
    expect(payment.outcome).to.equal('failed')
    expect(payment.assetOpenId).to.equal(FAILING_ASSET_ID)
    expect(payment.attempts.at(-1)?.fields.trade_no).to.equal('')
    expect(shop.orders.get(id)!.status).to.equal('failed')
    expect(shop.handled.failed).to.equal(failedBefore + 1)

    // A new order pays normally: the failure belongs to that asset only.
    await page.locator('#new-order').click()
    await page.locator('#order-status[data-status="pending"]').waitFor()
    expect(await orderId()).to.not.equal(id)
    expect(pageErrors).to.deep.equal([])
  })

  it('shows the message of a pay Guanaitong refused (a well-formed error code): nothing charged, the employee may retry', async () => {
    const id = await orderId()
    shop.sandbox!.refuse({ path: PAY_PATH, code: 999_912_345, msg: 'refused by the sandbox' })
    await page.locator(`input[name="asset"][value="${POINTS_ASSET}"]`).check()
    await page.locator('#pay').click()

    const message = page.locator('#message.error')
    await message.waitFor()
    expect(await message.textContent()).to.match(/支付被拒绝 Payment refused \(HTTP 502\): .+/)
    expect(await page.locator('#order-status').getAttribute('data-status')).to.equal('pending')
    expect(shop.orders.get(id)!.status).to.equal('pending')
    expect(shop.sandbox!.getPayment(id), 'the refused pay made no payment').to.equal(undefined)
    expect(await page.locator('#pay').isDisabled(), 'the employee may try again').to.equal(false)
    await screenshot('5-refused')
    expect(pageErrors).to.deep.equal([])
  })

  it(`fits a ${PHONE.width} px wide phone: nothing overflows, the sandbox badge stays on one line`, async () => {
    await context.close()
    await open(PHONE)
    expect(await layoutProblems(), 'a new order').to.deep.equal([])
    await screenshot('6-phone-new-order')
    await payWithPoints()
    expect(await layoutProblems(), 'a paid order').to.deep.equal([])
    await screenshot('7-phone-paid')
    expect(pageErrors).to.deep.equal([])
  })

  it('a 502 page after Guanaitong processed the pay → "outcome unknown", never "refused"; the notification then marks it paid', async () => {
    const id = await orderId()
    const paysBefore = shop.sandbox!.stats.payCalls
    shop.sandbox!.respond5xx({ path: PAY_PATH, processed: true })
    await page.locator(`input[name="asset"][value="${POINTS_ASSET}"]`).check()
    await page.locator('#pay').click()

    const message = page.locator('#message.error')
    await message.waitFor()
    expect(await message.textContent()).to.match(/支付结果未知 Payment outcome unknown/)
    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: 15_000 })
    expect(shop.orders.get(id)!.status).to.equal('paid')
    expect(shop.sandbox!.stats.payCalls - paysBefore, 'the ambiguous pay was not re-sent').to.equal(1)
    expect(pageErrors).to.deep.equal([])
  })
})
