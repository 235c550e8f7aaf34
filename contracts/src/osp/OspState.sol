// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {
    OspConstants,
    Witness,
    LeafProof,
    WitnessMissingLeaf,
    WitnessUndecodableLeaf,
    ValueOutOfRange
} from "./OspTypes.sol";

/// @title OspState — mirrors optinode/spec/state.py for a witness-backed state
/// @notice The state holds only the leaves the witness proves (spec: execute_witness step 3). Reading an
///         existing account or slot that is not there reverts WitnessMissingLeaf, like the spec's
///         get_account/get_slot raise WitnessError. Writes go through setAccount/setSlot, which mark the
///         leaf dirty (spec: dirty_accounts/dirty_slots); dirtyAccounts, dirtySlots and encodeGlobals give
///         what the post-state root is made of.
///
///         Memory structs are references, exactly like the spec's mutable Structs: getAccount returns the
///         stored account itself, so `account.nonceBase = …` after a setAccount still reaches the post-state.
library OspState {
    struct AccountEntry {
        uint256 id;
        bool dirty;
        StateCodec.Account account;
    }

    struct SlotEntry {
        uint256 id;
        bool dirty;
        StateCodec.Slot slot;
    }

    struct State {
        StateCodec.Globals g; // config, markets, system balances and counters
        bytes globals; // the witness's globals blob: its config part is reused verbatim by encodeGlobals
        uint64 depositsDone;
        uint64 forcedDone;
        AccountEntry[] accounts; // capacity: the witness's accounts + 1 new one (Deposit)
        uint256 accountCount;
        SlotEntry[] slots; // capacity: the witness's slots + 2 new ones (Trade)
        uint256 slotCount;
    }

    /// spec: execute_witness step 3 — a state made of the proven leaves only: decode_globals, and
    /// decode_account/decode_slot of every non-empty leaf (an empty leaf is an absent account or slot).
    /// Anything that does not decode exactly is a witness error. (OspProver has already checked the
    /// proofs, so no index repeats.)
    function load(Witness calldata w) internal pure returns (State memory s) {
        if (!isGlobalsEncoding(w.globals)) revert WitnessUndecodableLeaf(OspConstants.TREE_GLOBALS, 0);
        s.globals = w.globals;
        s.g = StateCodec.decodeGlobals(s.globals);
        s.depositsDone = w.depositsDone;
        s.forcedDone = w.forcedDone;
        LeafProof[] calldata proofs = w.accounts;
        s.accounts = new AccountEntry[](proofs.length + 1);
        for (uint256 i = 0; i < proofs.length; ++i) {
            bytes calldata leaf = proofs[i].leaf;
            if (leaf.length == 0) continue;
            if (leaf.length < 93 || leaf.length != 93 + 25 * uint256(uint8(leaf[92]))) {
                revert WitnessUndecodableLeaf(OspConstants.TREE_ACCOUNTS, proofs[i].index);
            }
            StateCodec.Account memory account = StateCodec.decodeAccount(leaf);
            if (!isCanonicalAccount(account, s.g.markets.length)) {
                revert WitnessUndecodableLeaf(OspConstants.TREE_ACCOUNTS, proofs[i].index);
            }
            s.accounts[s.accountCount++] = AccountEntry(proofs[i].index, false, account);
        }
        proofs = w.slots;
        s.slots = new SlotEntry[](proofs.length + 2);
        for (uint256 i = 0; i < proofs.length; ++i) {
            bytes calldata leaf = proofs[i].leaf;
            if (leaf.length == 0) continue;
            // spec: decode_slot reads the side byte as a strict boolean; the market must exist
            if (leaf.length != 34 || uint8(leaf[5]) > 1 || uint8(leaf[4]) >= s.g.markets.length) {
                revert WitnessUndecodableLeaf(OspConstants.TREE_SLOTS, proofs[i].index);
            }
            s.slots[s.slotCount++] = SlotEntry(proofs[i].index, false, StateCodec.decodeSlot(leaf));
        }
    }

    /// spec: decode_account (markets strictly increasing, no empty position) and execute_witness
    /// (every position's market exists).
    function isCanonicalAccount(StateCodec.Account memory account, uint256 marketCount) internal pure returns (bool) {
        uint256 previous = type(uint256).max; // "none yet"
        for (uint256 i = 0; i < account.positions.length; ++i) {
            StateCodec.Position memory p = account.positions[i];
            if (p.size == 0 || p.market >= marketCount) return false;
            if (previous != type(uint256).max && p.market <= previous) return false;
            previous = p.market;
        }
        return true;
    }

    /// Whether decode_globals reads `data` exactly (StateCodec.globalsLength of its two counts).
    function isGlobalsEncoding(bytes calldata data) internal pure returns (bool) {
        if (data.length < 34) return false;
        uint256 pos = 34 + 20 * uint256(uint8(data[33]));
        if (data.length <= pos) return false;
        return data.length == StateCodec.globalsLength(uint8(data[33]), uint8(data[pos]));
    }

    /// spec: get_account — (the account, true), or found = false when no account has that id.
    function getAccount(State memory s, uint256 accountId)
        internal
        pure
        returns (StateCodec.Account memory account, bool found)
    {
        if (accountId >= s.g.nextAccountId) return (account, false);
        for (uint256 i = 0; i < s.accountCount; ++i) {
            if (s.accounts[i].id == accountId) return (s.accounts[i].account, true);
        }
        revert WitnessMissingLeaf(OspConstants.TREE_ACCOUNTS, accountId);
    }

    /// spec: get_slot
    function getSlot(State memory s, uint256 slotId) internal pure returns (StateCodec.Slot memory slot, bool found) {
        if (slotId >= s.g.nextSlot) return (slot, false);
        for (uint256 i = 0; i < s.slotCount; ++i) {
            if (s.slots[i].id == slotId) return (s.slots[i].slot, true);
        }
        revert WitnessMissingLeaf(OspConstants.TREE_SLOTS, slotId);
    }

    /// spec: set_account
    function setAccount(State memory s, uint256 accountId, StateCodec.Account memory account) internal pure {
        for (uint256 i = 0; i < s.accountCount; ++i) {
            if (s.accounts[i].id == accountId) {
                s.accounts[i].account = account;
                s.accounts[i].dirty = true;
                return;
            }
        }
        s.accounts[s.accountCount++] = AccountEntry(accountId, true, account);
    }

    /// spec: set_slot
    function setSlot(State memory s, uint256 slotId, StateCodec.Slot memory slot) internal pure {
        for (uint256 i = 0; i < s.slotCount; ++i) {
            if (s.slots[i].id == slotId) {
                s.slots[i].slot = slot;
                s.slots[i].dirty = true;
                return;
            }
        }
        s.slots[s.slotCount++] = SlotEntry(slotId, true, slot);
    }

    /// The dirty account leaves: their ids and leaf hashes (spec: hash_account).
    function dirtyAccounts(State memory s) internal pure returns (uint256[] memory ids, bytes32[] memory hashes) {
        uint256 n;
        for (uint256 i = 0; i < s.accountCount; ++i) {
            if (s.accounts[i].dirty) ++n;
        }
        ids = new uint256[](n);
        hashes = new bytes32[](n);
        n = 0;
        for (uint256 i = 0; i < s.accountCount; ++i) {
            AccountEntry memory e = s.accounts[i];
            if (!e.dirty) continue;
            ids[n] = e.id;
            hashes[n++] = keccak256(StateCodec.encodeAccount(e.account));
        }
    }

    /// The dirty slot leaves: their ids and leaf hashes (spec: hash_slot).
    function dirtySlots(State memory s) internal pure returns (uint256[] memory ids, bytes32[] memory hashes) {
        uint256 n;
        for (uint256 i = 0; i < s.slotCount; ++i) {
            if (s.slots[i].dirty) ++n;
        }
        ids = new uint256[](n);
        hashes = new bytes32[](n);
        n = 0;
        for (uint256 i = 0; i < s.slotCount; ++i) {
            SlotEntry memory e = s.slots[i];
            if (!e.dirty) continue;
            ids[n] = e.id;
            hashes[n++] = keccak256(StateCodec.encodeSlot(e.slot));
        }
    }

    /// spec: commitment.encode_globals. The config part (domain separator, quorum, oracles and the static
    /// market parameters, the time and fee parameters) never changes, and decode_globals/encode_globals
    /// are exact inverses on the fixed-width layout, so the witness's blob is rewritten in place at the
    /// dynamic fields: per market price, price time, funding index and sample time; then the system
    /// fields (the time and fee parameters after them stay as they are), then the
    ///         socialized loss and the total collateral.
    function encodeGlobals(State memory s) internal pure returns (bytes memory out) {
        out = s.globals;
        StateCodec.Globals memory g = s.g;
        uint256 pos = 34 + 20 * g.oracles.length + 1;
        for (uint256 i = 0; i < g.markets.length; ++i) {
            StateCodec.MarketState memory m = g.markets[i];
            writeUint(out, pos + 44, 8, m.price);
            writeUint(out, pos + 52, 8, m.priceTime);
            writeUint(out, pos + 60, 16, uint128(m.fundingIndex));
            writeUint(out, pos + 76, 8, m.sampleTime);
            pos += 84;
        }
        writeUint(out, pos, 8, g.time);
        writeUint(out, pos + 8, 8, g.fundingTime);
        writeUint(out, pos + 16, 16, uint128(g.insurance));
        writeUint(out, pos + 32, 16, uint128(g.fees));
        writeUint(out, pos + 48, 16, uint128(g.fundingPool));
        writeUint(out, pos + 64, 8, g.nextAccountId);
        writeUint(out, pos + 72, 8, g.nextSlot);
        writeUint(out, pos + 124, 16, uint128(g.socializedLoss));
        writeUint(out, pos + 140, 16, uint128(g.totalCollateral));
    }

    /// Writes the low `width` bytes of `value` big-endian at data[pos:pos+width] (in bounds by construction).
    function writeUint(bytes memory data, uint256 pos, uint256 width, uint256 value) private pure {
        assembly ("memory-safe") {
            let ptr := add(add(data, 0x20), pos)
            let shift := sub(256, mul(width, 8))
            let mask := shl(shift, sub(shl(mul(width, 8), 1), 1))
            mstore(ptr, or(and(mload(ptr), not(mask)), and(shl(shift, value), mask)))
        }
    }

    /// A signed value in a 16-byte committed field (spec: the encoder's to_bytes(16, signed=True)).
    function toInt128(int256 value) internal pure returns (int128) {
        if (value < type(int128).min || value > type(int128).max) revert ValueOutOfRange();
        return int128(value);
    }

    /// A signed value in an 8-byte committed field.
    function toInt64(int256 value) internal pure returns (int64) {
        if (value < type(int64).min || value > type(int64).max) revert ValueOutOfRange();
        return int64(value);
    }
}
