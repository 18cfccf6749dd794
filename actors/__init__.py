"""Actors: the actor base (mailbox, context, tell/ask, registry) and, in later issues, the business
actors (RPC client, price feed, scorer, executors, alerter).

May import: supervisors, contracts. Never imports `engine`.
"""
