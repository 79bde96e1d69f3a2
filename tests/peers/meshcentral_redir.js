#!/usr/bin/env node
'use strict'
/*
 * MeshCentral's bundled Intel AMT redirection stack (node_modules/meshcentral/amt/amt-redir-mesh.js) opening a
 * Serial-over-LAN session on an outband engine, headless.
 *
 * The stack is created as MeshCentral's server creates it (CreateAmtRedirect(module, domain, user, webserver,
 * meshcentral)); the server objects it consults are stand-ins holding one LAN device (connectivity 4, no
 * CIRA), a user with remote-control rights, and MeshCentral's own helpers (common.js, node-forge for MD5).
 * The stack itself does everything on the wire: StartRedirectionSession, the auth query, the digest (type 4)
 * login, MeshCommander's 0x27 after the SOL start reply, its heartbeats every 2 s, SOL data.
 *
 * One gap is MeshCentral's, not ours: the stack's SOL start (0x20) is commented out in amt-redir-mesh.js
 * (MeshCentral's browser-side terminal sends it), so once the login succeeds this driver sends exactly the
 * message that commented-out code builds (MeshCommander's settings), through the stack's own xxSend.
 *
 * Steps: login (the auth types the stack used), sol-start, command (uname -a answered by the simulated shell),
 * keepalive (still answering after the stack's 2 s heartbeat went out), stop.
 *
 * The stack always dials 16994 (16995 with TLS) of the device's address.
 *
 * usage: PEER_PASSWORD=... [REDIR_TRACE=1] node meshcentral_redir.js --host H [--tls] [--user admin]
 * Prints one JSON object: {results: [{step, ok, reason, data}], authTypes: [...], output: '...'}.
 */

const CreateAmtRedirect = require('meshcentral/amt/amt-redir-mesh').CreateAmtRedirect
const common = require('meshcentral/common')
const forge = require('node-forge')

const STEP_MS = 8000

function parseArgs (argv) {
  const args = { host: '127.0.0.1', tls: false, user: 'admin' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--host') args.host = argv[++i]
    else if (argv[i] === '--tls') args.tls = true
    else if (argv[i] === '--user') args.user = argv[++i]
  }
  return args
}

const args = parseArgs(process.argv.slice(2))
const results = []
const authTypes = []
let output = ''
const waiters = []

function record (step, ok, reason, data) { results.push({ step, ok, reason: reason || '', data: data === undefined ? null : data }) }

/** Resolve when the SOL output (from `from` on) matches `pattern`, or with null after STEP_MS. */
function outputMatches (pattern, from) {
  return new Promise((resolve) => {
    const check = () => { const m = output.slice(from).match(pattern); if (m) { resolve(m); return true } return false }
    if (check()) return
    const timer = setTimeout(() => { waiters.splice(waiters.indexOf(waiter), 1); resolve(null) }, STEP_MS)
    const waiter = () => { if (check()) { clearTimeout(timer); waiters.splice(waiters.indexOf(waiter), 1) } }
    waiters.push(waiter)
  })
}

// The inner module MeshCentral plugs into the redirection stack (its terminal relay): protocol 1 = SOL.
const terminal = {
  protocol: 1,
  state: 0,
  ProcessData (data) { output += Buffer.from(data, 'binary').toString('latin1'); for (const w of waiters.slice()) w() },
  Start () {},
  xxStateChange (state) { this.state = state; for (const w of stateWaiters.slice()) w() }
}
const stateWaiters = []
function stateReaches (state) {
  return new Promise((resolve) => {
    if (terminal.state === state) { resolve(true); return }
    const timer = setTimeout(() => { stateWaiters.splice(stateWaiters.indexOf(waiter), 1); resolve(false) }, STEP_MS)
    const waiter = () => {
      if (terminal.state === state) { clearTimeout(timer); stateWaiters.splice(stateWaiters.indexOf(waiter), 1); resolve(true) }
    }
    stateWaiters.push(waiter)
  })
}

const MESHRIGHT_REMOTECONTROL = 8
const node = { _id: 'node//outband', meshid: 'mesh//outband', host: args.host, intelamt: { user: args.user, pass: process.env.PEER_PASSWORD, tls: args.tls ? 1 : 0 } }
const user = { name: 'tester', links: { 'mesh//outband': { rights: MESHRIGHT_REMOTECONTROL } } }
const meshcentral = {
  debugLevel: process.env.REDIR_TRACE ? 4 : 0,
  db: { Get (id, callback) { callback(null, id === node._id ? [node] : []) } },
  GetConnectivityState (id) { return id === node._id ? { connectivity: 4 } : null },
  mpsserver: { GetConnectionToNode () { return null } },
  certificateOperations: { forge }
}

async function main () {
  const redir = CreateAmtRedirect(terminal, {}, user, { common }, meshcentral)
  redir.xtlsFingerprint = 0
  // Watch what the stack sends (auth types) and when its login succeeds (0x14 status 0 of a digest type).
  const send = redir.xxSend
  redir.xxSend = function (x) {
    const s = typeof x === 'string' ? x : x.toString('binary')
    if (s.charCodeAt(0) === 0x13) authTypes.push(s.charCodeAt(4))
    return send(x)
  }
  const onData = redir.xxOnSocketData
  let loggedIn = false
  redir.xxOnSocketData = function (data) {
    const authOk = !loggedIn && data.charCodeAt(0) === 0x14 && data.charCodeAt(1) === 0 && data.charCodeAt(4) !== 0
    onData(data)
    if (authOk) {
      loggedIn = true
      // amt-redir-mesh.js's commented-out SOL start: MaxTxBuffer 10000, TxTimeout 100, TxOverflowTimeout 0,
      // RxTimeout 10000, RxFlushTimeout 100, Heartbeat 0.
      const short = (v) => String.fromCharCode(v & 0xFF, (v >> 8) & 0xFF)
      redir.xxSend(String.fromCharCode(0x20, 0, 0, 0) + common.IntToStrX(redir.amtsequence++) + short(10000) +
        short(100) + short(0) + short(10000) + short(100) + short(0) + common.IntToStrX(0))
    }
  }

  redir.Start(node._id)
  const started = await stateReaches(3)
  record('login', loggedIn, loggedIn ? '' : 'the digest login did not succeed', { authTypes })
  record('sol-start', started, started ? '' : `SOL never became active (state ${terminal.state})`)
  if (!started) { redir.Stop(); return }

  let from = output.length
  redir.Send('uname -a\r')
  const uname = await outputMatches(/Linux \S+ \S+ #1 SMP x86_64 GNU\/Linux\r\n/, from)
  record('command', uname !== null, uname ? '' : 'no answer to uname -a', uname ? uname[0].trim() : output.slice(from))

  await new Promise((resolve) => setTimeout(resolve, 2500)) // the stack's 2 s heartbeat goes out meanwhile
  from = output.length
  redir.Send('echo meshcentral heartbeat\r')
  const echo = await outputMatches(/\r\nmeshcentral heartbeat\r\n/, from)
  record('keepalive', echo !== null && terminal.state === 3, echo ? '' : `no answer after a heartbeat (state ${terminal.state})`)

  redir.Stop()
  record('stop', terminal.state === 0, '')
}

main().catch((err) => record('driver', false, String(err && err.stack ? err.stack : err)))
  .finally(() => {
    console.log(JSON.stringify({ results, authTypes, output }))
    process.exit(0)
  })
