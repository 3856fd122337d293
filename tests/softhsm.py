"""SoftHSM2 (Debian's softhsm2, which scripts/_test_tools.sh installs) as the PKCS#11 token of the tests.

SoftHSM reads its configuration and lists its tokens once per process, when
the module is first initialised, so one test session shares one token
directory (SOFTHSM2_CONF, also inherited by the validator processes a test
starts), made with a pool of tokens before any test loads the module; each
test takes fresh tokens from the pool.  Without SoftHSM the tests that need it are
skipped, except under CI, where they fail: a green CI has run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_PATHS = (Path("/usr/lib/softhsm/libsofthsm2.so"), Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
                Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"))
MODULE = next((path for path in MODULE_PATHS if path.exists()), None)
UTIL = shutil.which("softhsm2-util")
PIN = "2718281828"
SO_PIN = "3141592653"


POOL = 12


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    conf: Path
    pool: list[str]

    def new_token(self) -> str:
        """The label of a token no other test used; its user PIN is ``PIN``."""
        assert self.pool, f"tests/softhsm.py makes {POOL} tokens a session; raise POOL"
        return self.pool.pop()


def softhsm_session(directory: Path) -> SoftHsm:
    """The session's SoftHSM: a token directory under ``directory``, named in SOFTHSM2_CONF."""
    if MODULE is None or UTIL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("softhsm2 is missing under CI: scripts/_test_tools.sh should have installed it")
        pytest.skip("softhsm2 is not installed (as root: apt-get install softhsm2)")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pool = [f"somnode-{uuid.uuid4().hex[:8]}" for _ in range(POOL)]
    for label in pool:
        subprocess.run([UTIL, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
                       check=True, capture_output=True)
    return SoftHsm(MODULE, conf, pool)
