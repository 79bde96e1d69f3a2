#!/usr/bin/env node
'use strict'
/*
 * MeshCentral's bundled Intel AMT IDE-R stack serving disk images to an outband engine, headless.
 *
 * MeshCentral's server runs IDE-R itself: amt/amt-ider-module.js (CreateAmtRemoteIder: START_IDER, the
 * enable request with a start mode, the ATAPI command handling over the image files, read chunks of AMT's
 * buffer size, sequence checks) inside amt/amt-redir-mesh.js (the redirection protocol: StartRedirectionSession
 * with the IDER tag, the auth query, the digest type 4 login).  Both run unmodified; the server objects they
 * consult are stand-ins holding one LAN device (connectivity 4, no CIRA) and a user with remote-control
 * rights, plus MeshCentral's own helpers (common.js, node-forge for MD5) -- as meshcentral_redir.js does.
 *
 * The driver attaches the images and waits while the engine's firmware boots from them (the test drives that);
 * it ends when the session ends (the engine or the test closes it) or after --wait seconds.
 *
 * Steps: disk-setup, connect (login + IDE-R open + drives enabled), served (commands answered), end.
 *
 * usage: PEER_PASSWORD=... node meshcentral_ider.js --host H [--tls] [--user admin] (--cd FILE | --floppy FILE)
 *        [--start 0|1|2] [--wait SECONDS]
 * Prints one JSON object: {results: [...], authTypes: [...], bytesToAmt, iderinfo}; the served step lists the
 * reads ([drive, first block, blocks]).
 */

const CreateAmtRedirect = require('meshcentral/amt/amt-redir-mesh').CreateAmtRedirect
const CreateAmtRemoteIder = require('meshcentral/amt/amt-ider-module').CreateAmtRemoteIder
const common = require('meshcentral/common')
const forge = require('node-forge')

function parseArgs (argv) {
  const args = { host: '127.0.0.1', tls: false, user: 'admin', cd: null, floppy: null, start: 2, wait: 30 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--host') args.host = argv[++i]
    else if (argv[i] === '--tls') args.tls = true
    else if (argv[i] === '--user') args.user = argv[++i]
    else if (argv[i] === '--cd') args.cd = argv[++i]
    else if (argv[i] === '--floppy') args.floppy = argv[++i]
    else if (argv[i] === '--start') args.start = Number(argv[++i])
    else if (argv[i] === '--wait') args.wait = Number(argv[++i])
  }
  return args
}

const args = parseArgs(process.argv.slice(2))
const results = []
const authTypes = []
function record (step, ok, reason, data) { results.push({ step, ok, reason: reason || '', data: data === undefined ? null : data }) }

const MESHRIGHT_REMOTECONTROL = 8
const node = { _id: 'node//outband', meshid: 'mesh//outband', host: args.host, intelamt: { user: args.user, pass: process.env.PEER_PASSWORD, tls: args.tls ? 1 : 0 } }
const user = { name: 'tester', links: { 'mesh//outband': { rights: MESHRIGHT_REMOTECONTROL } } }
const meshcentral = {
  debugLevel: 0,
  db: { Get (id, callback) { callback(null, id === node._id ? [node] : []) } },
  GetConnectivityState (id) { return id === node._id ? { connectivity: 4 } : null },
  mpsserver: { GetConnectionToNode () { return null } },
  certificateOperations: { forge }
}

function until (predicate, ms) {
  return new Promise((resolve) => {
    const started = Date.now()
    const poll = () => {
      if (predicate()) resolve(true)
      else if (Date.now() - started > ms) resolve(false)
      else setTimeout(poll, 20)
    }
    poll()
  })
}

let ider = null
const reads = []

async function main () {
  ider = CreateAmtRemoteIder({ common }, meshcentral)
  ider.iderStart = args.start
  const setup = ider.diskSetup(args.floppy, args.cd)
  record('disk-setup', setup === 0, setup === 0 ? '' : `diskSetup returned ${setup}`)
  if (setup !== 0) return
  let stopped = false
  const stop = ider.Stop
  ider.Stop = function () { stopped = true; return stop.apply(this, arguments) }
  const redir = CreateAmtRedirect(ider, {}, user, { common }, meshcentral)
  redir.xtlsFingerprint = 0
  const send = redir.xxSend
  redir.xxSend = function (x) {
    const s = typeof x === 'string' ? x : x.toString('binary')
    if (s.charCodeAt(0) === 0x13) authTypes.push(s.charCodeAt(4))
    return send(x)
  }
  // The enable request's reply (0x49 type 3, value 1) is the stack's "drives attached"; watch for it.
  let enabled = false
  const processEx = ider.ProcessDataEx
  ider.ProcessDataEx = function () {
    if (ider.acc && ider.acc[0] === 0x49 && ider.acc.length >= 13 && ider.acc[8] === 3 && ider.acc.readUInt32LE(9) === 1) enabled = true
    return processEx.apply(this, arguments)
  }
  ider.sectorStats = (mode, device, total, lba, count) => { if (mode === 1) reads.push([device ? 'cd' : 'floppy', lba, count]) }
  redir.Start(node._id)
  const attached = await until(() => enabled || stopped, 10000)
  record('connect', enabled, enabled ? '' : 'the drives were never attached', { iderinfo: ider.iderinfo })
  if (!enabled) { redir.Stop(); return }
  await until(() => stopped, args.wait * 1000)
  record('served', attached && reads.length > 0, reads.length ? '' : 'the device read nothing', reads)
  if (!stopped) redir.Stop()
  record('end', true, '', stopped ? 'ended by the device' : 'timed out')
}

main().catch((err) => record('driver', false, String(err && err.stack ? err.stack : err)))
  .finally(() => {
    console.log(JSON.stringify({ results, authTypes, bytesToAmt: ider ? ider.bytesToAmt : 0, iderinfo: ider ? ider.iderinfo : null }))
    setImmediate(() => process.exit(0))
  })
