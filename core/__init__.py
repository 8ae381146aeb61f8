"""Rounds' core: what every app and both clients share, with no Django in it.

- `core.errors`: the typed errors a client may see (one code enum, HTTP statuses);
- `core.protocol`: the frames a client sends, with the limits and close codes;
- `core.outbound`: the frames the server sends, and the shapes the HTTP API shares;
- `core.crypto`: the end-to-end cryptography (PyNaCl only), which the Python
  client and the server both use, so they cannot drift.

Nothing here imports Django or a Rounds app (tests/test_layers.py checks it):
the apps import the core, never the other way round. docs/architecture.md
has the apps' dependency order.
"""
