"""CIM_ConcreteDependency and the agent-presence policy classes it links: derived views over the ACL
(authorization) and the watchdogs (watchdog.py), nothing stored of their own.

CIM_ConcreteDependency carries two kinds of link, in this order:

* account identity -> role, ``CIM_Identity`` ``Intel(r) AMT:<account>`` to ``CIM_Role`` of the same name
  (FX ``cim/concrete/dependency/pull.xml`` shows the system account ``$$OsAdmin``, AMT's identity for the host's
  OS administrator).  This engine lists ``$$OsAdmin``, the admin and every digest user of the ACL by name;
  only ``$$OsAdmin``'s naming is confirmed by a capture.
* watchdog -> transition -> action, as MeshCommander's watchdog page reads them (``PullWatchdogResponse``): an
  AMT_AgentPresenceWatchdog is the Antecedent of each AMT_StateTransitionCondition made by its AddAction calls,
  and each condition the Antecedent of its AMT_AgentPresenceWatchdogAction (which MeshCommander reads for
  ``EventOnTransition``).

Conditions and actions are one pair per AddAction, numbered in the order the agent received them, and vanish
with DeleteAllActions or the watchdog.  Being reusable policy elements with no CIM_PolicyRule instance, they
carry DMTF's ``NO RULE`` in their rule keys; their names (``… <GUID hex>:<n>``) are this engine's, no capture
showing AMT's.  AMT_AgentPresenceWatchdogAction.GetActionEac answers false: EAC actions are refused by AddAction.

Realms: the policy classes go with the watchdogs (Agent Presence Remote).  CIM_ConcreteDependency mixes ACL and
agent-presence links and a handler cannot filter by caller, so, like CIM_ElementSettingData, it is association
metadata readable by any authenticated user; what it points at keeps its own realm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..registry import Context, Service
from .servicekit import status_method
from .support import ME_SYSTEM_NAME
from .watchdog import WATCHDOG_CLASS
from .watchdog import agents as watchdog_agents

service = Service("associations")

DEPENDENCY_CLASS: Final = "CIM_ConcreteDependency"
CONDITION_CLASS: Final = "AMT_StateTransitionCondition"
ACTION_CLASS: Final = "AMT_AgentPresenceWatchdogAction"
NO_RULE: Final = "NO RULE"
OS_ADMIN: Final = "$$OsAdmin"
ACCOUNT_ID: Final = "Intel(r) AMT:{}"
CONDITION_NAME: Final = "Intel(r) AMT Agent Presence Transition {}:{}"
ACTION_NAME: Final = "Intel(r) AMT Agent Presence Action {}:{}"
STATE_SPACE: Final = "AMT_AgentPresenceWatchdog.CurrentState"


@dataclass(frozen=True, slots=True)
class _Transition:
    """One AddAction of one watchdog: the condition (old -> new states) and what it does."""

    guid: str
    device_id: str
    index: int
    old: int
    new: int
    event: bool

    def _policy_keys(self) -> dict[str, str]:
        return {"SystemCreationClassName": "CIM_ComputerSystem", "SystemName": ME_SYSTEM_NAME,
                "PolicyRuleCreationClassName": NO_RULE, "PolicyRuleName": NO_RULE}

    @property
    def condition_name(self) -> str:
        return CONDITION_NAME.format(self.guid, self.index)

    @property
    def action_name(self) -> str:
        return ACTION_NAME.format(self.guid, self.index)

    @property
    def condition_keys(self) -> dict[str, str]:
        return {**self._policy_keys(), "CreationClassName": CONDITION_CLASS,
                "PolicyConditionName": self.condition_name}

    @property
    def action_keys(self) -> dict[str, str]:
        return {**self._policy_keys(), "CreationClassName": ACTION_CLASS, "PolicyActionName": self.action_name}

    @property
    def watchdog_epr(self) -> EndpointReference:
        return EndpointReference.to(resource_uri(WATCHDOG_CLASS), {
            "CreationClassName": WATCHDOG_CLASS,
            "DeviceID": self.device_id,
            "SystemCreationClassName": "CIM_ComputerSystem",
            "SystemName": ME_SYSTEM_NAME,
        })


def _transitions(engine: Engine) -> list[_Transition]:
    return [_Transition(agent.guid, agent.device_id, i, a.old, a.new, a.event)
            for agent in watchdog_agents(engine) for i, a in enumerate(agent.actions)]


@service.instances(CONDITION_CLASS, realm=Realm.AGENT_PRESENCE_REMOTE)
def transition_conditions(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new(CONDITION_CLASS, t.condition_keys, ElementName=t.condition_name, NewState=t.new,
                          OldState=t.old, StateSpace=STATE_SPACE)
            for t in _transitions(engine)]


@service.instances(ACTION_CLASS, realm=Realm.AGENT_PRESENCE_REMOTE)
def watchdog_actions(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new(ACTION_CLASS, t.action_keys, ActionSd=0, ElementName=t.action_name,
                          EventOnTransition=t.event)
            for t in _transitions(engine)]


@status_method(service, ACTION_CLASS, "GetActionEac", realm=Realm.AGENT_PRESENCE_REMOTE)
async def get_action_eac(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    return {"ActionEac": False}


def _account_link(name: str) -> CimObject:
    identity = EndpointReference.to(resource_uri("CIM_Identity"), {"InstanceID": ACCOUNT_ID.format(name)})
    role = EndpointReference.to(resource_uri("CIM_Role"),
                                {"CreationClassName": "CIM_Role", "Name": ACCOUNT_ID.format(name)})
    return CimObject.new(DEPENDENCY_CLASS, Antecedent=identity, Dependent=role)


def _accounts(engine: Engine) -> list[str]:
    admin = engine.accounts.admin
    return [OS_ADMIN, *([admin.username] if admin is not None else []),
            *(user.username for user in engine.accounts.users())]


@service.instances(DEPENDENCY_CLASS, realm=None)
def concrete_dependencies(engine: Engine) -> Iterable[CimObject]:
    links = [_account_link(name) for name in _accounts(engine)]
    for t in _transitions(engine):
        condition = EndpointReference.to(resource_uri(CONDITION_CLASS), t.condition_keys)
        action = EndpointReference.to(resource_uri(ACTION_CLASS), t.action_keys)
        links.append(CimObject.new(DEPENDENCY_CLASS, Antecedent=t.watchdog_epr, Dependent=condition))
        links.append(CimObject.new(DEPENDENCY_CLASS, Antecedent=condition, Dependent=action))
    return links
