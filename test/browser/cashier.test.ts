/**
 * The example shop's cashier page in a real headless Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core; no browser download). Run alone with `npm run test:browser`.
 */
import { expect } from 'chai'
import { existsSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { FAILING_ASSET_ID, startShop, type Shop } from '../../examples/shop/app'
import { PAY_PATH } from '../../src/client/client'
import type { Logger } from '../../src/types'

const CHROMIUM = '/usr/bin/chromium'
const RESULTS = resolve(import.meta.dirname, '..', '..', 'test-results')
const POINTS_ASSET = 'a5fad9894edd0d2202639248fa0461ec'

/** Keeps the shop's and router's log lines for failure messages instead of printing them. */
function quietLogger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const at = (level: string) => (fields: object, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`)
  }
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

describe('example shop: the cashier page in Chromium', function () {
  let shop: Shop
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const logger = quietLogger()
  const pageErrors: string[] = []

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); playwright's own browsers are not used`)
    }
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

  beforeEach(async () => {
    shop.sandbox!.clearFaults()
    pageErrors.length = 0
    context = await browser.newContext()
    page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(shop.url)
    // The page made its order and listed the assets.
    await page.locator('#order-status[data-status="pending"]').waitFor()
    await page.locator('input[name="asset"]').first().waitFor()
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) {
      mkdirSync(RESULTS, { recursive: true })
      const name = this.currentTest.fullTitle().replace(/[^\p{L}\p{N} ._-]+/gu, '_').slice(0, 150)
      await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true }).catch(() => undefined)
      console.log(`    screenshot: test-results/${name}.png\n    shop log:\n      ${logger.lines.slice(-15).join('\n      ')}`)
    }
    await context?.close()
  })

  async function orderId(): Promise<string> {
    const id = (await page.locator('#order-id').textContent())?.trim() ?? ''
    expect(id).to.match(/^ORD\d+$/)
    return id
  }

  it('pays an order with points: the order turns paid once onPaid ran, and the sandbox got "success"', async () => {
    const id = await orderId()
    expect(await page.locator('#order-amount').textContent()).to.equal('¥25.80')
    expect(await page.locator('#pay').isDisabled(), 'pay waits for an asset').to.equal(true)

    await page.locator(`input[name="asset"][value="${POINTS_ASSET}"]`).check()
    await page.locator('#pay').click()

    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: 15_000 })
    expect(await page.locator('#order-status').textContent()).to.contain('已支付')
    expect(await page.locator('#message').textContent()).to.contain('支付成功')

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
  })

  it('shows a failed payment when Guanaitong notifies a failure (the sandbox-failing asset)', async () => {
    const id = await orderId()
    const failedBefore = shop.handled.failed
    await page.getByLabel('额度 (余额不足, sandbox: fails)').check()
    await page.locator('#pay').click()

    await page.locator('#order-status[data-status="failed"]').waitFor({ timeout: 15_000 })
    expect(await page.locator('#message').textContent()).to.contain('支付失败')
    expect(await page.locator('#new-order').isVisible()).to.equal(true)

    const payment = await shop.sandbox!.waitForAcknowledged(id)
    expect(payment.outcome).to.equal('failed')
    expect(payment.assetOpenId).to.equal(FAILING_ASSET_ID)
    expect(payment.attempts.at(-1)?.fields.trade_no).to.equal('')
    expect(shop.orders.get(id)!.status).to.equal('failed')
    expect(shop.handled.failed).to.equal(failedBefore + 1)

    // A new order pays normally: the failure switch was used up by the failed pay.
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
