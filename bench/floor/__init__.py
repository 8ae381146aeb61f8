"""The floor: a bare Channels broadcast on the same server and layer as Rounds.

No database, no auth, no crypto: what daphne and the channel layer alone
cost to relay a frame from one socket to the others. Every Rounds figure is
shown next to the floor's from the same run (see docs/performance.md).
"""
