"""Second factors: passkeys, an authenticator app (TOTP) and one-time backup codes.

A sign-in with a password finishes only once the second factor is given when the
user has one, or once one is set up when the institution requires it
(`ROUNDS_SECOND_FACTOR`, `policy.py`). A passkey alone signs in: it is something
the user holds, unlocked by their face, finger or device PIN. docs/sign-in.md.
"""
