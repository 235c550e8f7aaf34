"""End to end on anvil with the HTTP price source: `optinode sequencer` (a real process, the config
loaded by the CLI) signs ETH prices that it fetches from a JSON API this test serves on 127.0.0.1.
A good price lands on L1 signed by all three devnet oracles; a doubling (past the devnet's 1%/s
max_price_move) is refused, not signed; garbage is refused and raises alert=oracle_source_stale.
Every posted root replays."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import OraclePrice
from optinode.testing.world import ETH, price_of

from tests.services.test_market_services_http import http_table

MARKER = "# ---- market services"  # configs/devnet.toml: its [market_services] tables follow

SERVICES = """
[market_services]
enabled = true

[market_services.oracle]
source = "http"
interval = 0.5
signers = [{ seed = "optinode-devnet-oracle-0" }, { seed = "optinode-devnet-oracle-1" }, { seed = "optinode-devnet-oracle-2" }]

"""


class PriceApi:
    """A JSON price API in a thread: `body` is what every GET answers."""

    def __init__(self) -> None:
        api = self
        self.body = b"{}"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = api.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def price(self, usd: str) -> None:
        self.body = json.dumps({"data": {"price": usd}}).encode()

    def __enter__(self) -> "PriceApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def eth_updates(chain) -> list[OraclePrice]:
    return [t for b in chain.l1_batches() for t in map(decode_transaction, b.records) if isinstance(t, OraclePrice) and t.market == ETH]


def test_the_sequencer_signs_verified_http_prices_and_refuses_a_jump_and_garbage(chain, tmp_path) -> None:
    with PriceApi() as api:
        api.price("3012.3")
        chain.config_path.write_text(chain.config_path.read_text().split(MARKER)[0] + SERVICES + http_table(url=f"http://127.0.0.1:{api.port}/v1/eth-usd?apikey=SECRET", staleness=3.0))
        node = chain.start_sequencer(tmp_path / "seq")

        def log() -> str:
            return node.log_path.read_text(errors="replace")

        try:
            node.wait_for(lambda: any(u.samples[0].price == price_of(ETH, "3012.3") for u in eth_updates(chain)),
                          "the API's ETH price on L1", timeout=60, mine_every=1.0)
            good = eth_updates(chain)
            assert all([s.oracle_index for s in u.samples] == [0, 1, 2] for u in good)
            api.price("6024.6")  # the API doubles: far past 1% per second of L1 time
            node.wait_for(lambda: "move_too_fast" in log(), "the jump refused", timeout=30, mine_every=1.0)
            api.price("{oops")
            node.wait_for(lambda: "alert=oracle_source_stale" in log(), "the stale alert", timeout=30, mine_every=1.0)
            batches = chain.l1_batches()
        finally:
            assert node.stop() == 0, node.log_tail()
    assert "SECRET" not in log()  # the URL's query (an API key) never reaches the log
    signed = {s.price for u in eth_updates(chain) for s in u.samples}
    assert signed == {price_of(ETH, "3012.3")}  # the jump and the garbage were never signed
    _, receipts, _ = chain.replay(batches)
    assert all(r.code == ErrorCode.OK for per_batch in receipts for _, r in per_batch)
