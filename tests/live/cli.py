"""The `rounds` console script against a live cluster, as a user runs it.

Configured from the environment only (docs/client.md): the cluster's
server, the demo's pins file (seed_demo writes var/institution.json), a
state directory of the cluster's, and the user's password.
"""

import asyncio
import os
import sys
from pathlib import Path

from tests.live.servers import BASE_DIR, DEMO_PASSWORD, LiveCluster


def cli_env(cluster: LiveCluster, username: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDS_")}
    env.update(
        ROUNDS_URL=cluster.servers[0].url,
        ROUNDS_USER=username,
        ROUNDS_PASSWORD=DEMO_PASSWORD,
        ROUNDS_PINS_FILE=str(cluster.root / "var" / "institution.json"),
        ROUNDS_STATE_DIR=str(cluster.root / "cli-state"),
        # The command's language follows the environment (docs/client.md, "Languages"):
        # English here, whatever the shell running the tests speaks.
        LANGUAGE="en",
    )
    env.update(extra)  # a test's own, over the defaults
    return env


async def run_rounds(
    cluster: LiveCluster, username: str, *args: str, code: int = 0, **env: str
) -> tuple[str, str]:
    """Run `rounds ARGS` as `username`; (stdout, stderr), insisting on exit `code`."""
    script = Path(sys.executable).parent / "rounds"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "client.cli"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        cwd=BASE_DIR,
        env=cli_env(cluster, username, **env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == code, (
        f"rounds {' '.join(args)} exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
    )
    return out.decode(), err.decode()
