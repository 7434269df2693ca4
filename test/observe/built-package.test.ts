/**
 * `@opentelemetry/api` is an optional peer dependency: the built package, installed where it
 * cannot be found, must load (ESM and CommonJS) and take a payment end to end; installed where it
 * is found, both builds must use it.
 */
import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..', '..')
const RUNTIME_DEPENDENCIES = ['express', 'iconv-lite']

/** Pay through the router against the sandbox (which settles on the answer), wait for the acknowledged notification, print what happened. */
const probe = (format: 'esm' | 'cjs') => `
  ${format === 'esm'
    ? `import express from 'express'
       import { guanaitong } from 'express-guanaitong'
       import { createSandbox } from 'express-guanaitong/testing'
       import { tracingChannel } from 'node:diagnostics_channel'`
    : `const express = require('express')
       const { guanaitong } = require('express-guanaitong')
       const { createSandbox } = require('express-guanaitong/testing')
       const { tracingChannel } = require('node:diagnostics_channel')`}
  const events = []
  tracingChannel('guanaitong:notify').subscribe({ start() {}, end() {}, asyncStart() {}, error() {},
    asyncEnd(context) { events.push(context.source + ':' + context.result.reason) } })
  const main = async () => {
    const sandbox = createSandbox({ appId: '20110698', appSecret: 'sandbox-secret', timeScale: 0.001 })
    await sandbox.start()
    const app = express()
    const server = app.listen(0, '127.0.0.1')
    await new Promise((done) => server.once('listening', done))
    const shop = 'http://127.0.0.1:' + server.address().port
    let paid = 0
    const quiet = { warn() {}, error() {} }
    app.use('/gat', guanaitong({ appId: '20110698', appSecret: 'sandbox-secret', baseUrl: sandbox.url,
      notifyUrl: shop + '/gat/notify', logger: quiet, onPaid() { paid += 1 },
      preparePayment: (req, params) => ({ ...params, buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', total_amount: '9.90' }) }))
    const res = await fetch(shop + '/gat/pay', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outer_trade_no: 'NOOTEL' + Date.now() % 1e8, reason: 'lunch', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' }) })
    const body = await res.json()
    const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
    console.log(JSON.stringify({ status: res.status, answers: payment.attempts.map((a) => a.body), paid, events }))
    server.close()
    await sandbox.close()
  }
  main().catch((err) => { console.error(err); process.exit(1) })
`

describe('observability: the package without @opentelemetry/api installed', function () {
  this.timeout(60_000)
  let work: string
  let installed: string

  before(() => {
    if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
    // Outside the repository: nothing on the resolution path holds @opentelemetry/api.
    work = mkdtempSync(join(tmpdir(), 'gat-no-otel-'))
    installed = join(work, 'node_modules', 'express-guanaitong')
    mkdirSync(installed, { recursive: true })
    cpSync(join(root, 'package.json'), join(installed, 'package.json'))
    cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true })
    // The package's own dependencies (and express), linked: they resolve theirs from the repository.
    for (const name of RUNTIME_DEPENDENCIES) symlinkSync(join(root, 'node_modules', name), join(work, 'node_modules', name))
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  it('the installed package cannot see @opentelemetry/api (the premise of this test)', () => {
    const fromPackage = createRequire(join(installed, 'dist', 'index.cjs'))
    expect(() => fromPackage.resolve('@opentelemetry/api')).to.throw(/Cannot find module/)
  })

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format === 'esm' ? 'ESM' : 'CommonJS'}: loads, pays, takes the notification (success) and still publishes channel events`, () => {
      const file = join(work, format === 'esm' ? 'probe.mjs' : 'probe.cjs')
      writeFileSync(file, probe(format))
      const out = JSON.parse(execFileSync(process.execPath, [file], { cwd: work, timeout: 30_000 }).toString().trim().split('\n').pop()!)
      // The pay answer settles the order; the notification then finds it done (or, arriving while the
      // pay's settlement still holds it, is answered IN_PROGRESS and retried).
      expect(out).to.deep.include({ status: 200, paid: 1 })
      expect(out.answers.at(-1)).to.equal('success')
      expect(out.events[0]).to.equal('pay:HANDLED')
      expect(out.events.slice(1, -1).every((e: string) => e === 'notify:IN_PROGRESS')).to.equal(true)
      expect(out.events.at(-1)).to.equal('notify:DUPLICATE')
    })
  }
})

/** Registers an SDK, gets a token from the sandbox through the built client, prints the span names. */
const tracedProbe = (format: 'esm' | 'cjs') => `
  ${format === 'esm'
    ? `import { createClient } from 'express-guanaitong'
       import { createSandbox } from 'express-guanaitong/testing'
       import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
       import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'`
    : `const { createClient } = require('express-guanaitong')
       const { createSandbox } = require('express-guanaitong/testing')
       const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
       const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node')`}
  const exporter = new InMemorySpanExporter()
  new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register()
  const main = async () => {
    const sandbox = createSandbox({ appId: '20110698', appSecret: 'sandbox-secret' })
    await sandbox.start()
    await createClient({ appId: '20110698', appSecret: 'sandbox-secret', baseUrl: sandbox.url }).getToken()
    await sandbox.close()
    console.log(JSON.stringify(exporter.getFinishedSpans().map((s) => s.name)))
  }
  main().catch((err) => { console.error(err); process.exit(1) })
`

describe('observability: the built package with @opentelemetry/api installed', function () {
  this.timeout(60_000)
  // Inside the repository, so @opentelemetry/api and the SDK resolve from our node_modules.
  const work = join(root, '.tmp', 'otel-probe')

  before(() => {
    if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
    rmSync(work, { recursive: true, force: true })
    const installed = join(work, 'node_modules', 'express-guanaitong')
    mkdirSync(installed, { recursive: true })
    cpSync(join(root, 'package.json'), join(installed, 'package.json'))
    cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true })
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format === 'esm' ? 'ESM' : 'CommonJS'} build: finds the API and records spans`, () => {
      const file = join(work, format === 'esm' ? 'probe.mjs' : 'probe.cjs')
      writeFileSync(file, tracedProbe(format))
      const names = JSON.parse(execFileSync(process.execPath, [file], { cwd: work, timeout: 30_000 }).toString().trim().split('\n').pop()!)
      expect(names).to.deep.equal(['guanaitong.api', 'guanaitong.token.refresh'])
    })
  }
})
