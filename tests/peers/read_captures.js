#!/usr/bin/env node
'use strict'
/*
 * Self-check of lib/openamt_xml.js, the reader the Open AMT tests judge the engine with: every real-firmware
 * capture in a directory must parse, without namespace errors, into the shapes Open AMT's consumers read.
 * usage: node read_captures.js DIR  ->  {files, problems: [...], shapes: {relative path: Body as read}}
 */

const fs = require('fs')
const path = require('path')
const { parseLikeOpenAmt } = require('./lib/openamt_xml')

function xmlFiles (dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return xmlFiles(full)
    return entry.name.endsWith('.xml') ? [full] : []
  })
}

const root = process.argv[2]
const problems = []
const shapes = {}
for (const file of xmlFiles(root)) {
  const name = path.relative(root, file)
  try {
    const { object, namespaceErrors } = parseLikeOpenAmt(fs.readFileSync(file, 'utf8'))
    if (namespaceErrors.length) problems.push(`${name}: ${namespaceErrors.join('; ')}`)
    if (!object.Envelope || object.Envelope.Body === undefined) problems.push(`${name}: no Envelope/Body`)
    else shapes[name] = object.Envelope.Body
  } catch (err) {
    problems.push(`${name}: ${err.message}`)
  }
}
process.stdout.write(JSON.stringify({ files: Object.keys(shapes).length + problems.length, problems, shapes }) + '\n')
