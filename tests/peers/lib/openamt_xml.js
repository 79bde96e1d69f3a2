'use strict'
/*
 * Reading a WS-MAN reply the way Open AMT's MPS and RPS read it.
 *
 * The object comes from xml2js itself, configured as RPS configures it (src/HttpHandler.ts: a Parser with
 * {ignoreAttrs: true, mergeAttrs: false, explicitArray: false, tagNameProcessors: [stripPrefix],
 * valueProcessors: [parseNumbers, parseBooleans]}, read through parseString's callback, which xml2js calls
 * before parseString returns when `async` is off): consumers then walk plain objects such as
 * `reply.Envelope.Body.PullResponse.Items.CIM_Chip`, where a repeated child is an array and a single one is not.
 *
 * xml2js is lenient where a broken reply should fail a test: it takes a DOCTYPE, and it never checks namespace
 * prefixes.  So the reply is also read by a small strict parser (parseDom): it refuses what is not well formed
 * (mismatched tags, bad entities, DOCTYPE, junk after the root) and reports undeclared prefixes in
 * `namespaceErrors` (a broken reply for any namespace-aware consumer, though not for xml2js).
 */

const xml2js = require('xml2js')

const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }
const NAME = /^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.\-]*)?$/

class XmlError extends Error {}

function decodeText (raw, where) {
  return raw.replace(/&([^;]{0,10});?/g, (match, ref) => {
    if (!match.endsWith(';')) throw new XmlError(`unterminated entity at ${where}`)
    if (ref in ENTITIES) return ENTITIES[ref]
    const num = /^#x([0-9a-fA-F]+)$/.exec(ref) || /^#([0-9]+)$/.exec(ref)
    if (num) return String.fromCodePoint(parseInt(num[1], ref[1] === 'x' ? 16 : 10))
    throw new XmlError(`unknown entity &${ref}; at ${where}`)
  })
}

function parseAttributes (text, where) {
  const attrs = []
  const re = /\s*([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/y
  let pos = 0
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break
    re.lastIndex = pos
    const m = re.exec(text)
    if (!m) throw new XmlError(`malformed attributes ${JSON.stringify(text.slice(pos, pos + 40))} at ${where}`)
    if (!NAME.test(m[1])) throw new XmlError(`bad attribute name ${m[1]} at ${where}`)
    attrs.push([m[1], decodeText(m[3] !== undefined ? m[3] : m[4], where)])
    pos = re.lastIndex
  }
  const names = attrs.map(([n]) => n)
  if (new Set(names).size !== names.length) throw new XmlError(`duplicate attribute at ${where}`)
  return attrs
}

/** Parse into a small DOM: {name, local, ns, attrs, children, text}.  Throws XmlError when not well formed. */
function parseDom (xml) {
  let pos = 0
  if (xml.charCodeAt(0) === 0xfeff) pos = 1
  const namespaceErrors = []
  const stack = []
  let root = null
  const scopes = [{ xml: XML_NS }]
  const lookup = (prefix) => {
    for (let i = scopes.length - 1; i >= 0; i--) if (prefix in scopes[i]) return scopes[i][prefix]
    return undefined
  }
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos)
    const text = xml.slice(pos, lt < 0 ? xml.length : lt)
    if (text.length) {
      if (!stack.length) {
        if (!/^\s*$/.test(text)) throw new XmlError(`text outside the root element at ${pos}`)
      } else {
        stack[stack.length - 1].text += decodeText(text, pos)
      }
    }
    if (lt < 0) break
    pos = lt
    if (xml.startsWith('<?', pos)) {
      const end = xml.indexOf('?>', pos)
      if (end < 0) throw new XmlError('unterminated processing instruction')
      pos = end + 2
    } else if (xml.startsWith('<!--', pos)) {
      const end = xml.indexOf('-->', pos)
      if (end < 0) throw new XmlError('unterminated comment')
      pos = end + 3
    } else if (xml.startsWith('<![CDATA[', pos)) {
      const end = xml.indexOf(']]>', pos)
      if (end < 0 || !stack.length) throw new XmlError('misplaced CDATA')
      stack[stack.length - 1].text += xml.slice(pos + 9, end)
      pos = end + 3
    } else if (xml.startsWith('<!', pos)) {
      throw new XmlError(`DOCTYPE or declaration not allowed at ${pos}`)
    } else if (xml.startsWith('</', pos)) {
      const end = xml.indexOf('>', pos)
      if (end < 0) throw new XmlError('unterminated end tag')
      const name = xml.slice(pos + 2, end).trim()
      const open = stack.pop()
      if (!open || open.name !== name) throw new XmlError(`end tag </${name}> does not match <${open && open.name}>`)
      scopes.pop()
      if (!stack.length) root = open
      pos = end + 1
    } else {
      const end = xml.indexOf('>', pos)
      if (end < 0) throw new XmlError('unterminated start tag')
      let inner = xml.slice(pos + 1, end)
      const selfClosing = inner.endsWith('/')
      if (selfClosing) inner = inner.slice(0, -1)
      const nameEnd = inner.search(/\s|$/)
      const name = inner.slice(0, nameEnd)
      if (!NAME.test(name)) throw new XmlError(`bad element name ${JSON.stringify(name)} at ${pos}`)
      if (!stack.length && root) throw new XmlError('a second root element')
      const attrs = parseAttributes(inner.slice(nameEnd), pos)
      const scope = {}
      for (const [attr, value] of attrs) {
        if (attr === 'xmlns') scope[''] = value
        else if (attr.startsWith('xmlns:')) scope[attr.slice(6)] = value
      }
      scopes.push(scope)
      const colon = name.indexOf(':')
      const prefix = colon < 0 ? '' : name.slice(0, colon)
      const ns = lookup(prefix)
      if (prefix && ns === undefined) namespaceErrors.push(`undeclared prefix ${prefix}: on <${name}>`)
      for (const [attr] of attrs) {
        const c = attr.indexOf(':')
        if (c > 0 && attr.slice(0, c) !== 'xmlns' && lookup(attr.slice(0, c)) === undefined) {
          namespaceErrors.push(`undeclared prefix ${attr.slice(0, c)}: on attribute ${attr} of <${name}>`)
        }
      }
      const node = { name, local: name.slice(colon + 1), ns, attrs, children: [], text: '' }
      if (stack.length) stack[stack.length - 1].children.push(node)
      if (selfClosing) {
        scopes.pop()
        if (!stack.length) root = node
      } else {
        stack.push(node)
      }
      pos = end + 1
    }
  }
  if (stack.length) throw new XmlError(`unclosed <${stack[stack.length - 1].name}>`)
  if (!root) throw new XmlError('no root element')
  return { root, namespaceErrors }
}

const OPEN_AMT_OPTIONS = {
  ignoreAttrs: true,
  mergeAttrs: false,
  explicitArray: false,
  tagNameProcessors: [xml2js.processors.stripPrefix],
  valueProcessors: [xml2js.processors.parseNumbers, xml2js.processors.parseBooleans]
}

/** The reply as xml2js gives it to RPS (throws when xml2js refuses it). */
function parseWithXml2js (xml) {
  let outcome = null
  new xml2js.Parser(OPEN_AMT_OPTIONS).parseString(xml, (err, result) => { outcome = outcome || { err, result } })
  if (outcome === null) throw new XmlError('xml2js did not answer synchronously')
  if (outcome.err) throw new XmlError(`xml2js: ${outcome.err.message}`)
  return outcome.result
}

/** `{object, dom, namespaceErrors}`: object as Open AMT's consumers see it, e.g. object.Envelope.Body. */
function parseLikeOpenAmt (xml) {
  const { root, namespaceErrors } = parseDom(xml)
  return { object: parseWithXml2js(xml), dom: root, namespaceErrors }
}

/** A value as a list, the way consumers normalise xml2js's single-or-array children. */
function asList (value) {
  if (value === undefined || value === '') return []
  return Array.isArray(value) ? value : [value]
}

module.exports = { parseLikeOpenAmt, parseDom, asList, XmlError }
