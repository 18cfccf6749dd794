"""Actors: the actor base and, in later issues, the business actors (RPC client, price feed,
scorer, executors, alerter).

The messaging kernel -- mailboxes, the registry of names, `tell`/`ask`, request/reply -- lives in
`supervisors` because a child's mailbox belongs to its supervisor's child record, not to one
incarnation; it is re-exported here so that actor code has one import.

May import: supervisors, contracts. Never imports `engine`.
"""

from actors.actor import Actor
from supervisors.context import ChildContext
from supervisors.mailbox import ConflatingMailbox, Mailbox, MailboxClosed
from supervisors.registry import ActorNotFound, ActorRef, Registry, ask
from supervisors.request import ActorDied, ActorStopped, AskError, AskTimeout, Reply, Request

__all__ = [
    "Actor",
    "ActorDied",
    "ActorNotFound",
    "ActorRef",
    "ActorStopped",
    "AskError",
    "AskTimeout",
    "ChildContext",
    "ConflatingMailbox",
    "Mailbox",
    "MailboxClosed",
    "Registry",
    "Reply",
    "Request",
    "ask",
]
