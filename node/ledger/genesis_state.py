"""What the ledger starts from: the genesis as ledger state (node/core/genesis.py is the file)."""

from __future__ import annotations

from dataclasses import dataclass

from node.core.amount import MAX_TYIYN
from node.core.tiers import INSTITUTIONAL, UNREGISTERED_TIER, Tier
from node.core.tx import PUBLIC_KEY_SIZE
from node.ledger.book import AccountRecord
from node.ledger.governance import Board, Governance


@dataclass(frozen=True, slots=True)
class GenesisState:
    """What the ledger needs from genesis; ``Genesis`` fields map onto it one to one."""

    chain_id: str
    genesis_hash: bytes
    issuer: bytes
    banks: frozenset[bytes]
    balances: tuple[tuple[bytes, int], ...]
    validators: tuple[tuple[bytes, int], ...] = ()
    board: tuple[bytes, ...] = ()
    board_threshold: int = 1
    bank_names: tuple[tuple[bytes, str], ...] = ()  # names of (some of) ``banks``
    # Without tiers of its own, a ledger has one tier, 0, that limits nothing.
    tiers: tuple[Tier, ...] = (Tier(UNREGISTERED_TIER, "unlimited", MAX_TYIYN, MAX_TYIYN, MAX_TYIYN),)
    account_tiers: tuple[tuple[bytes, int], ...] = ()  # accounts in a tier other than 0 from the start
    observers: tuple[tuple[bytes, str], ...] = ()  # (key, name) of the nodes validators let follow

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise ValueError("genesis chain id is empty")
        if len(self.genesis_hash) != 32:
            raise ValueError("genesis hash must be 32 bytes")
        for key in (self.issuer, *self.banks):
            if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
                raise ValueError("issuer and bank keys must be 32-byte public keys")
        seen: set[bytes] = set()
        for key, amount in self.balances:
            if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
                raise ValueError("genesis balance keys must be 32-byte public keys")
            if key in seen:
                raise ValueError(f"genesis lists the balance of {key.hex()} twice")
            seen.add(key)
            if type(amount) is not int or not 0 <= amount <= MAX_TYIYN:
                raise ValueError(f"genesis balance of {key.hex()} is outside 0..2^64-1 tyiyn")
        if self.supply > MAX_TYIYN:
            raise ValueError("genesis balances add up to more than 2^64-1 tyiyn")
        defined = {tier.id for tier in self.tiers} | {INSTITUTIONAL}
        if len(defined) != len(self.tiers) + 1:
            raise ValueError("genesis defines a tier twice")
        if UNREGISTERED_TIER not in defined:
            raise ValueError(f"genesis must define tier {UNREGISTERED_TIER}, where unregistered accounts are")
        if len(dict(self.account_tiers)) != len(self.account_tiers):
            raise ValueError("genesis gives an account two tiers")
        for key, tier in self.account_tiers:
            if tier not in defined:
                raise ValueError(f"genesis puts {key.hex()} in tier {tier}, which it does not define")

    @classmethod
    def from_genesis(cls, genesis: object) -> GenesisState:
        """Adapt ``node.core.genesis.Genesis`` without importing it here."""
        return cls(
            chain_id=genesis.chain_id,  # type: ignore[attr-defined]
            genesis_hash=genesis.hash(),  # type: ignore[attr-defined]
            issuer=genesis.issuer,  # type: ignore[attr-defined]
            banks=frozenset(bank.public_key for bank in genesis.banks),  # type: ignore[attr-defined]
            balances=tuple(genesis.balances),  # type: ignore[attr-defined]
            validators=tuple(sorted((v.public_key, v.power) for v in genesis.validators)),  # type: ignore[attr-defined]
            board=tuple(sorted(m.public_key for m in genesis.board.members)),  # type: ignore[attr-defined]
            board_threshold=genesis.board.threshold,  # type: ignore[attr-defined]
            bank_names=tuple(sorted((b.public_key, b.name) for b in genesis.banks)),  # type: ignore[attr-defined]
            tiers=tuple(genesis.tiers),  # type: ignore[attr-defined]
            account_tiers=tuple(genesis.wallets),  # type: ignore[attr-defined]
            observers=tuple(sorted((o.public_key, o.name) for o in genesis.observers)),  # type: ignore[attr-defined]
        )

    def governance(self) -> Governance:
        """The governance state the chain starts with: the validator set holds from height 1."""
        names = dict(self.bank_names)
        return Governance(
            sequence=0, board=Board(self.board_threshold, tuple(sorted(self.board))), issuer=self.issuer,
            banks=tuple(sorted((key, names.get(key, "")) for key in self.banks)),
            validators=tuple(sorted(self.validators)), validators_from=1,
            tiers=tuple(sorted(self.tiers, key=lambda tier: tier.id)),
            observers=tuple(sorted(self.observers)),
        )

    @property
    def supply(self) -> int:
        return sum(amount for _, amount in self.balances)

    def accounts(self) -> dict[bytes, AccountRecord]:
        """Every genesis account: the listed balances and tiers, plus empty accounts for the issuer and banks."""
        tiers = dict(self.account_tiers)
        keys = dict.fromkeys([self.issuer, *self.banks, *(key for key, _ in self.balances), *tiers])
        balances = dict(self.balances)
        return {key: (balances.get(key, 0), 0, tiers.get(key, 0), 0, 0, 0) for key in keys}


