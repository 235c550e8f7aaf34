"""The [node] section of configs: strict validation, key sources that never leak the key."""

from __future__ import annotations

import pickle
from pathlib import Path

import msgspec
import pytest
from eth_account import Account

from optinode.config import (
    BATCH_BYTES_CAP,
    L1_TX_GAS_CAP,
    ConfigError,
    NodeSection,
    load_config,
    load_key,
    parse_config,
    resolve_l1_check_rpc,
    resolve_l1_rpc,
)

REPO = Path(__file__).resolve().parents[1]
DEVNET = REPO / "configs" / "devnet.toml"
KEY = "0x" + "4c" * 32
ADDRESS = Account.from_key(KEY).address


def with_node(extra: str) -> str:
    """devnet.toml's genesis with a different [node] section."""
    text = DEVNET.read_text()
    return text[: text.index("[node]")] + extra


def test_shipped_configs_load() -> None:
    devnet = load_config(DEVNET)
    assert devnet.node.data_dir == "data/devnet"
    assert devnet.node.batch.max_gas == 15_000_000 < L1_TX_GAS_CAP
    assert devnet.node.keys.proposer.env == "OPTINODE_PROPOSER_KEY"
    testnet = load_config(REPO / "configs" / "testnet.example.toml")
    assert testnet.genesis.chain_id == 11155111
    assert testnet.node.l1_rpc is None and testnet.node.l1_rpc_env == "OPTINODE_L1_RPC"
    assert testnet.node.keys.proposer.keystore == "keys/proposer.json"


def test_node_section_defaults_when_absent() -> None:
    config = parse_config(with_node(""), "x.toml")
    assert config.node == NodeSection()


@pytest.mark.parametrize(
    "node, where, problem",
    [
        ("[node]\ndata_dirr = 'x'\n", "node", "unknown key `data_dirr`"),
        ("[node.batch]\nmax_gass = 1\n", "node.batch", "unknown key `max_gass`"),
        (f"[node.batch]\nmax_gas = {L1_TX_GAS_CAP + 1}\n", "node.batch.max_gas", f"<= {L1_TX_GAS_CAP}"),
        (f"[node.batch]\nmax_bytes = {BATCH_BYTES_CAP + 1}\n", "node.batch.max_bytes", f"<= {BATCH_BYTES_CAP}"),
        ("[node.batch]\nmax_age = 0\n", "node.batch.max_age", "> 0"),
        ("[node.sender]\nfee_bump_percent = 5\n", "node.sender.fee_bump_percent", ">= 10"),
        ("[node]\npoll_interval = -1.0\n", "node.poll_interval", "> 0"),
        ("[node]\nconfirmation_depth = 'two'\n", "node.confirmation_depth", "Expected `int`"),
        ("[node]\nl1_rpc = 'ftp://x'\n", "node.l1_rpc", "matching regex"),
        ("[node]\nl1_rpc = 'http://a'\nl1_rpc_env = 'RPC'\n", "node", "not both"),
        ("[node.keys]\nproposer = { env = 'A', keystore = 'k.json' }\n", "node.keys.proposer", "exactly one of env or keystore"),
        ("[node.keys]\nproposer = {}\n", "node.keys.proposer", "exactly one of env or keystore"),
        ("[node.keys]\nproposer = { keystore = 'k.json' }\n", "node.keys.proposer", "needs password_env"),
        ("[node.keys]\nproposer = { env = 'A', password_env = 'B' }\n", "node.keys.proposer", "belongs to a keystore"),
        ("[node.keys]\nproposer = { env = 'lower-case' }\n", "node.keys.proposer.env", "matching regex"),
        ("[node.keys]\nsequencer = { env = 'A' }\n", "node.keys", "unknown key `sequencer`"),
        ("[node.keys]\nproposer = { key = '0xabc' }\n", "node.keys.proposer", "unknown key `key`"),
        ("[l1]\nproposers = []\n", "l1.proposers", "length >= 1"),
        ("[l1]\nproposers = ['0x70997970c51812dc3a010c7d01b50e0d17dc79C8']\n", "l1.proposers[0]", "bad EIP-55 checksum"),
        ("[l1]\nproposers = ['0x0000000000000000000000000000000000000001', '0x0000000000000000000000000000000000000001']\n", "l1.proposers", "duplicate proposer"),
        ("[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\nchallenge_window = 100\nclock = 50\nforced_deadline = 200\n",
         "l1.forced_deadline", "must be at least challenge_window + 2 * clock + inclusion_margin = 3800 s"),
        ("[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\nslash_reward_bps = 10000\n", "l1.slash_reward_bps", "<= 9999"),
        ("[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\narity = 1\n", "l1.arity", ">= 2"),
        ("[node.batch]\nqueue_margin = 200.0\n[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\n"
         "challenge_window = 10\nclock = 10\nforced_deadline = 100\ninclusion_margin = 10\n", "node.batch.queue_margin", "shorter than"),
        ("[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\nmax_timestamp_drift = 86400\n",
         "l1.max_timestamp_drift", "must not exceed genesis.price_validity and genesis.funding_validity"),
        ("[node.batch]\ndrift_margin = 400.0\n[l1]\nproposers = ['0x0000000000000000000000000000000000000001']\nmax_timestamp_drift = 300\n",
         "node.batch.drift_margin", "must be below l1.max_timestamp_drift"),
    ],
)
def test_bad_node_values_name_the_key(node: str, where: str, problem: str) -> None:
    expect_config_error(node, where, problem)


def expect_config_error(sections: str, where: str, problem: str) -> None:
    """devnet.toml's genesis with `sections` is refused with a message naming `where`."""
    with pytest.raises(ConfigError) as info:
        parse_config(with_node(sections), "c.toml")
    message = str(info.value)
    assert message.startswith(f"c.toml: {where}: "), message
    assert problem in message, message


def node_with(**keys: str) -> NodeSection:
    body = "\n".join(f"{role} = {value}" for role, value in keys.items())
    return parse_config(with_node(f"[node.keys]\n{body}\n"), "c.toml").node


def test_key_from_the_environment_never_prints() -> None:
    node = node_with(proposer="{ env = 'PK' }")
    secret = load_key(node, "proposer", environ={"PK": KEY})
    assert secret.address == ADDRESS
    assert secret.account().address == ADDRESS
    for text in (repr(secret), str(secret), f"{secret}", repr([secret])):
        assert KEY[2:] not in text.lower() and "4c4c4c" not in text.lower()
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert load_key(node, "proposer", environ={"PK": KEY[2:]}).address == ADDRESS  # 0x is optional


@pytest.mark.parametrize(
    "environ, problem",
    [
        ({}, "environment variable PK is not set"),
        ({"PK": "  "}, "environment variable PK is not set"),
        ({"PK": KEY + "00"}, "does not hold a 32-byte hex private key"),
        ({"PK": "0x" + "zz" * 32}, "does not hold a 32-byte hex private key"),
        ({"PK": "0x" + "00" * 32}, "not a valid secp256k1 private key"),
        ({"PK": "0x" + "ff" * 32}, "not a valid secp256k1 private key"),
    ],
)
def test_bad_env_keys_are_reported_without_the_value(environ: dict[str, str], problem: str) -> None:
    node = node_with(proposer="{ env = 'PK' }")
    with pytest.raises(ConfigError) as info:
        load_key(node, "proposer", environ=environ)
    message = str(info.value)
    assert message.startswith("node.keys.proposer: ") and problem in message
    value = environ.get("PK", "").strip()
    assert not value or value.removeprefix("0x") not in message


def test_unconfigured_role() -> None:
    with pytest.raises(ConfigError, match="node.keys.challenger: no key source configured"):
        load_key(node_with(proposer="{ env = 'PK' }"), "challenger", environ={})


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "proposer.json"
    path.parent.mkdir()
    # pbkdf2 with few iterations: a real keystore uses scrypt; decryption is the same code path
    path.write_bytes(msgspec.json.encode(Account.encrypt(KEY, "correct horse", kdf="pbkdf2", iterations=2)))
    return path


def test_key_from_a_keystore(keystore: Path) -> None:
    node = node_with(proposer="{ keystore = 'keys/proposer.json', password_env = 'PW' }")
    secret = load_key(node, "proposer", environ={"PW": "correct horse"}, base_dir=keystore.parents[1])
    assert secret.address == ADDRESS


@pytest.mark.parametrize(
    "content, environ, problem",
    [
        (None, {"PW": "correct horse"}, "wrong password or damaged keystore"),
        (None, {"PW": "wrong"}, "wrong password or damaged keystore"),
        (None, {}, "environment variable PW (the keystore password) is not set"),
        (b"not json", {"PW": "x"}, "is not a JSON keystore file"),
        (b'{"version": 3}', {"PW": "x"}, "is not an eth-account (V3) keystore"),
        (b"missing", {"PW": "x"}, "cannot read keystore"),
    ],
)
def test_bad_keystores(keystore: Path, content: bytes | None, environ: dict[str, str], problem: str) -> None:
    if content == b"missing":
        keystore.unlink()
    elif content is not None:
        keystore.write_bytes(content)
    elif environ.get("PW") == "correct horse":  # damage the ciphertext
        data = msgspec.json.decode(keystore.read_bytes())
        data["crypto"]["ciphertext"] = "00" * 32
        keystore.write_bytes(msgspec.json.encode(data))
    node = node_with(proposer=f"{{ keystore = '{keystore}', password_env = 'PW' }}")
    with pytest.raises(ConfigError) as info:
        load_key(node, "proposer", environ=environ)
    assert problem in str(info.value)
    assert "correct horse" not in str(info.value)


def test_l1_rpc_resolution() -> None:
    literal = parse_config(with_node("[node]\nl1_rpc = 'http://node:8545'\n")).node
    from_env = parse_config(with_node("[node]\nl1_rpc_env = 'RPC'\n")).node
    assert resolve_l1_rpc(literal) == "http://node:8545"
    assert resolve_l1_rpc(literal, "http://cli:1") == "http://cli:1"
    assert resolve_l1_rpc(from_env, environ={"RPC": "https://x/key"}) == "https://x/key"
    with pytest.raises(ConfigError, match="RPC is not set"):
        resolve_l1_rpc(from_env, environ={})
    with pytest.raises(ConfigError, match="no L1 RPC URL"):
        resolve_l1_rpc(NodeSection(), environ={})


def test_l1_check_rpc_resolution() -> None:
    """The second endpoint a watchtower cross-checks on (docs/verifier.md): optional."""
    literal = parse_config(with_node("[node]\nl1_check_rpc = 'https://other:8545'\n")).node
    from_env = parse_config(with_node("[node]\nl1_check_rpc_env = 'CHECK'\n")).node
    assert resolve_l1_check_rpc(NodeSection(), environ={}) is None
    assert resolve_l1_check_rpc(literal) == "https://other:8545"
    assert resolve_l1_check_rpc(NodeSection(), "http://cli:2") == "http://cli:2"
    assert resolve_l1_check_rpc(from_env, environ={"CHECK": "https://y/key"}) == "https://y/key"
    with pytest.raises(ConfigError, match="CHECK is not set"):
        resolve_l1_check_rpc(from_env, environ={})
    with pytest.raises(ConfigError, match="l1_check_rpc"):
        parse_config(with_node("[node]\nl1_check_rpc = 'ftp://x'\n"))
