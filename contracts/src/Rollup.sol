// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bridge} from "./Bridge.sol";
import {BatchFraming} from "./lib/BatchFraming.sol";
import {StateCodec} from "./lib/StateCodec.sol";

/// @title Rollup — the chain of batches, their finality, and the bonds behind them
/// @notice Batch 0 is genesis (final at deployment). Each later batch carries its records (calldata
///         only), the preimage of its post-state root, and a bond of `proposerBond` wei from one of
///         the proposers fixed at deployment. At append the contract computes and stores the batch's
///         transaction-tree root (BatchFraming over the calldata), its post-state root (StateCodec),
///         its L1 timestamp and the lengths of the two Bridge queues (the L1 inputs a one-step proof
///         may read). A batch finalizes once its challenge window (counted from its append) has
///         passed, its predecessor is final and no game against it is open; its bond then returns to
///         its proposer.
///
///         The batch's L1 timestamp is declared by the proposer and bounded here (the OP Stack's
///         "sequencer drift"): parent's timestamp <= l1Timestamp <= block.timestamp, and
///         block.timestamp - l1Timestamp <= maxTimestampDrift. The sequencer applies a whole batch at
///         the time it declares (an L1 time it has already seen), so what it executed is exactly what
///         every verifier and the one-step proof replay, whenever the append lands.
///
///         The DisputeGame contract is the only one that can discard batches: when a challenger wins
///         against batch i, batches i, i+1, ... are discarded (the chain resumes from batch i-1), batch
///         i-1 (spec: bonds.process_reject). Every discarded batch's bond is forfeit, the rejected one's
///         and every successor's alike (spec: bonds.compute_forfeit): `slashRewardBps` of it is split
///         equally between the games open against that batch when it was discarded — whichever of them
///         won first — and the rest, rounding dust included, is burned to 0x…dEaD, so that challenging
///         oneself never pays and nothing of a discarded bond returns to a proposer key. The rejected
///         batch's bond is settled at once; a successor's when a game against it is voided, when its
///         index is reused by a new append, or by anyone with `forfeitBond` (discarding stays O(1),
///         whatever the number of successors).
///
///         Bonds and rewards are credited, not pushed: `withdrawCredit()` pays the caller's credit.
///
///         After a freeze (Bridge.freeze) no batch is appended or finalized and no game is opened; the
///         bonds of the batches still pending go to the escaping users: `releaseFrozenBonds` (anyone)
///         drops pending batches from the top of the chain, once no game against them is open, and sends
///         their bonds to the Bridge, which shares them out with the escape payouts.
contract Rollup {
    /// spec: bonds.BondState (same numbers). Posted -> Returned (finalized) | Forfeited (discarded)
    /// | Escaped (pending at a freeze).
    enum BondState {
        None,
        Posted,
        Returned,
        Forfeited,
        Escaped // pending at the freeze: released to the Bridge for the escaping users (releaseFrozenBonds)
    }

    struct Batch {
        bytes32 stateRoot;
        bytes32 txRoot;
        uint64 id; // unique over all batches ever appended (indices are reused after a discard)
        uint64 timestamp; // the batch's L1 time, declared by its proposer (appendBatch bounds it)
        uint32 txCount;
        uint32 openGames;
        uint64 depositsDone; // the post-state's consumed queue counters
        uint64 forcedDone;
        uint64 depositQueueLength; // Bridge queue lengths when the batch was appended
        uint64 forcedQueueLength;
        uint64 appendedAt; // block.timestamp of the append: the challenge window starts here
    }

    struct Bond {
        address proposer;
        uint64 batchIndex;
        BondState state;
        /// Set when the bond is forfeited: what each game open against the batch at its discard is
        /// credited when it ends (the winner's at the rejection, the others' when they are voided).
        uint128 rewardPerGame;
    }

    struct Params {
        bytes32 genesisRoot;
        uint256 challengeWindow; // seconds
        uint256 proposerBond; // wei per batch
        uint256 slashRewardBps; // share of a slashed bond credited to the winning challenger (< 10000)
        uint256 maxTimestampDrift; // seconds a declared batch timestamp may lag the append block's
        uint64 genesisTime; // the genesis state's L1 time (<= now): batch 0's timestamp, the first floor
        address[] proposers;
    }

    address public constant BURN_ADDRESS = address(0xdEaD);
    uint256 internal constant BPS = 10_000;

    Bridge public immutable bridge;
    address public immutable game;
    uint256 public immutable challengeWindow;
    uint256 public immutable proposerBond;
    uint256 public immutable slashRewardBps;
    uint256 public immutable maxTimestampDrift;

    mapping(address => bool) public isProposer;
    mapping(uint256 => Batch) internal _batches;
    /// Bond of each batch, by batch id.
    mapping(uint64 => Bond) public bonds;
    mapping(address => uint256) public credits;

    /// Length of the chain, genesis included: batches [0, batchCount) are live.
    uint256 public batchCount;
    /// Batches [0, finalizedCount) are final.
    uint256 public finalizedCount;
    uint64 public nextBatchId;

    event BatchAppended(
        uint256 indexed index,
        uint64 indexed id,
        address indexed proposer,
        bytes32 stateRoot,
        bytes32 txRoot,
        uint256 txCount,
        uint64 depositQueueLength,
        uint64 forcedQueueLength,
        uint64 l1Timestamp,
        uint64 appendedAt
    );
    /// The preimage of the batch's state root (what claims and escapes prove against).
    event StateCommitted(
        uint256 indexed index,
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        bytes32 globalsHash,
        uint64 depositsDone,
        uint64 forcedDone
    );
    event BatchFinalized(uint256 indexed index, uint64 indexed id, bytes32 stateRoot);
    /// Batches [fromIndex, toIndex) were discarded; the chain resumes after fromIndex - 1.
    event BatchesDiscarded(uint256 indexed fromIndex, uint256 toIndex, address indexed challenger);
    /// Batch `id`'s bond is forfeit: `rewardPerGame` to each of the `games` open against it, `burned` burned.
    event BondForfeited(uint64 indexed id, address indexed proposer, uint256 games, uint256 rewardPerGame, uint256 burned);
    event OpenGamesChanged(uint256 indexed index, uint64 indexed id, uint32 openGames);
    event BondEscaped(uint64 indexed id, uint256 indexed index, address indexed proposer);
    event Credited(address indexed to, uint256 amount);
    event CreditWithdrawn(address indexed to, uint256 amount);

    /// The append is not the top-level call of a transaction sent by a code-less account, so its batch
    /// bytes may be in no transaction's input. `codeSize` is the sender's (23 for an EIP-7702 delegation).
    error CalldataUnavailable(address sender, address origin, uint256 codeSize);
    error NotProposer();
    error NotGame();
    error WrongBond();
    error RollupFrozen();
    error CounterDecreased();
    error CounterBeyondQueue();
    error EmptyBatch();
    /// The append names `expected` as its parent's state root; the tip's is `actual` (a discard or a
    /// reverted append came between its signing and its mining).
    error WrongParent(bytes32 expected, bytes32 actual);
    /// The declared L1 timestamp is after the append block's.
    error TimestampInFuture(uint64 l1Timestamp, uint256 blockTimestamp);
    /// The declared L1 timestamp is before the parent batch's (L1 time never runs backwards).
    error TimestampBeforeParent(uint64 l1Timestamp, uint64 parentTimestamp);
    /// The declared L1 timestamp lags the append block's by more than maxTimestampDrift.
    error TimestampTooOld(uint64 l1Timestamp, uint256 blockTimestamp, uint256 maxTimestampDrift);
    error BatchNotFound();
    error BatchAlreadyFinal();
    error NotNextToFinalize();
    error NotFinalized();
    error ChallengeWindowOpen();
    error ChallengeWindowClosed();
    error GameOpen();
    error BatchNotLive();
    error BondNotForfeitable();
    error NothingToWithdraw();
    error TransferFailed();
    error InvalidParameter();
    error WrongWiring();
    error NotFrozen();
    /// Batch `index` still has `openGames` games open; they end within both clocks.
    error GamesOpen(uint256 index, uint32 openGames);

    modifier onlyGame() {
        if (msg.sender != game) revert NotGame();
        _;
    }

    constructor(Bridge bridge_, address game_, Params memory p) {
        if (address(bridge_.rollup()) != address(this)) revert WrongWiring();
        if (game_ == address(0) || p.slashRewardBps >= BPS || p.proposers.length == 0 || p.genesisTime > block.timestamp) {
            revert InvalidParameter();
        }
        bridge = bridge_;
        game = game_;
        challengeWindow = p.challengeWindow;
        proposerBond = p.proposerBond;
        slashRewardBps = p.slashRewardBps;
        maxTimestampDrift = p.maxTimestampDrift;
        for (uint256 i = 0; i < p.proposers.length; ++i) {
            if (p.proposers[i] == address(0)) revert InvalidParameter();
            isProposer[p.proposers[i]] = true;
        }
        Batch storage genesis = _batches[0];
        genesis.stateRoot = p.genesisRoot;
        genesis.timestamp = p.genesisTime;
        genesis.appendedAt = uint64(block.timestamp);
        batchCount = 1;
        finalizedCount = 1;
        nextBatchId = 1;
        emit BatchFinalized(0, 0, p.genesisRoot);
    }

    // --- proposing -----------------------------------------------------------------------------------

    /// @notice Append a batch: its framed records and the preimage of its post-state root. The
    ///         pre-state is the post-state of the previous batch. Send exactly `proposerBond` wei.
    ///         Send it as the transaction itself (to this contract, from the proposer's EOA).
    ///         `l1Timestamp` is the L1 time the batch was executed at (its one-step proofs use it).
    ///         `parentRoot` is the state root of the batch it builds on: the append reverts
    ///         (WrongParent) unless that is the tip, so an append signed before a discard or behind a
    ///         reverted one never lands on another pre-state (docs/contracts.md, "Appending").
    function appendBatch(
        bytes calldata data,
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        bytes32 globalsHash,
        uint64 depositsDone,
        uint64 forcedDone,
        uint64 l1Timestamp,
        bytes32 parentRoot
    ) external payable returns (uint256 index) {
        // 1. The batch bytes are the L1 transaction's input (DESIGN safety property 7): the caller is
        //    the transaction's origin, so this is the top-level call, and the origin has no code, so no
        //    EIP-7702 delegation made the call from inside the origin's own code (an account with no
        //    code can only send its transaction's input). A verifier reading transaction inputs from a
        //    standard node therefore sees every byte `txRoot` commits to.
        if (msg.sender != tx.origin || msg.sender.code.length != 0) {
            revert CalldataUnavailable(msg.sender, tx.origin, msg.sender.code.length);
        }
        // 2. The sender is a proposer and sends the bond.
        if (!isProposer[msg.sender]) revert NotProposer();
        if (msg.value != proposerBond) revert WrongBond();
        uint256 depositQueueLength;
        uint256 forcedQueueLength;
        {
            bool frozen; // scoped: appendBatch's stack is full
            (frozen, depositQueueLength, forcedQueueLength) = bridge.status();
            if (frozen) revert RollupFrozen();
        }
        index = batchCount;
        {
            Batch storage parent = _batches[index - 1];
            // 3. The batch builds on the tip: the pre-state its roots were computed from is the one
            //    a game would replay it on (registerGame's preRoot).
            if (parentRoot != parent.stateRoot) revert WrongParent(parentRoot, parent.stateRoot);
            if (depositsDone < parent.depositsDone || forcedDone < parent.forcedDone) revert CounterDecreased();
            // 4. The declared L1 time: not after this block, not before the parent's, and at most
            //    maxTimestampDrift behind this block (a proposer cannot hold the clock back for long).
            if (l1Timestamp > block.timestamp) revert TimestampInFuture(l1Timestamp, block.timestamp);
            if (l1Timestamp < parent.timestamp) revert TimestampBeforeParent(l1Timestamp, parent.timestamp);
            if (block.timestamp - l1Timestamp > maxTimestampDrift) {
                revert TimestampTooOld(l1Timestamp, block.timestamp, maxTimestampDrift);
            }
        }
        if (depositsDone > depositQueueLength || forcedDone > forcedQueueLength) revert CounterBeyondQueue();
        (bytes32 txRoot, uint256 txCount) = BatchFraming.txRoot(data);
        if (txCount == 0) revert EmptyBatch();
        {
            // A discarded batch still at this index is settled before its record (the game count
            // its forfeit divides by) is overwritten. spec: bonds.process_append
            uint64 previous = _batches[index].id;
            if (previous != 0 && bonds[previous].state == BondState.Posted) _forfeit(previous, bonds[previous]);
        }
        bytes32 stateRoot = StateCodec.stateRoot(accountsRoot, slotsRoot, globalsHash, depositsDone, forcedDone);
        uint64 id = nextBatchId++;
        _batches[index] = Batch({
            stateRoot: stateRoot,
            txRoot: txRoot,
            id: id,
            timestamp: l1Timestamp,
            txCount: uint32(txCount),
            openGames: 0,
            depositsDone: depositsDone,
            forcedDone: forcedDone,
            depositQueueLength: uint64(depositQueueLength),
            forcedQueueLength: uint64(forcedQueueLength),
            appendedAt: uint64(block.timestamp)
        });
        bonds[id] = Bond(msg.sender, uint64(index), BondState.Posted, 0);
        batchCount = index + 1;
        _emitAppended(index);
        emit StateCommitted(index, accountsRoot, slotsRoot, globalsHash, depositsDone, forcedDone);
    }

    /// @notice Finalize batch `index`: the next one after the last final batch, its challenge window
    ///         over, no game against it open, the rollup not frozen. Credits its bond back.
    function finalize(uint256 index) external {
        if (bridge.frozen()) revert RollupFrozen();
        if (index >= batchCount) revert BatchNotFound();
        if (index != finalizedCount) revert NotNextToFinalize();
        Batch storage b = _batches[index];
        if (block.timestamp < uint256(b.appendedAt) + challengeWindow) revert ChallengeWindowOpen();
        if (b.openGames != 0) revert GameOpen();
        finalizedCount = index + 1;
        Bond storage bond = bonds[b.id];
        bond.state = BondState.Returned;
        emit BatchFinalized(index, b.id, b.stateRoot);
        _credit(bond.proposer, proposerBond);
    }

    /// @notice Settle the bond of a discarded batch (anyone; at most once): forfeit it, as the rejection
    ///         of an earlier batch left it. spec: bonds.process_forfeit
    function forfeitBond(uint64 id) external {
        Bond storage bond = bonds[id];
        // 1. The bond is still posted and its batch is no longer in the chain (a discarded batch).
        if (bond.state != BondState.Posted || isLive(bond.batchIndex, id)) revert BondNotForfeitable();
        _forfeit(id, bond);
    }

    /// @notice Once frozen, send the bonds of up to `maxCount` batches pending at the freeze to the Bridge
    ///         for the escaping users, from the top of the chain down (anyone; in pages, so a long pending
    ///         chain never needs one unbounded transaction). A batch with a game still open stops the
    ///         release until the game ends (it ends within both clocks; no game opens once frozen). The
    ///         released batches leave the chain: they can never finalize.
    function releaseFrozenBonds(uint256 maxCount) external returns (uint256 released) {
        if (!bridge.frozen()) revert NotFrozen();
        uint256 count = batchCount;
        uint256 floor = finalizedCount;
        while (released < maxCount && count > floor) {
            Batch storage b = _batches[count - 1];
            if (b.openGames != 0) {
                if (released == 0) revert GamesOpen(count - 1, b.openGames);
                break;
            }
            Bond storage bond = bonds[b.id];
            bond.state = BondState.Escaped;
            emit BondEscaped(b.id, count - 1, bond.proposer);
            --count;
            ++released;
        }
        batchCount = count;
        if (released != 0) bridge.receiveBonds{value: released * proposerBond}();
    }

    /// @notice Pay the caller everything credited to it (returned bonds, rewards, won bonds).
    function withdrawCredit() external {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        credits[msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // --- the dispute game's hooks --------------------------------------------------------------------

    /// @notice Count a new game against pending batch `index` (challenge window still open) and return
    ///         what the game needs: the batch id, its proposer, the agreed pre-state root, the disputed
    ///         post-state root and the number of transactions.
    function registerGame(uint256 index)
        external
        onlyGame
        returns (uint64 id, address proposer, bytes32 preRoot, bytes32 postRoot, uint256 txCount)
    {
        if (bridge.frozen()) revert RollupFrozen();
        if (index == 0 || index >= batchCount) revert BatchNotFound();
        if (index < finalizedCount) revert BatchAlreadyFinal();
        Batch storage b = _batches[index];
        if (block.timestamp >= uint256(b.appendedAt) + challengeWindow) revert ChallengeWindowClosed();
        uint32 open = b.openGames + 1;
        b.openGames = open;
        id = b.id;
        emit OpenGamesChanged(index, id, open);
        return (id, bonds[id].proposer, _batches[index - 1].stateRoot, b.stateRoot, b.txCount);
    }

    /// @notice A game against batch (index, id) ended without rejecting it.
    function releaseGame(uint256 index, uint64 id) external onlyGame {
        if (!isLive(index, id)) return;
        Batch storage b = _batches[index];
        uint32 open = b.openGames - 1;
        b.openGames = open;
        emit OpenGamesChanged(index, id, open);
    }

    /// @notice A challenger won against batch (index, id): discard it and its successors, forfeit its
    ///         bond and credit the winner its share. spec: bonds.process_reject
    function rejectBatch(uint256 index, uint64 id, address challenger) external onlyGame {
        if (!isLive(index, id) || index < finalizedCount) revert BatchNotLive();
        uint256 discardedTo = batchCount;
        batchCount = index;
        emit BatchesDiscarded(index, discardedTo, challenger);
        Bond storage bond = bonds[id];
        _forfeit(id, bond);
        _credit(challenger, bond.rewardPerGame);
    }

    /// @notice A game against batch (index, id), discarded meanwhile, was voided: return the
    ///         attached challenger bond with the game's share of the forfeit bond. spec: bonds.process_void_game
    function voidGame(uint256 index, uint64 id, address challenger) external payable onlyGame {
        if (isLive(index, id)) revert BatchNotLive();
        Bond storage bond = bonds[id];
        if (bond.state == BondState.Posted) _forfeit(id, bond);
        _credit(challenger, msg.value + bond.rewardPerGame);
    }

    /// @notice Credit `to` with the attached value (the game's challenger bonds).
    function payout(address to) external payable onlyGame {
        _credit(to, msg.value);
    }

    // --- views ---------------------------------------------------------------------------------------

    function getBatch(uint256 index) external view returns (Batch memory) {
        if (index >= batchCount) revert BatchNotFound();
        return _batches[index];
    }

    /// Whether batch `index` is in the current chain and still the one with id `id`.
    function isLive(uint256 index, uint64 id) public view returns (bool) {
        return index < batchCount && _batches[index].id == id;
    }

    /// The last final batch: its index, state root and queue counters.
    function lastFinalized()
        external
        view
        returns (uint256 index, bytes32 stateRoot, uint64 depositsDone, uint64 forcedDone)
    {
        index = finalizedCount - 1;
        Batch storage b = _batches[index];
        return (index, b.stateRoot, b.depositsDone, b.forcedDone);
    }

    /// The state root of final batch `index` (reverts unless it is final).
    function finalizedRoot(uint256 index) external view returns (bytes32) {
        if (index >= finalizedCount) revert NotFinalized();
        return _batches[index].stateRoot;
    }

    // --- internals -----------------------------------------------------------------------------------

    /// Forfeit a discarded batch's bond: the reward share split equally between the games that were
    /// open against it (frozen since its discard: releaseGame ignores a batch that is not live), the
    /// rest burned. spec: bonds.compute_forfeit
    function _forfeit(uint64 id, Bond storage bond) private {
        uint256 games = _batches[bond.batchIndex].openGames;
        uint256 perGame = games == 0 ? 0 : proposerBond * slashRewardBps / BPS / games;
        uint256 burned = proposerBond - perGame * games;
        bond.state = BondState.Forfeited;
        bond.rewardPerGame = uint128(perGame);
        emit BondForfeited(id, bond.proposer, games, perGame, burned);
        if (burned != 0) {
            (bool ok,) = BURN_ADDRESS.call{value: burned}("");
            if (!ok) revert TransferFailed();
        }
    }

    /// BatchAppended from the record just written (a separate frame: appendBatch's stack is full).
    function _emitAppended(uint256 index) private {
        Batch storage b = _batches[index];
        emit BatchAppended(
            index,
            b.id,
            msg.sender,
            b.stateRoot,
            b.txRoot,
            b.txCount,
            b.depositQueueLength,
            b.forcedQueueLength,
            b.timestamp,
            b.appendedAt
        );
    }

    function _credit(address to, uint256 amount) private {
        if (amount == 0) return;
        credits[to] += amount;
        emit Credited(to, amount);
    }
}
