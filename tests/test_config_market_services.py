"""The [market_services] section: off by default, strict validation that names the key, seed keys
only on a devnet."""

from __future__ import annotations

import pytest

from optinode.config import ConfigError, MarketServicesSection, SignerSource, load_signer, parse_config

from tests.test_config_node import DEVNET, expect_config_error, with_node

SIGNERS = "signers = [{ seed = 'optinode-devnet-oracle-0' }]"


def test_absent_means_off_and_the_shipped_tables_load() -> None:
    assert parse_config(with_node(""), "c.toml").market_services == MarketServicesSection()
    shipped = parse_config(DEVNET.read_text(), "devnet.toml").market_services
    assert shipped.enabled is False and len(shipped.oracle.signers) == 3
    assert shipped.funding.interval == 60.0 and shipped.liquidator.key.seed == "optinode-devnet-liquidator"


@pytest.mark.parametrize(
    "section, where, problem",
    [
        ("[market_services]\nenable = true\n", "market_services", "unknown key `enable`"),
        ("[market_services.oracle]\nsigners = []\n", "market_services.oracle.signers", "length >= 1"),
        (f"[market_services.oracle]\n{SIGNERS}\ninterval = 0\n", "market_services.oracle.interval", "> 0"),
        (f"[market_services.oracle]\n{SIGNERS}\nspread_ppm = 2000000\n", "market_services.oracle.spread_ppm", "<= 1000000"),
        ("[market_services.oracle]\nsigners = [{ seed = 'x', env = 'A' }]\n", "market_services.oracle.signers[0]",
         "exactly one of env or keystore or seed"),
        (f"[market_services.oracle]\n{SIGNERS}\n[[market_services.oracle.crash]]\nmarket = 5\nafter_updates = 1\ndrop_ppm = 10\n",
         "market_services.oracle.crash[0].market", "no market 5 in the genesis"),
        (f"[market_services.oracle]\n{SIGNERS}\n[[market_services.oracle.crash]]\nmarket = 0\nafter_updates = 1\ndrop_ppm = 1000000\n",
         "market_services.oracle.crash[0].drop_ppm", "<= 999999"),
        ("[market_services.funding]\nperiod = 0\n", "market_services.funding.period", ">= 1"),
        ("[market_services.liquidator]\ninterval = 1.0\n", "market_services.liquidator", "missing required key `key`"),
        ("[market_services.liquidator]\nkey = { keystore = 'k.json' }\n", "market_services.liquidator.key", "needs password_env"),
    ],
)
def test_bad_market_services_values_name_the_key(section: str, where: str, problem: str) -> None:
    expect_config_error(section, where, problem)


def test_a_seed_key_is_public_and_only_for_a_devnet() -> None:
    source = SignerSource(seed="optinode-devnet-liquidator")
    assert load_signer(source, "k", devnet=True).address.lower() == "0x2d017f84b9a121b3cedaaa49a79792939f32b174"
    with pytest.raises(ConfigError, match="k: a seed key is public"):
        load_signer(source, "k", devnet=False)
    assert load_signer(SignerSource(env="LIQ"), "k", devnet=False, environ={"LIQ": "0x" + "4c" * 32}).address
