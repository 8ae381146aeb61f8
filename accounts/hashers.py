"""A cheaper Argon2 for the test suite only (ROUNDS_LIGHT_PASSWORD_HASH=1).

Still Argon2id with the same encoding, so the code path is the real one;
only the memory and time cost drop, which keeps hundreds of test sign-ins fast.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class LightArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1
