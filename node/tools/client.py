"""A small synchronous client for a node's /v1 API, used by the wallet verbs,
the testnet monitor and the benchmark.  Standard library only, so the
wallet commands start fast and work against any node a bank can reach."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

DEFAULT_TIMEOUT_S = 10.0


class ApiClientError(Exception):
    """The node could not be reached or answered with an error."""

    def __init__(self, message: str, code: str = "unreachable", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NodeClient:
    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if "://" not in base_url:
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                raise ApiClientError(f"{error['code']}: {error['message']}", error["code"], exc.code) from None
            except (ValueError, KeyError, TypeError):
                raise ApiClientError(f"HTTP {exc.code} from {self.base_url}{path}", "http_error", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiClientError(f"cannot reach {self.base_url}: {exc}") from None

    def status(self) -> dict:
        return self._request("GET", "/v1/status")

    def account(self, address: str) -> dict:
        return self._request("GET", f"/v1/accounts/{address}")

    def governance(self) -> dict:
        return self._request("GET", "/v1/governance")

    def validators(self, height: int | None = None) -> dict:
        return self._request("GET", "/v1/validators" + ("" if height is None else f"?height={height}"))

    def governance_history(self, after: int | None = None) -> dict:
        return self._request("GET", "/v1/governance/history" + ("" if after is None else f"?after={after}"))

    def orders(self, address: str) -> dict:
        return self._request("GET", f"/v1/accounts/{address}/orders")

    def tx(self, tx_hash_hex: str) -> dict:
        return self._request("GET", f"/v1/txs/{tx_hash_hex}")

    def block(self, height: int | str) -> dict:
        return self._request("GET", f"/v1/blocks/{height}")

    def block_txs(self, height: int) -> list[bytes]:
        return [bytes.fromhex(raw) for raw in self._request("GET", f"/v1/blocks/{height}/txs")["txs"]]

    def submit(self, raws: list[bytes]) -> list[dict]:
        return self._request("POST", "/v1/txs", {"txs": [raw.hex() for raw in raws]})["results"]

    def wait_committed(self, tx_hash_hex: str, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.tx(tx_hash_hex)
            if status["status"] == "committed":
                return status
            if time.monotonic() > deadline:
                raise ApiClientError(f"transaction {tx_hash_hex} not committed within {timeout_s:g} s", "timeout")
            time.sleep(0.1)
