"""CIM_ConcreteDependency, AMT_StateTransitionCondition and AMT_AgentPresenceWatchdogAction over HTTP: the
account links of the capture, and the watchdog -> transition -> action chain MeshCommander's watchdog page walks,
derived from the ACL and the watchdogs as they change."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.engine._shape import assert_same_shape
from tests.engine._shape_inventory import add_user, enumerate_raw, invoke, pull_objects
from tests.engine._shape_inventory import assert_same_shape as assert_same_run_shape

from outband.proto.amt import Realm
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine

DEPENDENCY = "CIM_ConcreteDependency"
CONDITION = "AMT_StateTransitionCondition"
ACTION = "AMT_AgentPresenceWatchdogAction"
WATCHDOG = "AMT_AgentPresenceWatchdog"
GUID = bytes(range(3, 19))
DEVICE_ID = base64.b64encode(GUID).decode()


async def add_watchdog_with_actions(env: RunningEngine) -> None:
    """MeshCommander's AddWatchdogOk, then two addWatchdogAction calls."""
    t = env.transport()
    body = CimObject.new(WATCHDOG, {
        "CreationClassName": "0", "DeviceID": DEVICE_ID, "MonitoredEntityDescription": "backup agent",
        "StartupInterval": 3600, "SystemCreationClassName": "0", "SystemName": "0", "TimeoutInterval": 60,
    })
    assert (await t.send(msg.create(body))).fault is None
    for old, new, event in ((4, 8, True), (31, 2, False)):
        out = await invoke(t, WATCHDOG, "AddAction", {"DeviceID": DEVICE_ID}, OldState=old, NewState=new,
                           EventOnTransition=event)
        assert out["ReturnValue"] == 0


def selector(epr: object, name: str) -> object:
    assert isinstance(epr, EndpointReference)
    return epr.selector_dict.get(name)


async def test_account_links_have_the_capture_shape(engine_env: RunningEngine, conformance_dir: Path) -> None:
    t = engine_env.transport()
    captures = conformance_dir / "cim/concrete/dependency"
    _, body = await t.post(msg.enumerate_(DEPENDENCY).to_bytes())
    assert_same_shape(body, captures / "enumerate.xml")
    # The capture holds the one link of $$OsAdmin, AMT's identity for the host's administrator; the engine adds
    # the admin's, and every link must have that shape.
    assert_same_run_shape(await enumerate_raw(t, DEPENDENCY), captures / "pull.xml")
    links = await pull_objects(t, DEPENDENCY)
    assert [(selector(link["Antecedent"], "InstanceID"), selector(link["Dependent"], "Name")) for link in links] == [
        ("Intel(r) AMT:$$OsAdmin", "Intel(r) AMT:$$OsAdmin"), ("Intel(r) AMT:admin", "Intel(r) AMT:admin")]


async def test_users_get_their_identity_link(engine_env: RunningEngine) -> None:
    add_user(engine_env, "operator", "Operator!1", {Realm.REMOTE_CONTROL})
    links = await pull_objects(engine_env.transport(), DEPENDENCY)
    assert [selector(link["Antecedent"], "InstanceID") for link in links] == [
        "Intel(r) AMT:$$OsAdmin", "Intel(r) AMT:admin", "Intel(r) AMT:operator"]
    identity = links[-1]["Antecedent"]
    assert isinstance(identity, EndpointReference)
    assert identity.class_name == "CIM_Identity"
    assert links[-1]["Dependent"].selector_dict == {  # type: ignore[union-attr]
        "CreationClassName": "CIM_Role", "Name": "Intel(r) AMT:operator"}


async def test_watchdog_chain_as_meshcommander_walks_it(engine_env: RunningEngine) -> None:
    """PullWatchdogResponse: watchdog -(DeviceID)-> condition -(PolicyConditionName)-> action."""
    env = engine_env
    await add_watchdog_with_actions(env)
    t = env.transport()
    conditions = {c["PolicyConditionName"]: c for c in await pull_objects(t, CONDITION)}
    actions = {a["PolicyActionName"]: a for a in await pull_objects(t, ACTION)}
    transitions: list[tuple[object, object, object]] = []
    links = await pull_objects(t, DEPENDENCY)
    for link in links:
        antecedent = link["Antecedent"]
        if selector(antecedent, "CreationClassName") == WATCHDOG:
            assert selector(antecedent, "DeviceID") == DEVICE_ID
            condition = conditions[selector(link["Dependent"], "PolicyConditionName")]
            following = [lk for lk in links if selector(lk["Antecedent"], "PolicyConditionName")
                         == condition["PolicyConditionName"]]
            assert len(following) == 1
            action = actions[selector(following[0]["Dependent"], "PolicyActionName")]
            transitions.append((condition["OldState"], condition["NewState"], action["EventOnTransition"]))
    assert transitions == [(4, 8, True), (31, 2, False)]
    for obj in (*conditions.values(), *actions.values()):
        assert (obj["SystemName"], obj["PolicyRuleName"]) == ("Intel(r) AMT", "NO RULE")
    assert (await invoke(t, WATCHDOG, "DeleteAllActions", {"DeviceID": DEVICE_ID}))["ReturnValue"] == 0
    assert await pull_objects(t, CONDITION) == []
    assert await pull_objects(t, ACTION) == []
    assert len(await pull_objects(t, DEPENDENCY)) == 2  # the account links stay


async def test_conditions_and_actions_can_be_got_by_their_keys(engine_env: RunningEngine) -> None:
    await add_watchdog_with_actions(engine_env)
    t = engine_env.transport()
    first = (await pull_objects(t, ACTION))[0]
    keys = {k: first[k] for k in ("CreationClassName", "PolicyActionName", "PolicyRuleCreationClassName",
                                  "PolicyRuleName", "SystemCreationClassName", "SystemName")}
    got = await t.send(msg.get(ACTION, keys))  # type: ignore[arg-type]
    assert got.body == first
    out = await invoke(t, ACTION, "GetActionEac", keys)  # type: ignore[arg-type]
    assert (out["ActionEac"], out["ReturnValue"]) == (False, 0)


async def test_policy_classes_need_agent_presence(engine_env: RunningEngine) -> None:
    viewer = add_user(engine_env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO})
    assert isinstance((await viewer.send(msg.enumerate_(CONDITION))).fault, F.AccessDenied)
    assert (await viewer.send(msg.enumerate_(DEPENDENCY))).fault is None  # association metadata
