"""End-to-end cryptography, pure (PyNaCl only, no Django import).

Reserved for the encryption work: identity keys, room key versions, signed
wraps, the message envelope and streaming file encryption. Until then the
server treats every envelope as opaque bytes, which it must remain.
"""
