#!/usr/bin/env node
'use strict'
/*
 * MeshCentral's own Intel AMT stack against an outband engine.
 *
 * The stack is MeshCentral's server-side one (node_modules/meshcentral/amt: amt-wsman-comm.js does HTTP and
 * Digest on a raw socket, amt-wsman.js builds envelopes, amt-xml.js parses replies, amt.js wraps classes),
 * created exactly as MeshCentral's amtmanager.js creates it for a LAN device: CreateWsmanComm(host, port,
 * user, pass, tls) with certificate checking off (`xtlsFingerprint = 0`) on TLS.  The groups replay what
 * amtmanager.js and the bundled MeshCommander (public/commander.htm) do with a device:
 *   contact    initial contact: Get AMT_GeneralSettings + IPS_HostBasedSetupService, realm must match
 *   version    CIM_SoftwareIdentity + AMT_SetupAndConfigurationService (firmware version)
 *   clock      GetLowAccuracyTimeSynch, SetHighAccuracyTimeSynch
 *   status     MeshCommander's status refresh batch (every class must answer 200)
 *   settings   amtmanager's settings sync: opt-in policy, SOL/IDE-R + listener, KVM, host name
 *   tls        amtmanager's TLS sync reads: certificates, key pairs, TLS settings
 *   cira       amtmanager's CIRA sync reads (AMT > 11 adds the HTTP proxy classes)
 *   inventory  the hardware inventory and wired network batches, converted as amtmanager converts them
 *   accounts   MeshCommander's user page reads
 *   alarms     MeshCommander's alarm page: list, add, delete
 *   power      power polling and power actions on / off (+ the OS wake MeshCentral sends to AMT > 9)
 *   pxe        amtmanager's advanced power action 16 "reset to PXE" (boot settings Put, role, order, reset)
 *   logs       the audit log and event log readers of amt.js (after a power-on that must be logged)
 *
 * usage: PEER_PASSWORD=... node meshcentral_wsman.js --host H --port P [--tls] [--user admin] [--groups a,b]
 * Prints one JSON object: {amtVersion, tls, results: [{step, ok, status, reason, data}]}.
 */

const CreateWsmanComm = require('meshcentral/amt/amt-wsman-comm')
const WsmanStackCreateService = require('meshcentral/amt/amt-wsman')
const AmtStackCreateService = require('meshcentral/amt/amt')

const STEP_MS = 8000
const GROUPS = ['contact', 'version', 'clock', 'status', 'settings', 'tls', 'cira', 'inventory', 'accounts', 'alarms', 'power', 'pxe', 'logs']
const PXE_SOURCE = '<Address xmlns="http://schemas.xmlsoap.org/ws/2004/08/addressing">http://schemas.xmlsoap.org/ws/2004/08/addressing</Address><ReferenceParameters xmlns="http://schemas.xmlsoap.org/ws/2004/08/addressing"><ResourceURI xmlns="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BootSourceSetting</ResourceURI><SelectorSet xmlns="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><Selector Name="InstanceID">Intel(r) AMT: Force PXE Boot</Selector></SelectorSet></ReferenceParameters>'
// MeshCentral's conversion of AMT power states into its own (amtmanager.js fetchPowerState).
const MESH_POWER = [-1, -1, 1, 2, 3, 6, 6, 5, 6]

class CheckFailed extends Error {}
function expect (condition, message) { if (!condition) throw new CheckFailed(message) }
const show = (value) => JSON.stringify(value)
const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v])

class Run {
  constructor (stack) {
    this.stack = stack
    this.results = []
  }

  /**
   * Start one stack operation and wait for its callback (MeshCentral's stack reports errors only through
   * the status it passes, and silently drops some: a missing callback is a failure after STEP_MS).
   * `check(...callbackArgs)` asserts and returns report data.
   */
  async step (name, start, check) {
    const result = { step: name, ok: false, status: null, reason: '', data: null }
    this.results.push(result)
    const args = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), STEP_MS)
      try {
        start((...cbArgs) => { clearTimeout(timer); resolve(cbArgs) })
      } catch (err) {
        clearTimeout(timer)
        resolve([null, null, null, `threw ${err.message}`])
      }
    })
    if (args === null) {
      result.reason = `no answer within ${STEP_MS} ms (MeshCentral's stack gave up silently)`
      return null
    }
    try {
      result.data = check(...args) ?? null
      result.ok = true
    } catch (err) {
      result.reason = err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`
    }
    return args
  }

  /** Stack callbacks are (stack, name, response, status): the reply must be status 200 with a Body. */
  call (name, start, check = () => undefined) {
    return this.step(name, start, (stack, cls, response, status) => {
      this.results[this.results.length - 1].status = status
      expect(status === 200, `status ${status}${response && response.Header && response.Header.WsmanError ? ': ' + response.Header.WsmanError : ''}`)
      return check(response)
    }).then((args) => (args && args[3] === 200 ? args[2] : null))
  }

  /** A method call: 200 and ReturnValue 0. */
  invoke (name, start, check = () => undefined) {
    return this.call(name, start, (response) => {
      expect(response && response.Body, 'no Body')
      expect(response.Body.ReturnValue === 0, `ReturnValue ${show(response.Body.ReturnValue)} (${response.Body.ReturnValueStr})`)
      return check(response.Body)
    })
  }

  /**
   * BatchEnum as amtmanager/MeshCommander call it; one result per class (status 200 required) plus `check`
   * over the whole batch.  Names starting with * are Gets.
   */
  async batch (name, names, { continueOnError = false, check = () => undefined } = {}) {
    const args = await this.step(name, (cb) => this.stack.BatchEnum('', names, cb, null, continueOnError), () => undefined)
    const responses = args ? args[2] : null
    const whole = this.results[this.results.length - 1]
    if (args) whole.status = args[3]
    for (const wanted of names) {
      const isGet = wanted.startsWith('*')
      const cls = wanted.replace(/^\*/, '')
      const entry = responses && responses[cls]
      const result = { step: `${name}: ${isGet ? 'Get' : 'Enum'} ${cls}`, ok: false, status: entry ? entry.status : null, reason: '', data: null }
      this.results.push(result)
      const fault = entry && entry.responses && entry.responses.Header && entry.responses.Header.WsmanError
      if (!entry) result.reason = 'not fetched (the batch stopped before it)'
      else if (entry.status !== 200) result.reason = `status ${entry.status}${fault ? ': ' + fault : ''}`
      else if (isGet ? !entry.response : !Array.isArray(entry.responses)) result.reason = `no data in ${show(entry)}`
      else {
        result.ok = true
        result.data = isGet ? null : { count: entry.responses.length }
      }
    }
    if (!responses) return null
    try {
      whole.data = check(responses) ?? null
    } catch (err) {
      whole.ok = false
      whole.reason = err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`
    }
    return responses
  }

  async powerState (expected) {
    const responses = await this.batch('power state', ['CIM_ServiceAvailableToElement'], {
      check: (r) => {
        const items = r.CIM_ServiceAvailableToElement.responses
        expect(items && items.length >= 1, 'no power association')
        expect(items[0].PowerState === expected, `PowerState ${show(items[0].PowerState)}, expected ${expected}`)
        return { PowerState: items[0].PowerState, meshPowerState: MESH_POWER[items[0].PowerState] }
      }
    })
    return responses && responses.CIM_ServiceAvailableToElement.responses[0]
  }
}

const epochNow = () => Math.floor(Date.now() / 1000)

const FLOWS = {
  async contact (run, comm) {
    await run.batch('initial contact', ['*AMT_GeneralSettings', '*IPS_HostBasedSetupService'], {
      check: (r) => {
        const settings = r.AMT_GeneralSettings.response
        expect(settings && settings.DigestRealm === comm.digestRealm,
          `DigestRealm ${show(settings && settings.DigestRealm)} differs from the challenge's ${show(comm.digestRealm)}`)
        const hbs = r.IPS_HostBasedSetupService.response
        expect(hbs && [1, 2].includes(hbs.CurrentControlMode), `CurrentControlMode ${show(hbs && hbs.CurrentControlMode)}`)
        expect(typeof comm.amtVersion === 'string' && /^\d+\.\d+\.\d+/.test(comm.amtVersion),
          `no AMT version in the Server header (${show(comm.amtVersion)})`)
        return { realm: comm.digestRealm, amtVersion: comm.amtVersion, controlMode: hbs.CurrentControlMode, tlsCheck: comm.xtlsCheck }
      }
    })
  },

  async version (run) {
    await run.batch('version', ['CIM_SoftwareIdentity', '*AMT_SetupAndConfigurationService'], {
      check: (r) => {
        const amt = r.CIM_SoftwareIdentity.responses.find((i) => i.InstanceID === 'AMT')
        expect(amt, 'no CIM_SoftwareIdentity InstanceID=AMT')
        const setup = r.AMT_SetupAndConfigurationService.response
        expect(setup.ProvisioningState === 2, `ProvisioningState ${show(setup.ProvisioningState)}`)
        return { version: String(amt.VersionString), provisioningMode: setup.ProvisioningMode }
      }
    })
  },

  async clock (run) {
    const got = await run.invoke('GetLowAccuracyTimeSynch', (cb) => run.stack.AMT_TimeSynchronizationService_GetLowAccuracyTimeSynch(cb),
      (body) => { expect(Math.abs(body.Ta0 - epochNow()) < 300, `Ta0 ${body.Ta0} is not now`); return { Ta0: body.Ta0 } })
    if (got) {
      const now = epochNow()
      await run.invoke('SetHighAccuracyTimeSynch', (cb) => run.stack.AMT_TimeSynchronizationService_SetHighAccuracyTimeSynch(got.Body.Ta0, now, now, cb))
    }
  },

  async status (run) {
    await run.invoke('GetLowAccuracyTimeSynch', (cb) => run.stack.AMT_TimeSynchronizationService_GetLowAccuracyTimeSynch(cb))
    await run.batch('status refresh', ['CIM_ServiceAvailableToElement', '*AMT_GeneralSettings', 'AMT_EthernetPortSettings',
      '*AMT_RedirectionService', 'CIM_ElementSettingData', '*AMT_BootCapabilities', 'IPS_IPv6PortSettings',
      '*CIM_KVMRedirectionSAP', '*IPS_OptInService', '*IPS_KVMRedirectionSettingData', '*IPS_ScreenConfigurationService',
      '*IPS_PowerManagementService', '*CIM_BootService'], { continueOnError: true })
  },

  async settings (run) {
    const r = await run.batch('settings sync', ['*AMT_GeneralSettings', '*AMT_RedirectionService', '*CIM_KVMRedirectionSAP', '*IPS_OptInService'])
    if (!r) return
    const optin = r.IPS_OptInService && r.IPS_OptInService.response
    if (optin) {
      optin.OptInRequired = 0
      await run.call('Put IPS_OptInService (no consent)', (cb) => run.stack.Put('IPS_OptInService', optin, cb, 0, 1),
        (resp) => expect(resp.Body.OptInRequired === 0, `OptInRequired ${show(resp.Body.OptInRequired)} after Put`))
    }
    const redirection = r.AMT_RedirectionService && r.AMT_RedirectionService.response
    if (redirection) {
      await run.invoke('AMT_RedirectionService RequestStateChange 32771', (cb) => run.stack.AMT_RedirectionService_RequestStateChange(32771, cb))
      redirection.ListenerEnabled = true
      redirection.EnabledState = 32771
      await run.call('Put AMT_RedirectionService', (cb) => run.stack.Put('AMT_RedirectionService', redirection, cb, 0, 1))
    }
    await run.invoke('CIM_KVMRedirectionSAP RequestStateChange 2', (cb) => run.stack.CIM_KVMRedirectionSAP_RequestStateChange(2, 0, cb))
    const general = r.AMT_GeneralSettings && r.AMT_GeneralSettings.response
    if (general) {
      general.HostName = 'meshcentral-host'
      general.DomainName = 'example.test'
      await run.call('Put AMT_GeneralSettings (name, domain)', (cb) => run.stack.Put('AMT_GeneralSettings', general, cb, 0, 1))
    }
    await run.batch('settings re-read', ['*AMT_GeneralSettings', '*AMT_RedirectionService', '*CIM_KVMRedirectionSAP', '*IPS_OptInService'], {
      check: (x) => {
        const g = x.AMT_GeneralSettings.response
        const red = x.AMT_RedirectionService.response
        const kvm = x.CIM_KVMRedirectionSAP.response
        const opt = x.IPS_OptInService.response
        expect(g.HostName === 'meshcentral-host' && g.DomainName === 'example.test', `HostName ${show(g.HostName)} DomainName ${show(g.DomainName)}`)
        expect(red.EnabledState === 32771 && red.ListenerEnabled === true, `redirection ${red.EnabledState}/${red.ListenerEnabled}`)
        expect(kvm.EnabledState === 2 || kvm.EnabledState === 6, `KVM EnabledState ${kvm.EnabledState}`)
        expect(opt.OptInRequired === 0, `OptInRequired ${opt.OptInRequired}`)
        return { HostName: g.HostName, DomainName: g.DomainName, redirection: red.EnabledState, kvm: kvm.EnabledState }
      }
    })
  },

  async tls (run) {
    await run.batch('TLS sync', ['AMT_PublicKeyCertificate', 'AMT_PublicPrivateKeyPair', 'AMT_TLSSettingData', 'AMT_TLSCredentialContext'])
  },

  async cira (run) {
    await run.batch('CIRA sync', ['*AMT_EnvironmentDetectionSettingData', 'AMT_ManagementPresenceRemoteSAP',
      'AMT_RemoteAccessCredentialContext', 'AMT_RemoteAccessPolicyAppliesToMPS', 'AMT_RemoteAccessPolicyRule',
      '*AMT_UserInitiatedConnectionService', 'AMT_MPSUsernamePassword', '*IPS_HTTPProxyService', 'IPS_HTTPProxyAccessPoint'])
  },

  async inventory (run) {
    await run.batch('hardware inventory', ['*CIM_ComputerSystemPackage', 'CIM_SystemPackaging', '*CIM_Chassis', 'CIM_Chip', '*CIM_Card',
      '*CIM_BIOSElement', 'CIM_Processor', 'CIM_PhysicalMemory', 'CIM_MediaAccessDevice', 'CIM_PhysicalPackage'], {
      check: (r) => {
        // amtmanager.js attemptFetchHardwareInventoryResponse, reduced to the identifiers it stores.
        const g = String(r.CIM_ComputerSystemPackage.response.PlatformGUID)
        expect(/^[0-9A-Fa-f]{32}$/.test(g), `PlatformGUID ${show(g)}`)
        const guid = g.substring(6, 8) + g.substring(4, 6) + g.substring(2, 4) + g.substring(0, 2) + '-' + g.substring(10, 12) +
          g.substring(8, 10) + '-' + g.substring(14, 16) + g.substring(12, 14) + '-' + g.substring(16, 20) + '-' + g.substring(20)
        const card = r.CIM_Card.response
        const bios = r.CIM_BIOSElement.response
        const cpu = list(r.CIM_Chip.responses).find((c) => c.ElementName === 'Managed System Processor Chip' && c.Version)
        return {
          product_uuid: guid.toLowerCase(),
          board_name: card.Model, board_vendor: card.Manufacturer, board_serial: String(card.SerialNumber),
          bios_vendor: bios.Manufacturer, bios_version: String(bios.Version), bios_date: bios.ReleaseDate && bios.ReleaseDate.Datetime,
          cpu_name: cpu ? cpu.Version : null,
          chassis: { Manufacturer: r.CIM_Chassis.response.Manufacturer, Model: r.CIM_Chassis.response.Model, SerialNumber: String(r.CIM_Chassis.response.SerialNumber) },
          memory: list(r.CIM_PhysicalMemory.responses).map((m) => ({ BankLabel: m.BankLabel, Capacity: m.Capacity, PartNumber: String(m.PartNumber).trim(), SerialNumber: String(m.SerialNumber).trim() })),
          storage_devices: list(r.CIM_MediaAccessDevice.responses).map((m) => ({ Caption: m.DeviceID, Size: m.MaxMediaSize * 1000 })),
          processors: list(r.CIM_Processor.responses).map((p) => ({ DeviceID: p.DeviceID, MaxClockSpeed: p.MaxClockSpeed }))
        }
      }
    })
    await run.batch('network', ['AMT_EthernetPortSettings'], {
      check: (r) => {
        // amtmanager.js attemptFetchNetworkResponse: the wired port is the one without WLAN link protection.
        const wired = list(r.AMT_EthernetPortSettings.responses).find((n) => n.MACAddress && n.MACAddress !== '00-00-00-00-00-00' && n.WLANLinkProtectionLevel == null)
        expect(wired, 'no wired interface')
        return { mac: wired.MACAddress.split('-').join(':').toUpperCase(), address: wired.IPAddress, netmask: wired.SubnetMask, gateway: wired.DefaultGateway }
      }
    })
  },

  async accounts (run) {
    await run.invoke('GetAdminAclEntry', (cb) => run.stack.AMT_AuthorizationService_GetAdminAclEntry(cb),
      (body) => { expect(body.Username === run.user, `Username ${show(body.Username)}`); return { Username: body.Username } })
    await run.invoke('EnumerateUserAclEntries', (cb) => run.stack.AMT_AuthorizationService_EnumerateUserAclEntries(1, cb),
      (body) => ({ TotalCount: body.TotalCount }))
  },

  async alarms (run) {
    const occurrences = (label, count) => run.step(label, (cb) => run.stack.Enum('IPS_AlarmClockOccurrence', cb), (stack, name, items, status) => {
      run.results[run.results.length - 1].status = status
      expect(status === 200, `status ${status}`)
      expect(list(items).length === count, `${list(items).length} alarms, expected ${count}`)
      return list(items).map((a) => ({ InstanceID: a.InstanceID, StartTime: a.StartTime && a.StartTime.Datetime }))
    })
    await occurrences('alarms (none)', 0)
    const start = new Date(Math.ceil(Date.now() / 86400000 + 2) * 86400000).toISOString().replace('.000Z', 'Z')
    await run.invoke('AddAlarm', (cb) => run.stack.AMT_AlarmClockService_AddAlarm({
      InstanceID: 'MeshAlarm', ElementName: 'MeshAlarm', StartTime: { Datetime: start }, Interval: { Datetime: 'P1D' }, DeleteOnCompletion: false
    }, cb))
    await occurrences('alarms (one)', 1)
    await run.call('Delete IPS_AlarmClockOccurrence', (cb) => run.stack.Delete('IPS_AlarmClockOccurrence', { InstanceID: 'MeshAlarm' }, cb))
    await occurrences('alarms (deleted)', 0)
  },

  async power (run) {
    await run.powerState(8)
    await run.invoke('RequestPowerStateChange 2 (power up)', (cb) => run.stack.RequestPowerStateChange(2, cb))
    await run.call('RequestOSPowerSavingStateChange 2 (OS wake)', (cb) => run.stack.RequestOSPowerStateChange(2, cb))
    await run.powerState(2)
    await run.call('Get IPS_PowerManagementService', (cb) => run.stack.Get('IPS_PowerManagementService', cb),
      (resp) => { expect(resp.Body.OSPowerSavingState === 2, `OSPowerSavingState ${show(resp.Body.OSPowerSavingState)}`); return { OSPowerSavingState: 2 } })
    await run.invoke('RequestPowerStateChange 8 (power down)', (cb) => run.stack.RequestPowerStateChange(8, cb))
    await run.powerState(8)
  },

  async pxe (run) {
    await run.invoke('RequestPowerStateChange 2 (power up)', (cb) => run.stack.RequestPowerStateChange(2, cb))
    const r = await run.batch('boot settings', ['*AMT_BootSettingData'])
    const boot = r && r.AMT_BootSettingData.response
    if (!boot) return
    // amtmanager.js performAdvancedPowerActionResponse, action 16 = reset to PXE.
    boot.ConfigurationDataReset = false
    for (const drop of ['WinREBootEnabled', 'UEFILocalPBABootEnabled', 'UEFIHTTPSBootEnabled', 'SecureBootControlEnabled',
      'BootguardStatus', 'OptionsCleared', 'BIOSLastStatus', 'UefiBootParametersArray', 'RPEEnabled', 'RSEPassword']) delete boot[drop]
    boot.BIOSSetup = false
    boot.UseSOL = false
    await run.call('Put AMT_BootSettingData', (cb) => run.stack.Put('AMT_BootSettingData', boot, cb, 0, 1))
    await run.invoke('SetBootConfigRole 1', (cb) => run.stack.SetBootConfigRole(1, cb))
    await run.invoke('ChangeBootOrder PXE', (cb) => run.stack.CIM_BootConfigSetting_ChangeBootOrder(PXE_SOURCE, cb))
    await run.invoke('RequestPowerStateChange 10 (reset)', (cb) => run.stack.RequestPowerStateChange(10, cb))
  },

  async logs (run) {
    await run.invoke('RequestPowerStateChange 2 (power up)', (cb) => run.stack.RequestPowerStateChange(2, cb))
    await run.step('audit log', (cb) => run.stack.GetAuditLog(cb), (stack, records, status) => {
      run.results[run.results.length - 1].status = status
      expect(status === 200, `status ${status}`)
      const decoded = list(records).map((x) => ({ AuditAppID: x.AuditAppID, EventID: x.EventID, Event: x.Event, Initiator: x.Initiator }))
      expect(decoded.some((x) => x.AuditAppID === 17 && x.EventID === 0 && x.Initiator === run.user),
        `no "Remote Control / power up" record by ${run.user} in ${show(decoded)}`)
      return decoded
    })
    await run.step('event log', (cb) => run.stack.GetMessageLog(cb), (stack, messages, tag, status) => {
      run.results[run.results.length - 1].status = status
      expect(status === 200, `status ${status}`)
      expect(list(messages).length >= 1, 'no event log records after a power-on')
      return list(messages).map((m) => ({ EventSensorType: m.EventSensorType, Entity: m.EntityStr, Desc: m.Desc }))
    })
  }
}

function parseArgs (argv) {
  const options = { user: 'admin', tls: false, groups: GROUPS.join(',') }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--tls') options.tls = true
    else if (['--host', '--port', '--user', '--groups'].includes(flag) && i + 1 < argv.length) options[flag.slice(2)] = argv[++i]
    else throw new Error(`unknown argument ${flag}`)
  }
  options.password = process.env.PEER_PASSWORD
  if (!options.host || !options.port || !options.password) {
    throw new Error('usage: PEER_PASSWORD=... node meshcentral_wsman.js --host H --port P [--tls] [--user U] [--groups a,b]')
  }
  options.groups = options.groups.split(',')
  const unknown = options.groups.filter((g) => !GROUPS.includes(g))
  if (unknown.length) throw new Error(`unknown groups ${unknown}; known: ${GROUPS.join(' ')}`)
  return options
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  const comm = CreateWsmanComm(options.host, Number(options.port), options.user, options.password, options.tls ? 1 : 0)
  if (options.tls) comm.xtlsFingerprint = 0 // as amtmanager.js does for a direct TLS connection: no certificate check
  const stack = AmtStackCreateService(WsmanStackCreateService(comm))
  const run = new Run(stack)
  run.user = options.user
  for (const group of options.groups) await FLOWS[group](run, comm)
  comm.destroy()
  process.stdout.write(JSON.stringify({ amtVersion: comm.amtVersion, tls: comm.xtls === 1, tlsCheck: comm.xtlsCheck, results: run.results }) + '\n')
}

main().then(() => process.exit(0), (err) => { console.error(err.stack || String(err)); process.exit(2) })
