// The router's pay route against the sandbox at argv[2]. No notifyUrl and no preparePayment: the
// body carries every parameter and the sandbox has no notification to deliver.
import express from 'express'
import { guanaitong } from '../../dist/index.js'
import { APP_ID, APP_SECRET } from '../config.js'
import { announce } from './control.js'

const logger = { info() {}, debug() {}, warn() {}, error: (message, context) => console.error(message, context) }
const app = express()
app.use('/gat', guanaitong({ appId: APP_ID, appSecret: APP_SECRET, baseUrl: process.argv[2], onPaid: () => {}, logger }))
const server = app.listen(0, '127.0.0.1', () => announce(server))
