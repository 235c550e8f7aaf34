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
///   appended or finalized, each account escapes once with its value under the last finalized root,
///   and deposits that root did not consume are refunded.
/// @dev Assumes a plain ERC-20 collateral (no fee on transfer, no rebasing), as USDC is.
contract Bridge {
    struct QueueEntry {
        bytes32 acc; // hash chain up to and including this entry
        uint64 time; // block.timestamp of the request
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

    mapping(uint256 => QueueEntry) internal _deposits;
    mapping(uint256 => QueueEntry) internal _forced;
    uint256 public depositCount;
    uint256 public forcedCount;

    /// Collateral paid out per account (withdrawals and escape), never above its `withdrawn`+value.
    mapping(uint256 => uint256) public paid;
    mapping(uint256 => bool) public escaped;
    mapping(uint256 => bool) public reclaimed;

    bool public frozen;
    uint64 public frozenAt;

    event Deposited(uint256 indexed index, address indexed from, address indexed owner, uint256 amount, bytes32 acc);
    event ForcedWithdrawalRequested(
        uint256 indexed index, address indexed requester, uint256 indexed accountId, uint256 amount, bytes32 acc
    );
    event WithdrawalClaimed(uint256 indexed accountId, address indexed owner, uint256 amount, uint256 totalPaid);
    /// queue: 0 = forced, 1 = deposit; index: the overdue entry.
    event Frozen(uint8 queue, uint256 index, uint256 requestedAt);
    event Escaped(uint256 indexed accountId, address indexed owner, uint256 value, uint256 unpaidWithdrawals);
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
    error AlreadyReclaimed();
    error EntryConsumed();
    error IndexOutOfRange();
    error BadQueueEntry();
    error TokenTransferFailed();
    error WrongRollup();

    constructor(IBridgeToken token_, Rollup rollup_, uint256 forcedDeadline_, uint256 depositDeadline_) {
        if (address(token_) == address(0) || address(rollup_) == address(0)) revert ZeroAddress();
        token = token_;
        rollup = rollup_;
        forcedDeadline = forcedDeadline_;
        depositDeadline = depositDeadline_;
    }

    // --- queues ------------------------------------------------------------------------------------

    /// @notice Move `amount` collateral from the caller into the deposit queue, credited to `owner`'s
    ///         account by the sequencer's next Deposit transaction.
    function deposit(address owner, uint256 amount) external returns (uint256 index) {
        if (frozen) revert RollupFrozen();
        if (owner == address(0)) revert ZeroAddress();
        if (amount == 0 || amount > OspConstants.MAX_AMOUNT) revert InvalidAmount();
        index = depositCount;
        bytes32 acc = keccak256(abi.encodePacked(index == 0 ? bytes32(0) : _deposits[index - 1].acc, owner, amount));
        _deposits[index] = QueueEntry(acc, uint64(block.timestamp));
        depositCount = index + 1;
        _pull(msg.sender, amount);
        emit Deposited(index, msg.sender, owner, amount, acc);
    }

    /// @notice Ask the sequencer to withdraw `amount` from account `accountId` (owned by the caller).
    ///         The request must be consumed (executed or rejected with a reason) within
    ///         `forcedDeadline`, or the rollup can be frozen.
    function requestForcedWithdrawal(uint256 accountId, uint256 amount) external returns (uint256 index) {
        if (frozen) revert RollupFrozen();
        if (accountId > OspConstants.MAX_ACCOUNT_ID) revert InvalidAccountId();
        if (amount == 0 || amount > OspConstants.MAX_AMOUNT) revert InvalidAmount();
        index = forcedCount;
        bytes32 acc =
            keccak256(abi.encodePacked(index == 0 ? bytes32(0) : _forced[index - 1].acc, msg.sender, accountId, amount));
        _forced[index] = QueueEntry(acc, uint64(block.timestamp));
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
    function claimWithdrawal(uint256 batchIndex, StateParts calldata parts, AccountProof calldata proof)
        external
        returns (uint256 amount)
    {
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

    /// @notice Once frozen, pay an account its value under the last finalized root (collateral minus
    ///         unsettled funding plus positions marked at the committed prices, floored at zero) plus its
    ///         unpaid withdrawals, to its owner. Once per account.
    function escape(
        bytes calldata globals,
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        uint64 depositsDone,
        uint64 forcedDone,
        AccountProof calldata proof
    ) external returns (uint256 total) {
        if (!frozen) revert NotFrozen();
        if (escaped[proof.accountId]) revert AlreadyEscaped();
        (, bytes32 root,,) = rollup.lastFinalized();
        if (StateCodec.stateRoot(accountsRoot, slotsRoot, keccak256(globals), depositsDone, forcedDone) != root) {
            revert BadAccountProof();
        }
        StateCodec.Account memory account = _proveAccount(accountsRoot, proof);
        uint256 value = Valuation.escapeValue(account, StateCodec.decodeGlobals(globals));
        uint256 already = paid[proof.accountId];
        uint256 unpaid = account.withdrawn > already ? account.withdrawn - already : 0;
        escaped[proof.accountId] = true;
        if (unpaid > 0) paid[proof.accountId] = account.withdrawn;
        total = value + unpaid;
        if (total > 0) _push(account.owner, total);
        emit Escaped(proof.accountId, account.owner, value, unpaid);
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
        _push(owner, amount);
        emit DepositReclaimed(index, owner, amount);
    }

    // --- internals ---------------------------------------------------------------------------------

    function _freeze(uint8 queue, uint256 index, uint64 requestedAt) private {
        frozen = true;
        frozenAt = uint64(block.timestamp);
        emit Frozen(queue, index, requestedAt);
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
