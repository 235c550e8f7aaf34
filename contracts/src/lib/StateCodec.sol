// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title StateCodec — mirrors optinode/spec/commitment.py
/// @notice Packed big-endian encodings of the globals blob and of account and slot leaves, and the
///         state root over them:
///         stateRoot = keccak(accountsRoot ‖ slotsRoot ‖ keccak(globals) ‖ uint64 depositsDone ‖ uint64 forcedDone)
library StateCodec {
    error MalformedEncoding();

    struct MarketConfig {
        uint64 stepSize;
        uint64 tickSize;
        uint32 initialMargin;
        uint32 maintenanceMargin;
        uint32 liquidationFee;
        uint64 maxFundingRate;
        uint64 maxPosition;
    }

    struct MarketState {
        uint64 price;
        uint64 priceTime; // lower median of the last update's sample times
        int128 fundingIndex;
        uint64 sampleTime; // newest sample time of the last update (no sample is used twice)
    }

    struct Globals {
        bytes32 domainSeparator;
        uint8 quorum;
        address[] oracles;
        MarketConfig[] configs;
        MarketState[] markets;
        uint64 time;
        uint64 fundingTime;
        int128 insurance;
        int128 fees;
        int128 fundingPool;
        uint64 nextAccountId;
        uint64 nextSlot;
        // the time and fee parameters (config, committed after the system fields)
        address feeOwner;
        uint64 maxSampleAge;
        uint64 priceValidity;
        uint64 fundingValidity;
        // the socialized loss and the total collateral (docs/risk.md §4.4), committed last
        int128 socializedLoss;
        int128 totalCollateral;
    }

    struct Position {
        uint8 market;
        int64 size;
        int128 fundingIndex;
    }

    struct Account {
        address owner;
        int128 collateral;
        uint128 withdrawn;
        uint64 nonceBase;
        uint256 nonceBits;
        Position[] positions; // sorted by market id
    }

    struct Slot {
        uint32 accountId;
        uint8 market;
        bool isBuy;
        uint64 limitPrice;
        uint64 remaining;
        uint32 feeRate;
        uint64 expiry;
    }

    // --- state root --------------------------------------------------------------------------------

    /// spec: compute_state_root_from_parts
    function stateRoot(
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        bytes32 globalsHash,
        uint64 depositsDone,
        uint64 forcedDone
    ) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(accountsRoot, slotsRoot, globalsHash, depositsDone, forcedDone));
    }

    // --- reading packed bytes ----------------------------------------------------------------------

    /// Reads `width` (<= 32) bytes at `at` as a big-endian unsigned integer.
    function readUint(bytes memory data, uint256 at, uint256 width) internal pure returns (uint256 value) {
        if (at + width > data.length) revert MalformedEncoding();
        assembly ("memory-safe") {
            value := shr(sub(256, mul(width, 8)), mload(add(add(data, 0x20), at)))
        }
    }

    /// `width` (<= 32) bytes at `at`, big-endian, with no bounds check: the caller has checked the length.
    function word(bytes memory data, uint256 at, uint256 width) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := shr(sub(256, mul(width, 8)), mload(add(add(data, 0x20), at)))
        }
    }

    // --- globals -----------------------------------------------------------------------------------

    /// The length of a globals blob with these counts: 32 + 1 + 1 + 20 per oracle + 1 + 84 per market
    /// + 80 (system fields) + 44 (fee owner, max sample age, price and funding validity) + 32 (socialized
    /// loss, total collateral).
    function globalsLength(uint256 oracleCount, uint256 marketCount) internal pure returns (uint256) {
        return 35 + 20 * oracleCount + 84 * marketCount + 156;
    }

    /// spec: decode_globals. The length is checked against the two counts first, so that every field
    /// is then read without a bounds check of its own (a third of the gas of decoding otherwise).
    function decodeGlobals(bytes memory data) internal pure returns (Globals memory g) {
        if (data.length < 34) revert MalformedEncoding();
        uint256 oracleCount = readUint(data, 33, 1);
        if (data.length < 35 + 20 * oracleCount) revert MalformedEncoding();
        uint256 marketCount = readUint(data, 34 + 20 * oracleCount, 1);
        if (data.length != globalsLength(oracleCount, marketCount)) revert MalformedEncoding();
        g.domainSeparator = bytes32(word(data, 0, 32));
        g.quorum = uint8(word(data, 32, 1));
        uint256 at = 34;
        g.oracles = new address[](oracleCount);
        for (uint256 i = 0; i < oracleCount; ++i) {
            g.oracles[i] = address(uint160(word(data, at, 20)));
            at += 20;
        }
        at += 1; // the market count
        g.configs = new MarketConfig[](marketCount);
        g.markets = new MarketState[](marketCount);
        for (uint256 i = 0; i < marketCount; ++i) {
            g.configs[i] = MarketConfig({
                stepSize: uint64(word(data, at, 8)),
                tickSize: uint64(word(data, at + 8, 8)),
                initialMargin: uint32(word(data, at + 16, 4)),
                maintenanceMargin: uint32(word(data, at + 20, 4)),
                liquidationFee: uint32(word(data, at + 24, 4)),
                maxFundingRate: uint64(word(data, at + 28, 8)),
                maxPosition: uint64(word(data, at + 36, 8))
            });
            g.markets[i] = MarketState({
                price: uint64(word(data, at + 44, 8)),
                priceTime: uint64(word(data, at + 52, 8)),
                fundingIndex: int128(uint128(word(data, at + 60, 16))),
                sampleTime: uint64(word(data, at + 76, 8))
            });
            at += 84;
        }
        g.time = uint64(word(data, at, 8));
        g.fundingTime = uint64(word(data, at + 8, 8));
        g.insurance = int128(uint128(word(data, at + 16, 16)));
        g.fees = int128(uint128(word(data, at + 32, 16)));
        g.fundingPool = int128(uint128(word(data, at + 48, 16)));
        g.nextAccountId = uint64(word(data, at + 64, 8));
        g.nextSlot = uint64(word(data, at + 72, 8));
        g.feeOwner = address(uint160(word(data, at + 80, 20)));
        g.maxSampleAge = uint64(word(data, at + 100, 8));
        g.priceValidity = uint64(word(data, at + 108, 8));
        g.fundingValidity = uint64(word(data, at + 116, 8));
        g.socializedLoss = int128(uint128(word(data, at + 124, 16)));
        g.totalCollateral = int128(uint128(word(data, at + 140, 16)));
    }

    /// spec: encode_globals
    function encodeGlobals(Globals memory g) internal pure returns (bytes memory out) {
        out = abi.encodePacked(g.domainSeparator, g.quorum, uint8(g.oracles.length));
        for (uint256 i = 0; i < g.oracles.length; ++i) {
            out = bytes.concat(out, bytes20(g.oracles[i]));
        }
        out = bytes.concat(out, bytes1(uint8(g.configs.length)));
        for (uint256 i = 0; i < g.configs.length; ++i) {
            MarketConfig memory c = g.configs[i];
            MarketState memory m = g.markets[i];
            out = bytes.concat(
                out,
                abi.encodePacked(
                    c.stepSize, c.tickSize, c.initialMargin, c.maintenanceMargin, c.liquidationFee, c.maxFundingRate, c.maxPosition
                ),
                abi.encodePacked(m.price, m.priceTime, m.fundingIndex, m.sampleTime)
            );
        }
        out = bytes.concat(
            out,
            abi.encodePacked(g.time, g.fundingTime, g.insurance, g.fees, g.fundingPool, g.nextAccountId, g.nextSlot),
            abi.encodePacked(g.feeOwner, g.maxSampleAge, g.priceValidity, g.fundingValidity),
            abi.encodePacked(g.socializedLoss, g.totalCollateral)
        );
    }

    // --- account leaves ----------------------------------------------------------------------------

    /// spec: decode_account
    function decodeAccount(bytes memory data) internal pure returns (Account memory a) {
        // the length from the position count first; then no field needs a bounds check of its own
        uint256 count = readUint(data, 92, 1);
        if (data.length != 93 + 25 * count) revert MalformedEncoding();
        a.owner = address(uint160(word(data, 0, 20)));
        a.collateral = int128(uint128(word(data, 20, 16)));
        a.withdrawn = uint128(word(data, 36, 16));
        a.nonceBase = uint64(word(data, 52, 8));
        a.nonceBits = word(data, 60, 32);
        a.positions = new Position[](count);
        uint256 at = 93;
        for (uint256 i = 0; i < count; ++i) {
            a.positions[i] = Position({
                market: uint8(word(data, at, 1)),
                size: int64(uint64(word(data, at + 1, 8))),
                fundingIndex: int128(uint128(word(data, at + 9, 16)))
            });
            at += 25;
        }
    }

    /// spec: encode_account (positions must be sorted by market and have non-zero sizes)
    function encodeAccount(Account memory a) internal pure returns (bytes memory out) {
        out = abi.encodePacked(a.owner, a.collateral, a.withdrawn, a.nonceBase, a.nonceBits, uint8(a.positions.length));
        for (uint256 i = 0; i < a.positions.length; ++i) {
            Position memory p = a.positions[i];
            out = bytes.concat(out, abi.encodePacked(p.market, p.size, p.fundingIndex));
        }
    }

    /// spec: hash_account — an absent account (empty encoding) is the zero leaf.
    function hashLeaf(bytes memory encoded) internal pure returns (bytes32) {
        return encoded.length == 0 ? bytes32(0) : keccak256(encoded);
    }

    // --- slot leaves -------------------------------------------------------------------------------

    /// spec: decode_slot
    function decodeSlot(bytes memory data) internal pure returns (Slot memory s) {
        if (data.length != 34) revert MalformedEncoding();
        s.accountId = uint32(word(data, 0, 4));
        s.market = uint8(word(data, 4, 1));
        s.isBuy = word(data, 5, 1) != 0;
        s.limitPrice = uint64(word(data, 6, 8));
        s.remaining = uint64(word(data, 14, 8));
        s.feeRate = uint32(word(data, 22, 4));
        s.expiry = uint64(word(data, 26, 8));
    }

    /// spec: encode_slot
    function encodeSlot(Slot memory s) internal pure returns (bytes memory) {
        return abi.encodePacked(s.accountId, s.market, s.isBuy, s.limitPrice, s.remaining, s.feeRate, s.expiry);
    }
}
