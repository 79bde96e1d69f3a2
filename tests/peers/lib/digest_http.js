'use strict'
/*
 * POST /wsman with HTTP Digest the way Open AMT's RPS and MPS do it (AMT-PROTOCOLS.md §2.2): the first request
 * goes out bare, the 401 challenge is kept, and every later request reuses its nonce with nc counting up and a
 * fresh cnonce; all parameters are quoted (nc="00000001", qop="auth").  A 401 on a request that carried
 * credentials means the nonce went stale (or the password is wrong): take the new challenge and retry once.
 * The Host header names the device the way MPS does through CIRA (`<uuid>:16992`), not host:port.
 */

const crypto = require('crypto')
const http = require('http')
const https = require('https')

const md5 = (text) => crypto.createHash('md5').update(text).digest('hex')

/** Parse `Digest realm="..", nonce="..",stale="false",qop="auth"` (values may hold `=` and `,` in quotes). */
function parseChallenge (header) {
  if (!header || !/^Digest\s/i.test(header)) return null
  const params = {}
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g
  let m
  while ((m = re.exec(header.slice(6))) !== null) params[m[1].toLowerCase()] = m[2] !== undefined ? m[2] : m[3]
  return params.realm && params.nonce ? params : null
}

class DigestClient {
  /**
   * @param {{host: string, port: number, user: string, password: string, tls?: boolean, hostHeader?: string,
   *          timeoutMs?: number}} options
   */
  constructor (options) {
    this.options = options
    this.challenge = null
    this.nc = 0
    const Agent = options.tls ? https.Agent : http.Agent
    // One kept-alive socket, as the Open AMT consoles hold one connection per device; AMT's self-signed
    // certificate is accepted (consoles pin it later, not at first contact).
    this.agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false })
  }

  authorization (body) {
    const c = this.challenge
    const qop = c.qop ? 'auth' : undefined
    const nc = ('0000000' + (++this.nc).toString(16)).slice(-8)
    const cnonce = crypto.randomBytes(8).toString('hex')
    const ha1 = md5(`${this.options.user}:${c.realm}:${this.options.password}`)
    const ha2 = md5('POST:/wsman')
    const response = qop ? md5(`${ha1}:${c.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${c.nonce}:${ha2}`)
    const fields = { username: this.options.user, realm: c.realm, nonce: c.nonce, uri: '/wsman' }
    if (qop) Object.assign(fields, { qop, nc, cnonce })
    fields.response = response
    return 'Digest ' + Object.entries(fields).map(([k, v]) => `${k}="${v}"`).join(',')
  }

  send (body, authorization) {
    const { host, port, tls, hostHeader, timeoutMs } = this.options
    const payload = Buffer.from(body, 'utf8')
    const headers = {
      Host: hostHeader || `${host}:${port}`,
      'Content-Type': 'application/soap+xml; charset=utf-8',
      'Content-Length': payload.length
    }
    if (authorization) headers.Authorization = authorization
    return new Promise((resolve, reject) => {
      const req = (tls ? https : http).request(
        { host, port, method: 'POST', path: '/wsman', headers, agent: this.agent, timeout: timeoutMs || 10000 },
        (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
          res.on('error', reject)
        })
      req.on('timeout', () => req.destroy(new Error(`no reply from ${host}:${port} within ${timeoutMs || 10000} ms`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** POST a WS-MAN envelope; resolves {status, headers, body}. */
  async post (body) {
    let reply = await this.send(body, this.challenge ? this.authorization(body) : undefined)
    if (reply.status === 401) {
      const challenge = parseChallenge(reply.headers['www-authenticate'])
      if (!challenge) return reply
      this.challenge = challenge
      this.nc = 0
      reply = await this.send(body, this.authorization(body))
    }
    return reply
  }

  close () { this.agent.destroy() }
}

module.exports = { DigestClient, parseChallenge }
