"""The explorer in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium) against four validator processes: pages render, a block committed after the
page loaded arrives through the event stream, search finds a transaction and an account,
and what cannot be found gets a clear message.

Screenshots of every page go to the test's temporary folder; with
``SOMNODE_SCREENSHOTS=DIR`` they are also copied to DIR (``docs/images`` holds the
committed ones). scripts/_test_tools.sh installs the browser; without it the test is
skipped, except under CI, where it fails.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from node.core.keys import KeyPair
from node.core.tx import SignedTransaction
from node.tools.testnet import LocalTestnet
from tests.localnet import Wallet, make_network, node_log, running

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 30.0
# The window the committed screenshots are taken at: a laptop screen.
WINDOW = (1366, 1000)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and os.environ.get("CI") != "true",
    reason="chromium and chromedriver are not installed (scripts/_test_tools.sh installs them as root)",
)


class NotShown(AssertionError):
    """Nothing on the page matches; inside a wait that means: not yet."""


class Explorer:
    """The running network, the browser and what the tests sent, shared by the tests of this module."""

    def __init__(self, net: LocalTestnet, browser: WebDriver, shots: Path, wallet: Wallet,
                 payees: list[KeyPair]) -> None:
        self.net = net
        self.browser = browser
        self.shots = shots
        self.wallet = wallet
        self.payees = payees
        self.url = net.api_urls[0]
        self.sent: list[SignedTransaction] = []

    def send(self, to: KeyPair, amount: int, memo: str) -> dict:
        """A transfer from bank1, waited for until committed; returns its status document."""
        stx = self.wallet.transfer(to.public_key, amount, memo)
        (result,) = self.net.client(0).submit([stx.raw])
        assert result["accepted"], result
        self.sent.append(stx)
        return self.net.client(0).wait_committed(stx.hash.hex())

    def open(self, fragment: str = "#/") -> None:
        self.browser.get(f"{self.url}/{fragment}")

    def search(self, text: str) -> None:
        box = self.browser.find_element(By.ID, "search-input")
        box.clear()
        box.send_keys(text, Keys.ENTER)

    def wait(self, what: str, condition: Callable[[WebDriver], Any]) -> Any:
        def attempt(browser: WebDriver) -> Any:
            try:
                return condition(browser)
            except (NotShown, StaleElementReferenceException, WebDriverException):
                return False  # not drawn yet, or redrawn under us: look again
        try:
            return WebDriverWait(self.browser, WAIT_S, poll_frequency=0.1).until(attempt)
        except TimeoutException:
            self.shoot("failed")
            raise AssertionError(f"the explorer never showed {what}; screenshot in {self.shots}") from None

    # Reads go through one script each, so a page redrawn by a live block between finding an
    # element and reading it cannot turn the read stale.

    def text(self, css: str) -> str:
        found = self.browser.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;", css)
        if found is None:
            raise NotShown(f"nothing on the page matches {css}")
        return found

    def attribute(self, css: str, name: str) -> str | None:
        return self.browser.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            css, name)

    def rows(self, css: str) -> list[dict[str, Any]]:
        """Each row matched by ``css``: its data attributes and the text of its cells."""
        return self.browser.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(row => "
            "({data: {...row.dataset}, cells: [...row.cells].map(cell => cell.innerText.trim())}));", css)

    def field(self, name: str) -> str:
        return self.text(f'tr[data-field="{name}"] td')

    def shoot(self, name: str) -> None:
        """The whole page, not just the window, as a PNG."""
        path = self.shots / f"{name}.png"
        height = self.browser.execute_script("return document.documentElement.scrollHeight")
        shot = self.browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": height, "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        copy_to = os.environ.get("SOMNODE_SCREENSHOTS")
        if copy_to:
            Path(copy_to).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(copy_to) / path.name)

    def console_errors(self) -> list[str]:
        """Script errors, refused resources and policy violations; a 4xx from the API is an answer
        the page shows (an unknown block, a bad address), not an error of the page."""
        def answered(entry: dict) -> bool:
            message = entry["message"]
            return entry.get("source") == "network" and "/v1/" in message and "responded with a status of 4" in message
        return [entry["message"] for entry in self.browser.get_log("browser")
                if entry["level"] == "SEVERE" and not answered(entry)]


def _browser(profile: Path, log: Path) -> WebDriver:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are missing under CI: scripts/_test_tools.sh should have installed them")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, log_output=str(log)), options=options)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explorer]:
    root = tmp_path_factory.mktemp("explorer")
    shots = root / "screenshots"
    shots.mkdir()
    network = make_network(root / "net", validators=4, empty_block_wait_ms=300)
    with running(network) as net:
        net.wait_height(1)
        browser = _browser(root / "profile", root / "chromedriver.log")
        try:
            wallet = Wallet(network.bank_key_files[0], network.genesis.chain_id)
            payees = [KeyPair.generate() for _ in range(3)]
            explorer = Explorer(net, browser, shots, wallet, payees)
            # Some traffic first, so the latest blocks carry transfers.
            for i in range(8):
                explorer.send(payees[i % 3], 1250 + 725 * i, f"invoice {2041 + i}")
            yield explorer
        except BaseException:
            print(node_log(net, 0))
            raise
        finally:
            browser.quit()


def test_the_network_page_shows_height_validators_peers_and_mempool(explorer: Explorer) -> None:
    explorer.open()
    explorer.wait("every peer connected", lambda b: explorer.text("#figure-peers .figure-value") == "3 of 3")
    height = int(explorer.text("#figure-height .figure-value").replace(",", ""))
    assert height >= 8
    assert explorer.text("#figure-txs .figure-value") == "8"
    assert explorer.text("#figure-mempool .figure-value") == "0"
    assert explorer.text("#figure-supply .figure-value") == "3,000,000.00 som"
    rows = explorer.rows("#validators tbody tr")
    assert [row["cells"][0].split()[0] for row in rows] == [f"validator{k}" for k in range(1, 5)]
    for row in rows:
        name, power, link, _, signing = row["cells"]
        assert power == "100" and signing == "signing"
        assert link in ("this node", "connected")
    explorer.wait("the latest blocks", lambda b: len(explorer.rows("#latest-blocks tbody tr")) >= 8)
    explorer.wait("a block rate", lambda b: explorer.text("#figure-rate .figure-value").endswith("/s"))
    explorer.shoot("network")
    assert explorer.console_errors() == []


def test_a_block_committed_after_the_page_loaded_arrives_through_the_event_stream(explorer: Explorer) -> None:
    explorer.open()
    explorer.wait("the event stream connected", lambda b: explorer.attribute("#live-status", "data-state") == "live")
    committed = explorer.send(explorer.payees[0], 500, "live")
    height = committed["height"]
    explorer.wait(f"block {height} from the stream",
                  lambda b: int(explorer.attribute("#live-status", "data-last-height") or 0) >= height)
    (row,) = explorer.wait(f"block {height} in the latest blocks",
                           lambda b: explorer.rows(f'#latest-blocks tr[data-height="{height}"]'))
    assert row["cells"][2] == "1"  # its one transfer
    assert explorer.console_errors() == []


def test_search_finds_a_transaction_with_sender_recipient_amount_and_memo(explorer: Explorer) -> None:
    stx = explorer.sent[1]
    committed = explorer.net.client(0).tx(stx.hash.hex())
    explorer.open()
    explorer.search(stx.hash.hex())
    explorer.wait("the transaction's sender", lambda b: explorer.field("sender") == explorer.wallet.key.address)
    assert explorer.field("recipient") == explorer.payees[1].address
    assert explorer.field("amount") == "19.75 som"
    assert explorer.field("memo") == "invoice 2042"
    assert explorer.field("kind") == "Transfer"
    assert explorer.field("status") == "committed"
    assert explorer.field("block") == str(committed["height"])
    assert explorer.field("result").startswith("Applied")
    explorer.shoot("transaction")
    assert explorer.console_errors() == []


def test_search_finds_an_account_and_its_balance(explorer: Explorer) -> None:
    payee = explorer.payees[2]
    balance = explorer.net.client(0).account(payee.address)["balance_som"]
    explorer.open()
    explorer.search(payee.address)
    explorer.wait("the account's balance", lambda b: explorer.field("balance") == f"{balance} som")
    assert explorer.text("h1 + .subtitle") == payee.address
    assert explorer.field("nonce") == "0"
    explorer.shoot("account")
    explorer.search(payee.address.upper())
    explorer.wait("why a capitalised address is refused", lambda b: "lowercase" in explorer.text("#bad-address"))
    assert explorer.console_errors() == []


def test_a_block_page_shows_its_header_transactions_and_certificate(explorer: Explorer) -> None:
    stx = explorer.sent[2]
    height = explorer.net.client(0).tx(stx.hash.hex())["height"]
    block = explorer.net.client(0).block(height)
    explorer.open()
    explorer.search(str(height))
    explorer.wait(f"block {height}", lambda b: explorer.field("hash") == block["hash"])
    assert explorer.field("app-hash") == block["app_hash"]
    for field in ("previous_results_hash", "results_hash", "next_validators_hash", "tx_root"):
        assert explorer.field(field.replace("_", "-")) == block[field]
    signers = explorer.rows("#precommits tbody tr")
    assert {row["data"]["validator"] for row in signers} == {p["validator"] for p in block["commit"]["precommits"]}
    assert len(signers) >= 3
    explorer.browser.find_element(By.CSS_SELECTOR, f'#block-txs a[href="#/txs/{stx.hash.hex()}"]').click()
    explorer.wait("the transaction opened from its block", lambda b: explorer.field("memo") == "invoice 2043")
    explorer.open(f"#/blocks/{height}")
    explorer.wait(f"block {height} again", lambda b: explorer.field("hash") == block["hash"])
    explorer.shoot("block")
    assert explorer.console_errors() == []


def test_what_cannot_be_found_gets_a_clear_message(explorer: Explorer) -> None:
    explorer.open()
    explorer.search(secrets.token_hex(32))
    explorer.wait("that the hash is unknown", lambda b: explorer.text("#unknown-tx h2") == "Unknown transaction")
    assert "neither waiting in the mempool nor in a committed block" in explorer.text("#unknown-tx")
    explorer.shoot("unknown-transaction")
    explorer.search("a payment to Bakyt")
    explorer.wait("how to search", lambda b: "not an address, a transaction hash or a block height"
                  in explorer.text("#search-help"))
    explorer.search("999999999")
    explorer.wait("that the block is not committed yet", lambda b: "not committed yet" in explorer.text("#notice h2"))
    assert explorer.console_errors() == []


def test_a_stopped_validator_shows_as_disconnected_and_then_not_signing(explorer: Explorer) -> None:
    """Last in this module: it stops validator 4 for good."""
    explorer.open()
    validator4 = explorer.wait("the validators",
                               lambda b: explorer.rows("#validators tbody tr")[3]["data"]["validator"])
    explorer.net.stop(3)
    stopped = f'#validators tr[data-validator="{validator4}"]'

    explorer.wait("validator4 disconnected", lambda b: "not connected" in explorer.text(stopped))
    explorer.wait("validator4 absent from the recent certificates",
                  lambda b: explorer.text(f"{stopped} td:last-child") == "not signing")
    assert explorer.text(f"{stopped} .signed-count") == "0 of 20"
    assert explorer.console_errors() == []
