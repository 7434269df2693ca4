// The cashier page (收银台): creates an order, lists the employee's assets, pays through
// POST /gat/pay. When the pay answer settled the order (settled: true) it is paid at once; otherwise
// the page polls the order until the notification has run the shop's onPaid / onPayFailed.
'use strict'

const $ = (id) => document.getElementById(id)
const POLL_MS = 500
const POLL_LIMIT_MS = 5 * 60 * 1000

const STATUS_TEXT = {
  loading: '加载中 Loading…',
  pending: '待支付 Awaiting payment',
  paying: '等待关爱通通知 Waiting for Guanaitong…',
  paid: '已支付 Paid',
  failed: '支付失败 Payment failed',
}

let order = null
let pollTimer = null

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  })
  let data = null
  try {
    data = await res.json()
  } catch {
    // not JSON: an HTML error page from a proxy, say
  }
  return { ok: res.ok, status: res.status, data }
}

function setStatus(status) {
  const el = $('order-status')
  el.dataset.status = status
  el.textContent = STATUS_TEXT[status] || status
}

function say(text, kind) {
  const el = $('message')
  el.hidden = !text
  el.textContent = text || ''
  el.className = `message${kind ? ` ${kind}` : ''}`
}

function selectedAsset() {
  const input = document.querySelector('input[name="asset"]:checked')
  return input ? { asset_open_id: input.value, asset_type: input.dataset.type } : null
}

function refreshButton() {
  const payable = order && order.status === 'pending' && !pollTimer
  $('pay').disabled = !(payable && selectedAsset())
}

function showOrder(o) {
  order = o
  $('order-id').textContent = o.id
  $('order-title').textContent = o.title
  $('order-amount').textContent = `¥${o.amount}`
  setStatus(o.status)
}

function renderAssets(assets) {
  const box = $('assets')
  box.querySelectorAll('.asset, .muted').forEach((el) => el.remove())
  for (const asset of assets) {
    const label = document.createElement('label')
    label.className = 'asset'
    const input = document.createElement('input')
    input.type = 'radio'
    input.name = 'asset'
    input.value = asset.asset_open_id
    input.dataset.type = asset.asset_type
    input.addEventListener('change', refreshButton)
    const name = document.createElement('span')
    name.className = 'name'
    name.textContent = asset.name
    const balance = document.createElement('span')
    balance.className = 'balance'
    balance.textContent = `余额 ${asset.balance}`
    label.append(input, name, balance)
    box.append(label)
  }
}

function stopPolling() {
  clearTimeout(pollTimer)
  pollTimer = null
}

async function showPaid(paidOrder) {
  showOrder(paidOrder)
  say(`支付成功 Paid with ${paidOrder.assetName || 'Guanaitong'} · 关爱通交易号 trade no. ${paidOrder.tradeNo}`, 'ok')
  $('new-order').hidden = false
  await loadSession() // the balance went down
}

/** Polls GET /orders/:id until the notification has been handled. */
function waitForNotification(started = Date.now()) {
  pollTimer = setTimeout(async () => {
    let res
    try {
      res = await api('GET', `/orders/${encodeURIComponent(order.id)}`)
    } catch {
      res = { ok: false }
    }
    if (res.ok && res.data.status === 'paid') {
      stopPolling()
      await showPaid(res.data)
      return
    }
    if (res.ok && res.data.status === 'failed') {
      stopPolling()
      showOrder(res.data)
      // The status badge already says 支付失败; the message says why and what to do.
      say(`${res.data.message || '关爱通通知此次支付未成功 Guanaitong reported that the payment did not go through'} — 请新建订单重试 start a new order to try again.`, 'error')
      $('new-order').hidden = false
      return
    }
    if (Date.now() - started > POLL_LIMIT_MS) {
      stopPolling()
      say('仍在等待关爱通通知，请稍后刷新 Still waiting for Guanaitong\'s notification: check again later.', 'error')
      return
    }
    waitForNotification(started)
  }, POLL_MS)
}

async function pay(event) {
  event.preventDefault()
  const asset = selectedAsset()
  if (!order || !asset) return
  $('pay').disabled = true
  say('正在提交 Sending the payment…')
  let res
  try {
    res = await api('POST', '/gat/pay', { outer_trade_no: order.id, ...asset })
  } catch {
    res = { ok: false, status: 0, data: { msg: '网络错误 the shop could not be reached' } }
  }
  if (res.ok && res.data.settled === true) {
    // The pay answer settled the order (docs/settlement.md): no need to wait for the notification.
    const settled = await api('GET', `/orders/${encodeURIComponent(order.id)}`).catch(() => ({ ok: false }))
    if (settled.ok && settled.data.status === 'paid') {
      await showPaid(settled.data)
      refreshButton()
      return
    }
  }
  if (res.ok) {
    setStatus('paying')
    say(`已提交 Sent (关爱通交易号 trade no. ${res.data.trade_no}); 等待关爱通通知 waiting for Guanaitong's notification…`)
    waitForNotification()
    refreshButton()
    return
  }
  const msg = (res.data && res.data.msg) || `HTTP ${res.status}`
  if (res.data && res.data.ambiguous) {
    // A timeout or a garbled answer after sending: the payment may have gone through.
    setStatus('paying')
    say(`支付结果未知 Payment outcome unknown: ${msg}. Waiting for Guanaitong's notification…`, 'error')
    waitForNotification()
    return
  }
  say(`支付被拒绝 Payment refused (HTTP ${res.status}): ${msg}`, 'error')
  // Nothing was charged: the employee may try again with another asset, or start a new order.
  $('new-order').hidden = false
  refreshButton()
}

async function newOrder() {
  stopPolling()
  say('')
  $('new-order').hidden = true
  setStatus('loading')
  const res = await api('POST', '/orders')
  if (!res.ok) {
    say(`无法创建订单 Could not create an order (HTTP ${res.status})`, 'error')
    return
  }
  showOrder(res.data)
  refreshButton()
}

/** The employee and their assets with their balances; false when the shop could not be asked. */
async function loadSession() {
  const session = await api('GET', '/session')
  if (!session.ok) {
    say(`无法加载 Could not load the session (HTTP ${session.status})`, 'error')
    return false
  }
  $('employee').textContent = session.data.employee.name
  if (session.data.mode === 'sandbox') {
    $('mode').hidden = false
    $('mode').textContent = '沙箱 sandbox'
  }
  renderAssets(session.data.assets)
  refreshButton()
  return true
}

async function init() {
  $('pay-form').addEventListener('submit', pay)
  $('new-order').addEventListener('click', newOrder)
  if (await loadSession()) await newOrder()
}

init()
