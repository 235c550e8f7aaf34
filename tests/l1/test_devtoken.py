"""DevToken, the devnet collateral: deploy on anvil, mint, transfer, and custom-error reverts."""

import pytest
from web3 import Web3
from web3.exceptions import ContractCustomError

ONE = 10**6  # 6 decimals


def _selector(signature: str) -> str:
    return "0x" + Web3.keccak(text=signature)[:4].hex()


@pytest.fixture
def token(deploy, snapshot):
    return deploy("DevToken", "Devnet USD", "dUSD")


def test_metadata(token) -> None:
    assert token.functions.decimals().call() == 6
    assert token.functions.name().call() == "Devnet USD"
    assert token.functions.symbol().call() == "dUSD"
    assert token.functions.totalSupply().call() == 0


def test_mint_and_transfer(w3, token, accounts) -> None:
    alice, bob = accounts[1], accounts[2]
    tx = token.functions.mint(alice.address, 100 * ONE).transact({"from": accounts[0].address})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    assert token.functions.balanceOf(alice.address).call() == 100 * ONE
    assert token.functions.totalSupply().call() == 100 * ONE

    tx = token.functions.transfer(bob.address, 30 * ONE).transact({"from": alice.address})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args["to"], event.args["value"]) == (alice.address, bob.address, 30 * ONE)
    assert token.functions.balanceOf(alice.address).call() == 70 * ONE
    assert token.functions.balanceOf(bob.address).call() == 30 * ONE


def test_signed_raw_transaction(w3, token, accounts) -> None:
    # The path the node itself uses: sign locally, send raw.
    alice = accounts[3]
    tx = token.functions.mint(alice.address, 5 * ONE).build_transaction(
        {"from": alice.address, "nonce": w3.eth.get_transaction_count(alice.address), "chainId": w3.eth.chain_id}
    )
    signed = alice.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert token.functions.balanceOf(alice.address).call() == 5 * ONE


def test_over_transfer_reverts_with_custom_error(w3, token, accounts) -> None:
    alice, bob = accounts[1], accounts[2]
    w3.eth.wait_for_transaction_receipt(token.functions.mint(alice.address, ONE).transact({"from": alice.address}))
    with pytest.raises(ContractCustomError) as info:
        token.functions.transfer(bob.address, ONE + 1).call({"from": alice.address})
    assert _selector("InsufficientBalance()") in str(info.value.data)
    with pytest.raises(ContractCustomError) as info:
        token.functions.transfer(bob.address, ONE + 1).transact({"from": alice.address})
    assert _selector("InsufficientBalance()") in str(info.value.data)
    assert token.functions.balanceOf(alice.address).call() == ONE


def test_transfer_from_needs_allowance(w3, token, accounts) -> None:
    alice, bob, carol = accounts[1], accounts[2], accounts[3]
    w3.eth.wait_for_transaction_receipt(token.functions.mint(alice.address, 10 * ONE).transact({"from": alice.address}))
    with pytest.raises(ContractCustomError) as info:
        token.functions.transferFrom(alice.address, carol.address, ONE).call({"from": bob.address})
    assert _selector("InsufficientAllowance()") in str(info.value.data)

    w3.eth.wait_for_transaction_receipt(token.functions.approve(bob.address, 3 * ONE).transact({"from": alice.address}))
    w3.eth.wait_for_transaction_receipt(
        token.functions.transferFrom(alice.address, carol.address, 2 * ONE).transact({"from": bob.address})
    )
    assert token.functions.allowance(alice.address, bob.address).call() == ONE
    assert token.functions.balanceOf(carol.address).call() == 2 * ONE


_deployer_nonces: set[int] = set()


@pytest.mark.parametrize("round_", range(3))
def test_snapshot_isolates_tests(w3, token, deployer, round_) -> None:
    # Every test starts from the same chain state: the deployer's nonce right after the
    # fixture's deployment is the same each time, although each round sends one more tx.
    _deployer_nonces.add(w3.eth.get_transaction_count(deployer.address))
    assert len(_deployer_nonces) == 1
    w3.eth.wait_for_transaction_receipt(token.functions.mint(deployer.address, ONE).transact({"from": deployer.address}))
    assert token.functions.totalSupply().call() == ONE


def test_default_accounts_match_anvil(w3, accounts) -> None:
    assert [a.address for a in accounts] == w3.eth.accounts
    assert w3.eth.chain_id == 31337
