"""The ``somnode signer`` process's config file (TOML): where it listens, for whom, and where its keys are.

Read by the same loader as a validator's config (node/app/config.py), so the
same rules hold: relative paths resolve against the file's directory, unknown
fields are errors, and every error names its field.  The ``[keys]`` fields
have the names of a validator's ``node.key_file`` and ``signer.pkcs11_*``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from node.app.config import ConfigError, KeyPlace, check_pin_source, parse_document, parse_sections, read_config_text
from node.core.fields import Endpoint

SIGNER_PROCESS_BACKENDS = ("file", "pkcs11")


@dataclass(frozen=True, slots=True)
class ServiceSection:
    name: str
    chain_id: str
    listen: Endpoint
    # The high-water mark (node/signing/guard.py); created by ``somnode signer --new-state``.
    state_file: Path
    # The link key of the one validator this signer serves.
    validator: bytes
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class KeysSection(KeyPlace):
    key_file: Path | None = None
    next_key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SignerConfig:
    service: ServiceSection
    keys: KeysSection = field(default_factory=KeysSection)


_SECTIONS: dict[str, type] = {"service": ServiceSection, "keys": KeysSection}
_NEEDED = {"file": {"key_file"}, "pkcs11": {"pkcs11_module", "pkcs11_token", "pkcs11_key"}}
_ALLOWED = {"file": {"next_key_file"}, "pkcs11": {"pkcs11_next_key", "pkcs11_pin_file", "pkcs11_pin_env"}}


def load_signer_config(path: str | os.PathLike[str]) -> SignerConfig:
    path = Path(path)
    document = parse_document(read_config_text(path), str(path))
    sections = parse_sections(document, _SECTIONS, path.resolve().parent)
    keys: KeysSection = sections["keys"]
    if keys.backend not in SIGNER_PROCESS_BACKENDS:
        raise ConfigError(f"keys.backend: a signer keeps its keys in {' or '.join(SIGNER_PROCESS_BACKENDS)}, "
                          f"not {keys.backend!r}")
    given = set(document.get("keys", {})) - {"backend"}
    for missing in sorted(_NEEDED[keys.backend] - given):
        raise ConfigError(f"keys.{missing}: missing required field (keys.backend is {keys.backend!r})")
    for stray in sorted(given - _NEEDED[keys.backend] - _ALLOWED[keys.backend]):
        raise ConfigError(f"keys.{stray}: not used with keys.backend = {keys.backend!r}; remove it")
    if keys.backend == "pkcs11":
        check_pin_source("keys", document["keys"])
    return SignerConfig(**sections)
