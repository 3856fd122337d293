"""Light client checks: what a node serves, verified against certified headers, not taken on trust.

Nothing here opens LevelDB or the network: a bank's system, an auditor or
``somnode verify`` hands in documents and validator sets and gets an answer.
"""
