/**
 * The router over a real PostgreSQL and MariaDB: both channels settle through the SQL store, the
 * handler writes through ctx.tx, and every failure of the database or the handler is answered
 * `fail` with its reason, never `success`.
 */
import { expect } from 'chai'
import express from 'express'
import type { Server } from 'node:http'
import request from 'supertest'
import { guanaitong } from '../../src/adapters/express/router'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { encodeForm, signNotification } from '../../src/testing/sign-notification'
import type { GuanaitongOptions, Payment, SettleContext } from '../../src/kernel/types'
import { recordingLogger, routerBehindSandbox, sleep } from '../helpers'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MysqlStore, PostgresStore } from '../../src/stores'
import { MYSQL_URL, POSTGRES_URL, dropSchemaStatements, sqlTargets, uniqueTable, type ShopTable } from './sql-helpers'

const APP = { appId: '20110698', appSecret: 'sql-router-secret' }

let seq = 0
const orderNo = () => `SQ${Date.now() % 1e8}${++seq}`

for (const db of sqlTargets()) {
  describe(`router over ${db.name}`, () => {
    const table = uniqueTable('router')
    let shop: ShopTable
    let sandbox: Sandbox
    let server: Server
    let base: string
    let onPaid: (p: Payment, ctx: SettleContext) => Promise<void>
    const logger = recordingLogger()

    const mount = (options: Partial<GuanaitongOptions> = {}) => {
      ;({ server, base } = routerBehindSandbox(express, sandbox, {
        ...APP,
        logger,
        store: db.store({ table }),
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', total_amount: '19.90' }),
        onPaid: (p, _req, ctx) => onPaid(p, ctx),
        ...options,
      }))
    }

    before(async () => { shop = await db.shop() })
    after(async () => {
      await shop.drop()
      await db.drop(table)
      await db.end()
    })
    beforeEach(async () => {
      sandbox = createSandbox({ ...APP, timeScale: 0.001 })
      await sandbox.start()
      logger.lines.length = 0
      onPaid = async (p, ctx) => { await shop.write(ctx.tx, p.outerTradeNo) }
    })
    afterEach(async () => {
      await sandbox.close()
      server?.close()
    })

    it('the pay answer settles through ctx.tx; a notification after it is acknowledged without a second row', async () => {
      mount()
      sandbox.setNotifications('off')
      const outer = orderNo()
      const res = await request(base).post('/gat/pay').send({ outer_trade_no: outer, reason: '午餐', asset_type: '1', asset_open_id: 'a1' }).expect(200)
      expect(res.body.settled).to.equal(true)
      expect(await shop.count(outer)).to.equal(1)
      const late = sandbox.notify(`${base}/gat/notify`, {
        outer_trade_no: outer, trade_no: res.body.trade_no, total_amount: '19.90', buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
      })
      expect((await sandbox.waitForDelivery(late, 'acknowledged')).attempts.map((a) => a.body)).to.deep.equal(['success'])
      expect(await shop.count(outer)).to.equal(1)
    })

    it('the pay answer and the notification racing: one row, whichever wins, and the loser is told to come back', async () => {
      mount()
      const outer = orderNo()
      const res = await request(base).post('/gat/pay').send({ outer_trade_no: outer, reason: '午餐', asset_type: '1', asset_open_id: 'a1' }).expect(200)
      const payment = await sandbox.waitForAcknowledged(outer)
      expect(payment.attempts.at(-1)?.body).to.equal('success')
      expect(await shop.count(outer)).to.equal(1)
      // The only problem either channel may report is the other one holding the key.
      expect(logger.reasons().every((r) => r === 'IN_PROGRESS')).to.equal(true, JSON.stringify(logger.reasons()))
      if (!res.body.settled) expect(logger.reasons()).to.include('IN_PROGRESS')
    })

    it('a handler that throws after its write: the write is rolled back, Guanaitong retries, one row in the end', async () => {
      mount()
      const attempts: number[] = []
      onPaid = async (p, ctx) => {
        attempts.push(ctx.attempt)
        await shop.write(ctx.tx, p.outerTradeNo)
        if (attempts.length < 3) throw new Error('the shop failed after its write')
      }
      const outer = orderNo()
      sandbox.sendNotification({ notifyUrl: `${base}/gat/notify`, outerTradeNo: outer, totalAmount: '19.90' })
      const payment = await sandbox.waitForAcknowledged(outer)
      expect(payment.attempts.map((a) => a.body)).to.deep.equal(['fail', 'fail', 'success'])
      expect(attempts).to.deep.equal([1, 2, 3])
      expect(await shop.count(outer)).to.equal(1)
      expect(logger.reasons()).to.include('HANDLER_FAILED')
    })

    it('a handler past handlerTimeoutMs is answered fail, holds the key while it runs, and commits once it finishes', async () => {
      let finish!: () => void
      const finished = new Promise<void>((resolve) => { finish = resolve })
      onPaid = async (p, ctx) => {
        await shop.write(ctx.tx, p.outerTradeNo)
        await finished
      }
      mount({ handlerTimeoutMs: 100 })
      const outer = orderNo()
      const delivery = { notifyUrl: `${base}/gat/notify`, outerTradeNo: outer, totalAmount: '19.90' }
      const payment = sandbox.sendNotification(delivery)
      while (payment.attempts.length < 2) await sleep(20)
      expect(payment.attempts.slice(0, 2).map((a) => a.body)).to.deep.equal(['fail', 'fail'])
      expect(logger.reasons()).to.include.members(['HANDLER_TIMEOUT', 'IN_PROGRESS'])
      expect(await shop.count(outer)).to.equal(0, 'nothing is visible before the handler finished')
      finish()
      await sandbox.waitForAcknowledged(outer)
      expect(await shop.count(outer)).to.equal(1)
    })

    it('findOrder runs in the settlement transaction: it gets the same ctx.tx as onPaid', async () => {
      const seen: unknown[] = []
      onPaid = async (p, ctx) => {
        seen.push(ctx.tx)
        await shop.write(ctx.tx, p.outerTradeNo)
      }
      mount({
        findOrder: async (_no, _req, ctx) => {
          seen.push(ctx.tx)
          return { totalAmount: '19.90' }
        },
      })
      const outer = orderNo()
      sandbox.sendNotification({ notifyUrl: `${base}/gat/notify`, outerTradeNo: outer, totalAmount: '19.90' })
      await sandbox.waitForAcknowledged(outer)
      expect(seen).to.have.length(2)
      expect(seen[0]).to.not.equal(undefined)
      expect(seen[0]).to.equal(seen[1])
    })

    it('a database that cannot be reached: fail with STORE_FAILED, the handler never runs', async () => {
      let ran = false
      onPaid = async () => { ran = true }
      mount({ store: db.store({ table: 'gat_unreachable' }, db.unreachableUrl), storeTimeoutMs: 2000 })
      const res = await request(base).post('/gat/notify').type('form').send(encodeForm(signNotification({
        appid: APP.appId, outer_trade_no: orderNo(), trade_no: '2018070920000005', total_amount: '19.90', buyer_open_id: 'b1',
      }, APP.appSecret)))
      expect(res.text).to.equal('fail')
      expect(ran).to.equal(false)
      expect(logger.reasons()).to.include('STORE_FAILED')
      expect(JSON.stringify(logger.lines)).not.to.contain(APP.appSecret)
    })
  })
}

describe('ctx.tx is typed from the store', () => {
  // These compile without a cast only if guanaitong() carries the store's transaction type to onPaid.
  it('PostgresStore<pg.PoolClient> and MysqlStore (inferred from the mysql2 pool) give onPaid a typed ctx.tx', async () => {
    const pgPool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 })
    const myPool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 })
    const seen: unknown[] = []
    const tables = { postgres: uniqueTable('typed'), mysql: uniqueTable('typed') }
    try {
      const routers = [
        guanaitong({
          ...APP, payPath: false, logger: recordingLogger(),
          store: new PostgresStore<pg.PoolClient>({ pool: pgPool, table: tables.postgres }),
          onPaid: async (_p, _req, ctx) => { seen.push((await ctx.tx!.query('SELECT 1 AS one')).rows[0].one) },
        }),
        guanaitong({
          ...APP, payPath: false, logger: recordingLogger(),
          store: new MysqlStore({ pool: myPool, table: tables.mysql }),
          onPaid: async (_p, _req, ctx) => { seen.push((await ctx.tx!.query('SELECT 1 AS one'))[0]) },
        }),
      ]
      for (const [i, router] of routers.entries()) {
        const app = express().use('/gat', router)
        const body = encodeForm(signNotification({
          appid: APP.appId, outer_trade_no: `TY${Date.now() % 1e8}${i}`, trade_no: '2018070920000005', total_amount: '1.00', buyer_open_id: 'b1',
        }, APP.appSecret))
        await request(app).post('/gat/notify').type('form').send(body).expect(200, 'success')
      }
      expect(seen).to.deep.equal([1, [{ one: 1 }]])
    } finally {
      for (const statement of dropSchemaStatements('postgres', tables.postgres)) await pgPool.query(statement)
      for (const statement of dropSchemaStatements('mysql', tables.mysql)) await myPool.query(statement)
      await pgPool.end()
      await myPool.end()
    }
  })
})

