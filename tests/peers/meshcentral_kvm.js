#!/usr/bin/env node
'use strict'
/*
 * MeshCentral's bundled Intel AMT KVM stack opening a remote desktop on an outband engine, headless.
 *
 * MeshCentral runs AMT KVM in the browser: public/scripts/amt-redir-ws-0.1.0.js (the redirection protocol:
 * StartRedirectionSession with the KVMR tag, the auth query, the digest type 4 login, the 0x40/0x41 channel
 * opening) under public/scripts/amt-desktop-0.0.2.js (the RFB client: handshake, SetEncodings RLE+RAW+Intel
 * extensions+DesktopSize, optional SetPixelFormat, RLE/RAW tile decoding, key events), talking through the
 * server's web relay (webrelay.ashx?p=2), which copies bytes between the WebSocket and AMT's port unchanged.
 * This driver loads those scripts unmodified (with zlib.js/zlib-inflate.js and common-0.0.1.js, as the page
 * does) into a node vm context and gives them what a browser would: a WebSocket that is that byte relay
 * (a TCP or TLS socket to the engine), a canvas whose 2D context draws into memory (createImageData /
 * putImageData / fillRect with 'rgb(r,g,b)'), window.location, and MD5 for the digest.
 *
 * Steps: connect (login + channel), server-init (the desktop size), frames (tiles drawn), typed (keys sent with
 * the desktop's own sendkey and the picture changed afterwards), stop.  The final canvas is printed (RGB,
 * base64) for the test to read back into text.
 *
 * usage: PEER_PASSWORD=... node meshcentral_kvm.js --host H --port P [--tls] [--user admin] [--bpp 1|2] [--zlib]
 *        [--type TEXT]
 * Prints one JSON object: {results: [{step, ok, reason, data}], width, height, rgb: base64, authTypes: [...]}.
 */

const crypto = require('crypto')
const fs = require('fs')
const net = require('net')
const path = require('path')
const tls = require('tls')
const vm = require('vm')

const STEP_MS = 10000
const SCRIPTS = ['zlib.js', 'zlib-inflate.js', 'zlib-adler32.js', 'zlib-crc32.js', 'common-0.0.1.js',
  'amt-redir-ws-0.1.0.js', 'amt-desktop-0.0.2.js']

function parseArgs (argv) {
  const args = { host: '127.0.0.1', port: 16994, tls: false, user: 'admin', bpp: 2, zlib: false, type: 'echo mesh-kvm' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--host') args.host = argv[++i]
    else if (argv[i] === '--port') args.port = Number(argv[++i])
    else if (argv[i] === '--tls') args.tls = true
    else if (argv[i] === '--user') args.user = argv[++i]
    else if (argv[i] === '--bpp') args.bpp = Number(argv[++i])
    else if (argv[i] === '--zlib') args.zlib = true
    else if (argv[i] === '--type') args.type = argv[++i]
  }
  return args
}

const args = parseArgs(process.argv.slice(2))
const results = []
const authTypes = []
function record (step, ok, reason, data) { results.push({ step, ok, reason: reason || '', data: data === undefined ? null : data }) }

// ---------------------------------------------------------------------------------------------- the canvas

/** A canvas element whose 2D context draws into an RGBA buffer. */
function makeCanvas () {
  const element = { style: {}, offsetWidth: 0, offsetHeight: 0, offsetLeft: 0, offsetTop: 0, offsetParent: null }
  let width = 0
  let height = 0
  let pixels = new Uint8ClampedArray(0)
  const resize = () => { pixels = new Uint8ClampedArray(width * height * 4) }
  Object.defineProperty(element, 'width', { get: () => width, set: (w) => { width = w; resize() } })
  Object.defineProperty(element, 'height', { get: () => height, set: (h) => { height = h; resize() } })
  const context = {
    canvas: element,
    fillStyle: '#000000',
    draws: 0,
    fillRect (x, y, w, h) {
      const colour = parseColour(this.fillStyle)
      for (let row = Math.max(0, y); row < Math.min(height, y + h); row++) {
        for (let col = Math.max(0, x); col < Math.min(width, x + w); col++) {
          pixels.set([colour[0], colour[1], colour[2], 255], (row * width + col) * 4)
        }
      }
      this.draws++
    },
    createImageData (w, h) { return { width: w, height: h, data: new Uint8ClampedArray(w * h * 4) } },
    putImageData (image, x, y) {
      for (let row = 0; row < image.height && y + row < height; row++) {
        const from = row * image.width * 4
        const span = Math.min(image.width, width - x) * 4
        pixels.set(image.data.subarray(from, from + span), ((y + row) * width + x) * 4)
      }
      this.draws++
    },
    setTransform () {},
    rotate () {},
    drawImage () {}
  }
  element.getContext = () => context
  element.rgb = () => {
    const out = Buffer.alloc(width * height * 3)
    for (let i = 0, j = 0; i < pixels.length; i += 4, j += 3) { out[j] = pixels[i]; out[j + 1] = pixels[i + 1]; out[j + 2] = pixels[i + 2] }
    return out
  }
  return element
}

function parseColour (style) {
  const rgb = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(String(style).replace(/\s/g, ''))
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])]
  const hex = /^#([0-9a-f]{6})$/i.exec(String(style))
  if (hex) return [0, 2, 4].map((i) => parseInt(hex[1].substr(i, 2), 16))
  throw new Error(`unexpected fillStyle ${style}`)
}

// ---------------------------------------------------------------------------------------------- the relay

/** The browser WebSocket to MeshCentral's web relay, as the byte copy to the device's port it amounts to. */
class RelaySocket {
  constructor (url) {
    const query = new URL(url).searchParams
    this.readyState = 0
    this.binaryType = 'blob'
    const port = Number(query.get('port'))
    const host = query.get('host')
    const connected = () => { this.readyState = 1; if (this.onopen) this.onopen() }
    this.sock = query.get('tls') === '1'
      ? tls.connect({ host, port, rejectUnauthorized: false }, connected)
      : net.connect({ host, port }, connected)
    this.sock.on('data', (chunk) => {
      if (this.onmessage) this.onmessage({ data: chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length) })
    })
    this.sock.on('close', () => { this.readyState = 3; if (this.onclose) this.onclose() })
    this.sock.on('error', () => {})
  }

  send (data) {
    const bytes = Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
    if (bytes[0] === 0x13) authTypes.push(bytes[4])
    this.sock.write(bytes)
  }

  close () { this.sock.destroy() }
}
RelaySocket.OPEN = 1

// ---------------------------------------------------------------------------------------------- the page

function loadPage (canvas) {
  const elements = { Desk: canvas }
  const sandbox = {
    console,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    WebSocket: RelaySocket,
    alert: (message) => { throw new Error(message) },
    window: { location: { protocol: 'https:', host: 'meshcentral.invalid', pathname: '/amt/desktop' } },
    document: { getElementById: (id) => elements[id] || null, createElement: () => makeCanvas() },
    hex_md5: (s) => crypto.createHash('md5').update(Buffer.from(s, 'binary')).digest('hex'),
    urlvars: null
  }
  sandbox.window.document = sandbox.document
  vm.createContext(sandbox)
  const dir = path.join(path.dirname(require.resolve('meshcentral/package.json')), 'public', 'scripts')
  for (const name of SCRIPTS) vm.runInContext(fs.readFileSync(path.join(dir, name), 'utf8'), sandbox, { filename: name })
  return sandbox
}

function until (predicate, ms = STEP_MS) {
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

const quiet = (context, ms) => new Promise((resolve) => {
  let last = context.draws
  const check = () => { if (context.draws === last) resolve(); else { last = context.draws; setTimeout(check, ms) } }
  setTimeout(check, ms)
})

async function main () {
  const canvas = makeCanvas()
  const context = canvas.getContext('2d')
  const page = loadPage(canvas)
  const desktop = page.CreateAmtRemoteDesktop('Desk')
  desktop.bpp = args.bpp
  if (args.zlib) { desktop.useZLib = true; desktop.kvmExtChanged = () => {} }
  const redir = page.CreateAmtRedirect(desktop)
  let state = 0
  redir.onStateChanged = (_, s) => { state = s }
  redir.Start(args.host, args.port, args.user, process.env.PEER_PASSWORD, args.tls ? 1 : 0)

  const connected = await until(() => state === 3 || state === 0 && redir.connectstate === -1)
  record('connect', state === 3, state === 3 ? '' : `redirection state ${state}`, { authTypes })
  if (state !== 3) return
  const initialised = await until(() => desktop.state >= 4)
  record('server-init', initialised && connected, initialised ? '' : `RFB state ${desktop.state}`,
    { width: desktop.width, height: desktop.height })
  if (!initialised) { redir.Stop(); return }
  const drawn = await until(() => context.draws >= 1)
  await quiet(context, 300)
  record('frames', drawn, drawn ? '' : 'no tile was drawn', context.draws)

  const before = context.draws
  for (const ch of args.type) { desktop.sendkey(ch.charCodeAt(0), 1); desktop.sendkey(ch.charCodeAt(0), 0) }
  desktop.sendkey(0xff0d, 1)
  desktop.sendkey(0xff0d, 0)
  const changed = await until(() => context.draws > before)
  await quiet(context, 400)
  record('typed', changed, changed ? '' : 'the picture did not change after the keys', context.draws - before)
  picture = { width: canvas.width, height: canvas.height, rgb: canvas.rgb().toString('base64') }

  redir.Stop()  // the desktop blanks its canvas on stop: the picture was taken before
  record('stop', state === 0, '')
}

let picture = { width: 0, height: 0, rgb: '' }

main().catch((err) => record('driver', false, String(err && err.stack ? err.stack : err)))
  .finally(() => {
    // the picture is large: exit only once stdout (a pipe) has taken all of it
    process.stdout.write(JSON.stringify({ results, authTypes, ...picture }) + '\n', () => process.exit(0))
  })
