import { expect } from 'chai'
import express from 'express'
import request from 'supertest'
import { dedupeNotification } from '../../src/adapters/express/dedupe'
import { handleNotification } from '../../src/adapters/express/handle'
import { parseNotification } from '../../src/adapters/express/parse'
import { verifyNotification } from '../../src/adapters/express/verify'
import { MemoryStore } from '../../src/stores/memory'
import type { Notification } from '../../src/kernel/types'
import { APP_ID, SECRET, formBody, paidFields, recordingLogger } from '../helpers'

describe('notification middleware used alone', () => {
  it('parse + verify leave the typed notification on res.locals for a hand-written handler', async () => {
    const logger = recordingLogger()
    const app = express()
    app.post('/hook', parseNotification({ logger }), verifyNotification({ appId: APP_ID, appSecret: SECRET, logger }),
      (_req, res) => { res.json(res.locals.guanaitong.notification) })
    const fields = paidFields()
    const res = await request(app).post('/hook').type('form').send(formBody(fields))
    expect(res.body).to.include({ outerTradeNo: fields.outer_trade_no, totalFen: 10000 })
    const bad = await request(app).post('/hook').type('form').send(formBody({ ...fields, sign: 'f'.repeat(40) }))
    expect(bad.text).to.equal('fail')
    expect(logger.reasons()).to.deep.equal(['BAD_SIGN'])
  })

  it('the four pieces compose into the same pipeline the router builds, sharing one store', async () => {
    const store = new MemoryStore()
    const seen: Notification[] = []
    const app = express()
    const logger = recordingLogger()
    app.post('/n', parseNotification({ logger }), verifyNotification({ appId: APP_ID, appSecret: SECRET, logger }),
      dedupeNotification({ store, logger }), handleNotification({ onPaid: (n) => { seen.push(n) }, logger }))
    const body = formBody(paidFields())
    expect((await request(app).post('/n').type('form').send(body)).text).to.equal('success')
    expect((await request(app).post('/n').type('form').send(body)).text).to.equal('success')
    expect(seen).to.have.length(1)
  })

  it('a piece used out of order answers fail with a message naming what is missing', async () => {
    const logger = recordingLogger()
    const app = express()
    app.post('/n', verifyNotification({ appId: APP_ID, appSecret: SECRET, logger }))
    const res = await request(app).post('/n').type('form').send(formBody(paidFields()))
    expect(res.text).to.equal('fail')
    expect(logger.lines[0].message).to.contain('needs parseNotification before it')
  })
})
