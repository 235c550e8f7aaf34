// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Shared vocabulary of the one-step prover: the spec's constants (spec/constants.py), error codes
// (spec/errors.py), decoded transactions (spec/types.py), the partial state a per-type contract
// receives and what it hands back. See docs/one-step-prover.md.

/// spec: constants.py
library OspConstants {
    int256 internal constant PRICE_ONE = 1e8;
    int256 internal constant FRACTION_ONE = 1e6;
    int256 internal constant FUNDING_RATE_ONE = 1e12;

    uint256 internal constant ACCOUNT_TREE_DEPTH = 32;
    uint256 internal constant SLOT_TREE_DEPTH = 32;

    uint256 internal constant MAX_U8 = 2 ** 8 - 1;
    uint256 internal constant MAX_U32 = 2 ** 32 - 1;
    uint256 internal constant MAX_U64 = 2 ** 64 - 1;
    uint256 internal constant MAX_ACCOUNT_ID = 2 ** ACCOUNT_TREE_DEPTH - 1;
    uint256 internal constant MAX_SLOT_ID = 2 ** SLOT_TREE_DEPTH - 1;
    uint256 internal constant MAX_AMOUNT = MAX_U64;
    uint256 internal constant MAX_PRICE = MAX_U64;
    uint256 internal constant MAX_TIMESTAMP = MAX_U64;
    uint256 internal constant MAX_NONCE = MAX_U64;
    int256 internal constant MAX_BALANCE = 2 ** 127 - 1;
    int256 internal constant MAX_FUNDING_INDEX = 2 ** 127 - 1;
    uint256 internal constant MAX_MARKETS = 16;
    uint256 internal constant MAX_ORACLES = 32;

    uint256 internal constant NONCE_WINDOW = 256;
    uint256 internal constant NONCE_HORIZON = 2 ** 32;
    uint256 internal constant FORCED_CANCEL_ALL = 2 ** 255;
    uint256 internal constant FORCED_DELEVERAGE = 2 ** 254;
    uint256 internal constant FORCED_DELEVERAGE_BITS = 104;

    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant SECP256K1_HALF_N = SECP256K1_N / 2;

    // Which tree a witness error is about (not in the spec: its WitnessError carries a message).
    uint8 internal constant TREE_ACCOUNTS = 0;
    uint8 internal constant TREE_SLOTS = 1;
    uint8 internal constant TREE_GLOBALS = 2;
}

/// spec: errors.ErrorCode — protocol numbers, identical to the spec's.
library ErrorCode {
    uint8 internal constant OK = 0;
    uint8 internal constant MALFORMED = 1;
    uint8 internal constant ACCOUNT_NOT_FOUND = 2;
    uint8 internal constant OWNER_MISMATCH = 3;
    uint8 internal constant BAD_SIGNATURE = 4;
    uint8 internal constant WRONG_SIGNER = 5;
    uint8 internal constant NONCE_TOO_LOW = 6;
    uint8 internal constant NONCE_USED = 7;
    uint8 internal constant EXPIRED = 8;
    uint8 internal constant SELF_TRADE = 9;
    uint8 internal constant NO_PENDING_DEPOSIT = 10;
    uint8 internal constant NO_PENDING_FORCED = 11;
    uint8 internal constant MARKET_NOT_FOUND = 12;
    uint8 internal constant MARKET_MISMATCH = 13;
    uint8 internal constant SAME_SIDE = 14;
    uint8 internal constant SLOT_NOT_FOUND = 15;
    uint8 internal constant ORDER_FILLED = 16;
    uint8 internal constant INVALID_ORDER = 17;
    uint8 internal constant INVALID_AMOUNT = 18;
    uint8 internal constant PRICE_LIMIT = 19;
    uint8 internal constant POSITION_LIMIT = 20;
    uint8 internal constant INSUFFICIENT_MARGIN = 21;
    uint8 internal constant BALANCE_OVERFLOW = 22;
    uint8 internal constant QUORUM_NOT_MET = 23;
    uint8 internal constant INVALID_ORACLE = 24;
    uint8 internal constant INVALID_PRICE = 25;
    uint8 internal constant STALE_TIMESTAMP = 26;
    uint8 internal constant FUTURE_TIMESTAMP = 27;
    uint8 internal constant WRONG_MARKET_COUNT = 28;
    uint8 internal constant FUNDING_RATE_EXCEEDED = 29;
    uint8 internal constant NOT_LIQUIDATABLE = 30;
    uint8 internal constant NOT_DELEVERAGEABLE = 31;
    uint8 internal constant NOT_REDUCING = 32;
    uint8 internal constant LIQUIDATION_PRICE = 33;
    uint8 internal constant TREE_FULL = 34;
    uint8 internal constant SAMPLE_TOO_OLD = 35;
    uint8 internal constant STALE_PRICE = 36;
    uint8 internal constant STALE_FUNDING = 37;
    uint8 internal constant NONCE_TOO_HIGH = 38;
}

// --- errors ------------------------------------------------------------------------------------------

/// spec: errors.InvalidTransaction — a validity rule failed. Raised by a per-type prover before any
/// write; OneStepProver turns it into the result (preRoot, code, false). Never escapes executeOneStep.
error InvalidTransaction(uint8 code);

// spec: errors.WitnessError — the witness does not authenticate against the pre-state root, or lacks a
// leaf the transaction needs. These do escape executeOneStep: a witness problem, never a tx outcome.
// `tree` is OspConstants.TREE_ACCOUNTS / TREE_SLOTS / TREE_GLOBALS.

/// keccak(accountsRoot ‖ slotsRoot ‖ keccak(globals) ‖ depositsDone ‖ forcedDone) != preRoot
error WitnessRootMismatch();
/// two proofs for the same leaf index
error WitnessDuplicateLeaf(uint8 tree, uint256 index);
/// a proof whose sibling count is not the tree depth, or whose index is outside the tree
error WitnessMalformedProof(uint8 tree, uint256 index);
/// a leaf and its siblings do not hash to the tree root
error WitnessProofMismatch(uint8 tree, uint256 index);
/// a proven leaf (or the globals blob) that does not decode
error WitnessUndecodableLeaf(uint8 tree, uint256 index);
/// the transaction reads an existing leaf, or writes a leaf, that the witness does not prove
error WitnessMissingLeaf(uint8 tree, uint256 index);
/// a value does not fit its committed width (the spec's encoder would raise OverflowError)
error ValueOutOfRange();

// --- decoded transactions (spec: types.py; the record decoding is spec: record_codec.py) ---------------

/// A 65-byte r ‖ s ‖ v signature, expanded from the record's EIP-2098 compact form.
struct Signature {
    bytes32 r;
    bytes32 s;
    uint8 v;
}

/// spec: types.Order
struct Order {
    uint32 accountId;
    uint8 market;
    bool isBuy;
    uint64 size;
    uint64 limitPrice;
    uint32 feeRate;
    uint64 expiry;
    uint64 nonce;
    Signature signature;
}

/// spec: types.OrderOrRef = Order | SlotRef (isRef: a SlotRef to `slot`; otherwise `order`)
struct OrderOrRef {
    bool isRef;
    uint32 slot;
    Order order;
}

/// spec: types.PriceSample
struct PriceSample {
    uint8 oracleIndex;
    uint64 price;
    uint64 timestamp;
    Signature signature;
}

/// spec: types.Deposit
struct Deposit {
    uint32 accountId;
}

/// spec: types.Trade
struct Trade {
    OrderOrRef maker;
    OrderOrRef taker;
    uint64 size;
}

/// spec: types.Withdraw
struct Withdraw {
    uint32 accountId;
    uint64 amount;
    uint64 expiry;
    uint64 nonce;
    Signature signature;
}

/// spec: types.OraclePrice
struct OraclePrice {
    uint8 market;
    PriceSample[] samples;
}

/// spec: types.FundingTick
struct FundingTick {
    uint64 timestamp;
    int128[] indices;
}

/// spec: types.Liquidate
struct Liquidate {
    OrderOrRef liquidator;
    uint32 liquidatedId;
    uint64 size;
}

/// spec: types.Deleverage
struct Deleverage {
    uint32 deleveragedId;
    uint32 deleveragerId;
    uint8 market;
    uint64 size;
}

/// spec: types.CancelAll
struct CancelAll {
    uint32 accountId;
    uint64 nonceFloor;
    Signature signature;
}

/// spec: types.CollectFees
struct CollectFees {
    uint32 accountId;
}

// --- the witness (spec: witness.py), read in place from calldata --------------------------------------

/// spec: witness.LeafProof (`leaf` is the packed encoding; empty for an empty leaf)
struct LeafProof {
    uint64 index;
    bytes leaf;
    bytes32[] siblings;
}

/// spec: witness.Witness
struct Witness {
    bytes32 accountsRoot;
    bytes32 slotsRoot;
    bytes globals;
    uint64 depositsDone;
    uint64 forcedDone;
    LeafProof[] accounts;
    LeafProof[] slots;
}
