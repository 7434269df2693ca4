// Baseline: a bare Express app, express.urlencoded() and a handler answering `success`.
import express from 'express'
import { announce } from './control.js'

const app = express()
app.use(express.urlencoded())
app.post('/gat/notify', (req, res) => {
  res.send('success')
})
const server = app.listen(0, '127.0.0.1', () => announce(server))
