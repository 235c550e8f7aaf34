// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Rollup} from "./Rollup.sol";
import {Merkle} from "./lib/Merkle.sol";
import {StateCodec} from "./lib/StateCodec.sol";
import {Valuation} from "./lib/Valuation.sol";
import {OspConstants} from "./osp/OspTypes.sol";

/// @notice The part of ERC-20 the bridge uses.
interface IBridgeToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title Bridge — holds the collateral, keeps the two L1 queues, pays withdrawals and escapes
/// @notice
/// - Deposits and forced-withdrawal requests enter hash-chained queues:
///     deposit acc_i = keccak(acc_{i-1} ‖ address owner ‖ uint256 amount)
///     forced  acc_i = keccak(acc_{i-1} ‖ address requester ‖ uint256 accountId ‖ uint256 amount)
///   with acc_{-1} = 0 (abi.encodePacked). The accumulator of every index is stored, so the dispute
///   game can check one (owner, amount) pair in O(1) (`isDeposit`, `isForcedRequest`).
/// - A withdrawal is claimed by proving the account leaf under a finalized state root: the bridge pays
///   `withdrawn - paid[accountId]` to the account's owner (withdrawn is cumulative in the state).
/// - Censorship: the sequencer must consume every queue entry in a finalized batch within a deadline
///   (one for forced requests, one for deposits). When the oldest entry the finalized state has not
///   consumed is older than its deadline, anyone may `freeze()` the rollup. Frozen: no batch is
///   appended or finalized, no withdrawal is claimed, deposits that root did not consume are refunded
///   in full, and the accounts wind down under the last finalized root by the terminal rule of
///   optinode/spec/escape.py: a claim phase of `claimPeriod` seconds in which anyone registers any
///   account's claim (value floored at zero + unpaid withdrawals), then one payout per account of its
///   claim, pro rata if the claims exceed the collateral held, plus its pro-rata share of the bonds
///   of the batches pending at the freeze (released here by `Rollup.releaseFrozenBonds`). No payout
///   depends on the order of escapes; their sum never exceeds what the bridge holds.
/// @dev Assumes a plain ERC-20 collateral (no fee on transfer, no rebasing), as USDC is.
contract Bridge {
    struct QueueEntry {
        bytes32 acc; // hash chain up to and including this entry
        uint64 time; // block.timestamp of the request
        uint128 total; // deposits: the amounts of entries 0 … this one (what the bridge owes for the unconsumed ones)
    }

    /// An account's registered escape claim (spec: escape.compute_escape_claim).
    struct Claim {
        address owner;
        bool registered;
        bool paid;
        uint256 amount;
    }

    /// Preimage of a state root (spec: compute_state_root_from_parts) with the globals hash.
    struct StateParts {
        bytes32 accountsRoot;
        bytes32 slotsRoot;
        bytes32 globalsHash;
        uint64 depositsDone;
        uint64 forcedDone;
    }

    /// An account leaf and its proof in the depth-32 accounts tree.
    struct AccountProof {
        uint256 accountId;
        bytes leaf; // StateCodec account encoding
        bytes32[] siblings; // leaf level first
    }

    IBridgeToken public immutable token;
    Rollup public immutable rollup;
    /// Seconds within which a forced request must be consumed by a finalized batch.
    uint256 public immutable forcedDeadline;
    /// Seconds within which a deposit must be consumed by a finalized batch.
    uint256 public immutable depositDeadline;
    /// Seconds after the freeze during which escape claims are registered (then the payouts begin).
    uint256 public immutable claimPeriod;

    mapping(uint256 => QueueEntry) internal _deposits;
    mapping(uint256 => QueueEntry) internal _forced;
    uint256 public depositCount;
    uint256 public forcedCount;

    /// Collateral paid out per account (withdrawals and escape), never above its `withdrawn`+value.
    mapping(uint256 => uint256) public paid;
    mapping(uint256 => bool) public reclaimed;

    bool public frozen;
    uint64 public frozenAt;

    /// Escape claims by account id, and their sum.
    mapping(uint256 => Claim) public claims;
    uint256 public totalClaims;
    /// Deposit refunds paid since the freeze (reclaimDeposit).
    uint256 public reclaimedTotal;
    /// Fixed by the first payout: the collateral the claims share and the released bonds (ETH).
    bool public payoutsStarted;
    uint256 public escapePool;
    uint256 public bondPool;

    event Deposited(uint256 indexed index, address indexed from, address indexed owner, uint256 amount, bytes32 acc);
    event ForcedWithdrawalRequested(
        uint256 indexed index, address indexed requester, uint256 indexed accountId, uint256 amount, bytes32 acc
    );
    event WithdrawalClaimed(uint256 indexed accountId, address indexed owner, uint256 amount, uint256 totalPaid);
    /// queue: 0 = forced, 1 = deposit; index: the overdue entry.
    event Frozen(uint8 queue, uint256 index, uint256 requestedAt);
    event ClaimRegistered(uint256 indexed accountId, address indexed owner, uint256 value, uint256 unpaidWithdrawals);
    event PayoutsStarted(uint256 totalClaims, uint256 escapePool, uint256 bondPool);
    event Escaped(uint256 indexed accountId, address indexed owner, uint256 amount, uint256 bondShare);
    event BondsReceived(uint256 amount);
    event DepositReclaimed(uint256 indexed index, address indexed owner, uint256 amount);

    error ZeroAddress();
    error InvalidAmount();
    error InvalidAccountId();
    error RollupFrozen();
    error NotFrozen();
    error NothingOverdue();
    error BadAccountProof();
    error EmptyAccount();
    error NothingToPay();
    error AlreadyEscaped();
    error AlreadyClaimed(uint256 accountId);
    error NoClaim(uint256 accountId);
    /// The claim phase ends at `end`; claims are registered until then, payouts begin after.
    error ClaimPhaseOver(uint256 now_, uint256 end);
    error ClaimPhaseOpen(uint256 now_, uint256 end);
    /// The bonds of `pending` batches pending at the freeze are not released yet (Rollup.releaseFrozenBonds).
    error BondsNotReleased(uint256 pending);
    error NotRollup();
    error InvalidParameter();
    error AlreadyReclaimed();
    error EntryConsumed();
    error IndexOutOfRange();
    error BadQueueEntry();
    error TokenTransferFailed();
    error WrongRollup();

    constructor(
        IBridgeToken token_,
        Rollup rollup_,
        uint256 forcedDeadline_,
        uint256 depositDeadline_,
        uint256 claimPeriod_
    ) {
        if (address(token_) == address(0) || address(rollup_) == address(0)) revert ZeroAddress();
        if (claimPeriod_ == 0 || claimPeriod_ > type(uint64).max) revert InvalidParameter();
        token = token_;
        rollup = rollup_;
        forcedDeadline = forcedDeadline_;
        depositDeadline = depositDeadline_;
        claimPeriod = claimPeriod_;
    }

    // --- queues ------------------------------------------------------------------------------------

    /// @notice Move `amount` collateral from the caller into the deposit queue, credited to `owner`'s
    ///         account by the sequencer's next Deposit transaction.
    function deposit(address owner, uint256 amount) external returns (uint256 index) {
        if (frozen) revert RollupFrozen();
        if (owner == address(0)) revert ZeroAddress();
        if (amount == 0 || amount > OspConstants.MAX_AMOUNT) revert InvalidAmount();
        index = depositCount;
        QueueEntry storage prev = _deposits[index == 0 ? 0 : index - 1];
        (bytes32 prevAcc, uint128 prevTotal) = index == 0 ? (bytes32(0), uint128(0)) : (prev.acc, prev.total);
        bytes32 acc = keccak256(abi.encodePacked(prevAcc, owner, amount));
        // amount < 2^64, so 2^64 deposits are needed to overflow the uint128 total
        _deposits[index] = QueueEntry(acc, uint64(block.timestamp), prevTotal + uint128(amount));
        depositCount = index + 1;
        _pull(msg.sender, amount);
        emit Deposited(index, msg.sender, owner, amount, acc);
    }

    /// @notice Ask the sequencer to withdraw `amount` from account `accountId` (owned by the caller).
    ///         The request must be consumed (executed or rejected with a reason) within
    ///         `forcedDeadline`, or the rollup can be frozen.
    function requestForcedWithdrawal(uint256 accountId, uint256 amount) external returns (uint256 index) {
        if (amount == 0 || amount > OspConstants.MAX_AMOUNT) revert InvalidAmount();
        return _enqueueForced(accountId, amount);
    }

    /// @notice Ask the sequencer to raise the nonce floor of account `accountId` (owned by the caller) to
    ///         `nonceFloor`, cancelling every order and withdrawal signed with a lower nonce: a cancel-all
    ///         the sequencer cannot refuse. Same queue and deadline as a forced withdrawal; its amount
    ///         word is FORCED_CANCEL_ALL | nonceFloor (spec: process_forced_withdraw).
    function requestForcedCancelAll(uint256 accountId, uint256 nonceFloor) external returns (uint256 index) {
        if (nonceFloor > OspConstants.MAX_NONCE) revert InvalidAmount();
        return _enqueueForced(accountId, OspConstants.FORCED_CANCEL_ALL | nonceFloor);
    }

    /// @notice Ask the sequencer to deleverage `size` of bankrupt account `deleveragedId`'s position in
    ///         `market` against `deleveragerId`'s opposite one (spec: process_forced_withdraw, a forced
    ///         Deleverage): the bad-debt waterfall the sequencer cannot refuse — the insurance fund pays
    ///         first, then the deleverager at the bankruptcy price, then the socialized loss. Anyone may
    ///         ask (the waterfall protects every holder). Same queue and deadline as a forced withdrawal;
    ///         its amount word is FORCED_DELEVERAGE | deleveragerId << 72 | market << 64 | size.
    function requestForcedDeleverage(uint256 deleveragedId, uint256 deleveragerId, uint8 market, uint64 size)
        external
        returns (uint256 index)
    {
        if (deleveragerId > OspConstants.MAX_ACCOUNT_ID) revert InvalidAccountId();
        if (size == 0) revert InvalidAmount();
        uint256 word = OspConstants.FORCED_DELEVERAGE | deleveragerId << 72 | uint256(market) << 64 | uint256(size);
        return _enqueueForced(deleveragedId, word);
    }

    function _enqueueForced(uint256 accountId, uint256 amount) private returns (uint256 index) {
        if (frozen) revert RollupFrozen();
        if (accountId > OspConstants.MAX_ACCOUNT_ID) revert InvalidAccountId();
        index = forcedCount;
        bytes32 acc =
            keccak256(abi.encodePacked(index == 0 ? bytes32(0) : _forced[index - 1].acc, msg.sender, accountId, amount));
        _forced[index] = QueueEntry(acc, uint64(block.timestamp), 0);
        forcedCount = index + 1;
        emit ForcedWithdrawalRequested(index, msg.sender, accountId, amount, acc);
    }

    /// Whether the rollup is frozen and the two queue lengths (read by the Rollup at every append).
    function status() external view returns (bool, uint256, uint256) {
        return (frozen, depositCount, forcedCount);
    }

    function depositAt(uint256 index) external view returns (bytes32 acc, uint64 time) {
        QueueEntry storage e = _deposits[index];
        return (e.acc, e.time);
    }

    function forcedAt(uint256 index) external view returns (bytes32 acc, uint64 time) {
        QueueEntry storage e = _forced[index];
        return (e.acc, e.time);
    }

    /// @notice Whether deposit `index` credits `amount` to `owner`.
    function isDeposit(uint256 index, address owner, uint256 amount) public view returns (bool) {
        if (index >= depositCount) return false;
        bytes32 prev = index == 0 ? bytes32(0) : _deposits[index - 1].acc;
        return keccak256(abi.encodePacked(prev, owner, amount)) == _deposits[index].acc;
    }

    /// @notice Whether forced request `index` is (requester, accountId, amount).
    function isForcedRequest(uint256 index, address requester, uint256 accountId, uint256 amount)
        public
        view
        returns (bool)
    {
        if (index >= forcedCount) return false;
        bytes32 prev = index == 0 ? bytes32(0) : _forced[index - 1].acc;
        return keccak256(abi.encodePacked(prev, requester, accountId, amount)) == _forced[index].acc;
    }

    // --- withdrawals -------------------------------------------------------------------------------

    /// @notice Pay the unpaid part of an account's cumulative `withdrawn` to its owner, proving the
    ///         account under the state root of finalized batch `batchIndex` (any finalized batch:
    ///         `withdrawn` only grows, so an older root can never pay more than a newer one).
    ///         Not once frozen: the unpaid withdrawals are then part of the account's escape claim.
    function claimWithdrawal(uint256 batchIndex, StateParts calldata parts, AccountProof calldata proof)
        external
        returns (uint256 amount)
    {
        if (frozen) revert RollupFrozen();
        bytes32 root = rollup.finalizedRoot(batchIndex);
        if (
            StateCodec.stateRoot(parts.accountsRoot, parts.slotsRoot, parts.globalsHash, parts.depositsDone, parts.forcedDone)
                != root
        ) revert BadAccountProof();
        StateCodec.Account memory account = _proveAccount(parts.accountsRoot, proof);
        uint256 already = paid[proof.accountId];
        if (account.withdrawn <= already) revert NothingToPay();
        amount = account.withdrawn - already;
        paid[proof.accountId] = account.withdrawn;
        _push(account.owner, amount);
        emit WithdrawalClaimed(proof.accountId, account.owner, amount, account.withdrawn);
    }

    // --- censorship resistance ---------------------------------------------------------------------

    /// @notice Freeze the rollup because the oldest queue entry the finalized state has not consumed
    ///         is older than its deadline (forced requests are checked first, then deposits).
    function freeze() external {
        if (frozen) revert RollupFrozen();
        (,, uint64 depositsDone, uint64 forcedDone) = rollup.lastFinalized();
        if (forcedDone < forcedCount) {
            uint64 t = _forced[forcedDone].time;
            if (block.timestamp > uint256(t) + forcedDeadline) return _freeze(0, forcedDone, t);
        }
        if (depositsDone < depositCount) {
            uint64 t = _deposits[depositsDone].time;
            if (block.timestamp > uint256(t) + depositDeadline) return _freeze(1, depositsDone, t);
        }
        revert NothingOverdue();
    }

    /// @notice Claim phase: register account `proof.accountId`'s escape claim, proven under the last
    ///         finalized root: its value (collateral after funding plus positions marked at the committed
    ///         prices, floored at zero) plus its unpaid withdrawals. Anyone may register any account,
    ///         once. spec: escape.compute_escape_claim
    function registerClaim(
        bytes calldata globals,
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        uint64 depositsDone,
        uint64 forcedDone,
        AccountProof calldata proof
    ) external returns (uint256 amount) {
        // 1. The rollup is frozen and the claim phase is still open.
        if (!frozen) revert NotFrozen();
        uint256 end = uint256(frozenAt) + claimPeriod;
        if (block.timestamp > end) revert ClaimPhaseOver(block.timestamp, end);
        // 2. Once per account.
        Claim storage c = claims[proof.accountId];
        if (c.registered) revert AlreadyClaimed(proof.accountId);
        // 3. The account is proven under the last finalized root.
        (, bytes32 root,,) = rollup.lastFinalized();
        if (StateCodec.stateRoot(accountsRoot, slotsRoot, keccak256(globals), depositsDone, forcedDone) != root) {
            revert BadAccountProof();
        }
        StateCodec.Account memory account = _proveAccount(accountsRoot, proof);
        // 4. claim = max(0, value) + (withdrawn - paid); `paid` no longer moves once frozen.
        uint256 value = Valuation.escapeValue(account, StateCodec.decodeGlobals(globals));
        uint256 already = paid[proof.accountId];
        uint256 unpaid = account.withdrawn > already ? account.withdrawn - already : 0;
        amount = value + unpaid;
        c.owner = account.owner;
        c.registered = true;
        c.amount = amount;
        totalClaims += amount;
        emit ClaimRegistered(proof.accountId, account.owner, value, unpaid);
    }

    /// @notice Payout phase: pay account `accountId`'s registered claim to its owner, in full if the
    ///         claims do not exceed the collateral the bridge holds for them, else pro rata, with its
    ///         pro-rata share of the released bonds (ETH). Anyone may call it, once per account. The
    ///         first payout fixes the pool and the bonds, so no payout depends on the order.
    ///         spec: escape.compute_escape_payout, escape.compute_bond_share
    function escape(uint256 accountId) external returns (uint256 amount, uint256 bondShare) {
        // 1. The rollup is frozen and the claim phase is over.
        if (!frozen) revert NotFrozen();
        uint256 end = uint256(frozenAt) + claimPeriod;
        if (block.timestamp <= end) revert ClaimPhaseOpen(block.timestamp, end);
        // 2. The account has a claim that has not been paid.
        Claim storage c = claims[accountId];
        if (!c.registered) revert NoClaim(accountId);
        if (c.paid) revert AlreadyEscaped();
        // 3. The pool and the bonds are fixed (first payout).
        if (!payoutsStarted) _startPayouts();
        c.paid = true;
        uint256 total = totalClaims;
        uint256 pool = escapePool;
        amount = total <= pool ? c.amount : c.amount * pool / total;
        bondShare = total == 0 ? 0 : c.amount * bondPool / total;
        emit Escaped(accountId, c.owner, amount, bondShare);
        if (amount != 0) _push(c.owner, amount);
        if (bondShare != 0) {
            // A share the owner cannot take (a reverting contract) stays in the bridge; its return data
            // is never copied, so an owner cannot make this payout fail by returning a huge blob.
            address to = c.owner;
            assembly {
                pop(call(gas(), to, bondShare, 0, 0, 0, 0))
            }
        }
    }

    /// The collateral owed for queued deposits the last finalized state did not consume, less the
    /// refunds already paid (what `reclaimDeposit` still has to pay).
    function depositsOwed() public view returns (uint256) {
        (,, uint64 depositsDone,) = rollup.lastFinalized();
        uint256 count = depositCount;
        if (depositsDone >= count) return 0;
        uint256 queued = _deposits[count - 1].total - (depositsDone == 0 ? 0 : _deposits[depositsDone - 1].total);
        return queued - reclaimedTotal;
    }

    /// @notice The Rollup sends the bonds of the batches pending at the freeze.
    function receiveBonds() external payable {
        if (msg.sender != address(rollup)) revert NotRollup();
        if (payoutsStarted) revert InvalidParameter(); // unreachable: payouts wait for every bond
        emit BondsReceived(msg.value);
    }

    /// @notice Once frozen, refund deposit `index` to its owner if the last finalized state did not
    ///         consume it. Anyone may call; the entry's (owner, amount) is checked against the queue.
    function reclaimDeposit(uint256 index, address owner, uint256 amount) external {
        if (!frozen) revert NotFrozen();
        if (index >= depositCount) revert IndexOutOfRange();
        (,, uint64 depositsDone,) = rollup.lastFinalized();
        if (index < depositsDone) revert EntryConsumed();
        if (reclaimed[index]) revert AlreadyReclaimed();
        if (!isDeposit(index, owner, amount)) revert BadQueueEntry();
        reclaimed[index] = true;
        reclaimedTotal += amount;
        _push(owner, amount);
        emit DepositReclaimed(index, owner, amount);
    }

    // --- internals ---------------------------------------------------------------------------------

    function _freeze(uint8 queue, uint256 index, uint64 requestedAt) private {
        frozen = true;
        frozenAt = uint64(block.timestamp);
        emit Frozen(queue, index, requestedAt);
    }

    /// Fix the escape pool (spec: escape.compute_escape_pool) and the bonds, once every bond of a batch
    /// pending at the freeze has been released to the bridge.
    function _startPayouts() private {
        uint256 pending = rollup.batchCount() - rollup.finalizedCount();
        if (pending != 0) revert BondsNotReleased(pending);
        uint256 balance = _balance();
        uint256 owed = depositsOwed();
        escapePool = balance > owed ? balance - owed : 0;
        bondPool = address(this).balance;
        payoutsStarted = true;
        emit PayoutsStarted(totalClaims, escapePool, bondPool);
    }

    function _balance() private view returns (uint256) {
        (bool ok, bytes memory ret) = address(token).staticcall(abi.encodeWithSignature("balanceOf(address)", address(this)));
        if (!ok || ret.length < 32) revert TokenTransferFailed();
        return abi.decode(ret, (uint256));
    }

    function _proveAccount(bytes32 accountsRoot, AccountProof calldata proof)
        private
        pure
        returns (StateCodec.Account memory)
    {
        if (proof.leaf.length == 0) revert EmptyAccount();
        if (proof.accountId > OspConstants.MAX_ACCOUNT_ID || proof.siblings.length != OspConstants.ACCOUNT_TREE_DEPTH) revert BadAccountProof();
        bytes32 node = Merkle.computeRoot(keccak256(proof.leaf), proof.accountId, proof.siblings);
        if (node != accountsRoot) revert BadAccountProof();
        return StateCodec.decodeAccount(proof.leaf);
    }

    function _pull(address from, uint256 amount) private {
        _call(abi.encodeCall(IBridgeToken.transferFrom, (from, address(this), amount)));
    }

    function _push(address to, uint256 amount) private {
        _call(abi.encodeCall(IBridgeToken.transfer, (to, amount)));
    }

    /// A token call that must succeed and return true or nothing (tokens that return no bool).
    function _call(bytes memory data) private {
        (bool ok, bytes memory ret) = address(token).call(data);
        if (!ok) {
            // bubble up the token's own error (e.g. DevToken.InsufficientBalance)
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        if (ret.length != 0 && (ret.length != 32 || abi.decode(ret, (uint256)) != 1)) revert TokenTransferFailed();
        if (ret.length == 0 && address(token).code.length == 0) revert TokenTransferFailed();
    }
}
