// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Bridge} from "./Bridge.sol";
import {Rollup} from "./Rollup.sol";
import {IOneStepProver, L1Inputs} from "./interfaces/IOneStepProver.sol";
import {BatchFraming} from "./lib/BatchFraming.sol";

/// @title DisputeGame — k-ary bisection over a batch's transactions, ending in one L1-executed step
/// @notice A challenger opens a game against a pending batch (bond `challengerBond`, while the batch's
///         challenge window is open); any number of games may run against one batch in parallel.
///         The disputed segment starts as [0, n] over transaction indices: root(0) is the parent
///         batch's post-state root (agreed), root(n) the batch's post-state root (disputed).
///
///         Turns, while the segment [s, e] is longer than one transaction:
///         1. the proposer (the batch's poster) posts the roots at the parts-1 inner split points
///            s + (e - s)·j / parts, j = 1 … parts-1, parts = min(arity, e - s) (`bisect`);
///            only their hash is stored, the roots are in the event;
///         2. the challenger resupplies them and names the first part j it disagrees with (`choose`):
///            it agrees with the root at the part's start and disputes the root at its end.
///         When e = s + 1 it is still the challenger's turn: anyone may `step` with record s, its
///         proof against the batch's tx root and the witness; the game builds the L1 inputs itself
///         (batch timestamp; the queue entries at the witness's counters if the batch saw them,
///         checked against the Bridge's hash chains) and runs the one-step prover from root(s). If
///         the result differs from the proposer's root(e) the challenger wins, else the proposer.
///
///         Chess clocks: each side has `clock` seconds in total; the side whose turn it is spends its
///         own time. When it runs out, `timeout` makes the other side win.
///         Challenger wins: the Rollup discards the batch and its successors and forfeits its bond
///         (shared between every game open against it, the rest burned); the challenger's bond is
///         returned. Proposer wins: the challenger's bond is credited to the proposer.
///         A game whose batch was discarded meanwhile (by another game) is void: `cancel` returns the
///         challenger's bond with the game's share of the forfeit bond. All payments are credits in
///         the Rollup (`Rollup.withdrawCredit`).
///
///         The rules are optinode/spec/game.py's, function by function (`spec:` tags): each move checks
///         the same numbered rules in the same order, and each error carries the values the spec's
///         InvalidMove carries (tests/l1/system/test_game_spec_differential.py compares both).
contract DisputeGame {
    enum Phase {
        None,
        Bisect, // the proposer's turn: post split-point roots
        Choose, // the challenger's turn: pick a part
        Step, // the challenger's turn (anyone may step): a one-transaction segment
        ChallengerWon,
        ProposerWon,
        Cancelled
    }

    struct Game {
        uint64 batchIndex;
        uint64 batchId;
        uint64 start; // segment start: root(start) is agreed
        uint64 end; // segment end: root(end) is disputed
        address challenger;
        uint64 turnStart; // when the current turn began
        Phase phase;
        address proposer;
        uint48 proposerTimeLeft;
        uint48 challengerTimeLeft;
        bytes32 startRoot;
        bytes32 endRoot;
        bytes32 rootsHash; // keccak of the roots posted by the last bisect (meaningful in the Choose phase)
    }

    /// The queue entries a step may need (ignored when the batch did not see that entry).
    struct QueueEntries {
        address depositOwner;
        uint256 depositAmount;
        address forcedRequester;
        uint256 forcedAccountId;
        uint256 forcedAmount;
    }

    uint256 public constant MAX_ARITY = 256;

    Rollup public immutable rollup;
    Bridge public immutable bridge;
    IOneStepProver public immutable prover;
    uint256 public immutable arity;
    uint256 public immutable challengerBond;
    uint256 public immutable clock;
    /// Seconds a queue deadline keeps beyond the worst-case finality of a batch that consumed the entry
    /// in time: for the batch itself to reach L1, and for the transactions that end its game and
    /// finalize it to be included (docs/contracts.md gives mainnet values).
    uint256 public immutable inclusionMargin;

    mapping(uint256 => Game) internal _games;
    uint256 public gameCount;

    event GameOpened(
        uint256 indexed gameId,
        uint256 indexed batchIndex,
        address indexed challenger,
        uint64 batchId,
        address proposer,
        bytes32 startRoot,
        bytes32 endRoot,
        uint256 txCount
    );
    event Bisected(uint256 indexed gameId, uint64 start, uint64 end, bytes32[] roots);
    event Chosen(uint256 indexed gameId, uint256 part, uint64 start, uint64 end, bytes32 startRoot, bytes32 endRoot);
    event Stepped(uint256 indexed gameId, uint64 txIndex, bytes32 postRoot, uint8 code, bool applied);
    event GameResolved(uint256 indexed gameId, Phase outcome);

    // The errors carry what explains them (spec: game.InvalidMove.values, same order).
    error GameNotFound(uint256 gameId, uint256 gameCount);
    error GameOver(Phase phase);
    error NotYourTurn(Phase phase);
    /// The mover had `left` seconds and `spent` have passed since its turn began.
    error ClockExpired(uint256 spent, uint256 left);
    error ClockNotExpired(uint256 spent, uint256 left);
    error WrongBond(uint256 sent, uint256 required);
    error WrongRootCount(uint256 count, uint256 expected);
    /// keccak of the roots supplied and of the roots the last bisect posted.
    error RootsMismatch(bytes32 suppliedHash, bytes32 postedHash);
    error IndexOutOfRange(uint256 part, uint256 parts);
    error BadTxProof(uint256 txIndex);
    /// queue 0 = deposits, 1 = forced requests; index = the entry the witness's counter names.
    error BadQueueEntry(uint8 queue, uint256 index);
    error MalformedWitness();
    error BatchNotLive(uint256 batchIndex, uint64 batchId);
    error BatchStillLive(uint256 batchIndex, uint64 batchId);
    error InvalidParameter();
    error WrongWiring();

    /// spec: game.on_open rule 1 (the parameters a game accepts)
    constructor(
        Rollup rollup_,
        IOneStepProver prover_,
        uint256 arity_,
        uint256 challengerBond_,
        uint256 clock_,
        uint256 inclusionMargin_
    ) {
        if (rollup_.game() != address(this)) revert WrongWiring();
        // 1. 2 <= arity <= MAX_ARITY and 1 <= clock <= 2^48 - 1.
        if (arity_ < 2 || arity_ > MAX_ARITY || clock_ == 0 || clock_ > type(uint48).max) revert InvalidParameter();
        if (address(prover_) == address(0)) revert InvalidParameter();
        Bridge bridge_ = rollup_.bridge();
        // A queue entry consumed in time must be able to reach finality before its deadline, even
        // when its batch is challenged at the end of the window and the game runs both clocks out,
        // with an explicit margin for getting the batch, the timeout and the finalize included.
        if (inclusionMargin_ == 0) revert InvalidParameter();
        uint256 worstFinality = rollup_.challengeWindow() + 2 * clock_ + inclusionMargin_;
        if (bridge_.forcedDeadline() < worstFinality || bridge_.depositDeadline() < worstFinality) {
            revert InvalidParameter();
        }
        rollup = rollup_;
        bridge = bridge_;
        prover = prover_;
        arity = arity_;
        challengerBond = challengerBond_;
        clock = clock_;
        inclusionMargin = inclusionMargin_;
    }

    // --- moves ---------------------------------------------------------------------------------------

    /// @notice Challenge the post-state root of pending batch `batchIndex`. Send `challengerBond` wei.
    /// spec: game.on_open (rule 1 is the constructor's, rule 2 Rollup.appendBatch's: a batch holds
    ///       1 … MAX_BATCH_TXS transactions). The bond and which batches may be challenged (existing,
    ///       not final, window open) are Rollup.registerGame's business, not the game's rules.
    function open(uint256 batchIndex) external payable returns (uint256 gameId) {
        if (msg.value != challengerBond) revert WrongBond(msg.value, challengerBond);
        (uint64 id, address proposer, bytes32 preRoot, bytes32 postRoot, uint256 txCount) =
            rollup.registerGame(batchIndex);
        // The segment is [0, n]; a one-transaction batch goes straight to the step.
        gameId = gameCount++;
        Game storage g = _games[gameId];
        g.batchIndex = uint64(batchIndex);
        g.batchId = id;
        g.end = uint64(txCount);
        g.challenger = msg.sender;
        g.turnStart = uint64(block.timestamp);
        g.phase = txCount == 1 ? Phase.Step : Phase.Bisect;
        g.proposer = proposer;
        g.proposerTimeLeft = uint48(clock);
        g.challengerTimeLeft = uint48(clock);
        g.startRoot = preRoot;
        g.endRoot = postRoot;
        emit GameOpened(gameId, batchIndex, msg.sender, id, proposer, preRoot, postRoot, txCount);
    }

    /// @notice The proposer posts the roots at the inner split points of the current segment.
    /// spec: game.on_bisect
    function bisect(uint256 gameId, bytes32[] calldata roots) external {
        // 1. The game is not over.
        Game storage g = _active(gameId);
        // 2. It is the bisect phase and the proposer moves.
        if (g.phase != Phase.Bisect || msg.sender != g.proposer) revert NotYourTurn(g.phase);
        // 3. The proposer's clock has not run out; it is charged the time since its turn began.
        g.proposerTimeLeft = _spend(g, g.proposerTimeLeft);
        (uint64 start, uint64 end) = (g.start, g.end);
        // 4. One root per inner split point: parts - 1 of them.
        uint256 expected = partsOf(start, end) - 1;
        if (roots.length != expected) revert WrongRootCount(roots.length, expected);
        g.rootsHash = keccak256(abi.encodePacked(roots));
        // The challenger's turn begins.
        g.phase = Phase.Choose;
        emit Bisected(gameId, start, end, roots);
    }

    /// @notice The challenger names the first part it disagrees with (0-based), resupplying the roots
    ///         the proposer posted.
    /// spec: game.on_choose
    function choose(uint256 gameId, bytes32[] calldata roots, uint256 part) external {
        // 1. The game is not over.
        Game storage g = _active(gameId);
        // 2. It is the choose phase and the challenger moves.
        if (g.phase != Phase.Choose || msg.sender != g.challenger) revert NotYourTurn(g.phase);
        // 3. The challenger's clock has not run out; it is charged the time since its turn began.
        g.challengerTimeLeft = _spend(g, g.challengerTimeLeft);
        // 4. The roots are those of the last bisect.
        bytes32 suppliedHash = keccak256(abi.encodePacked(roots));
        if (suppliedHash != g.rootsHash) revert RootsMismatch(suppliedHash, g.rootsHash);
        // 5. The part exists.
        uint256 parts = roots.length + 1;
        if (part >= parts) revert IndexOutOfRange(part, parts);
        (uint256 start, uint256 end) = (g.start, g.end);
        uint64 newStart = uint64(splitPoint(start, end, parts, part));
        uint64 newEnd = uint64(splitPoint(start, end, parts, part + 1));
        if (part != 0) g.startRoot = roots[part - 1];
        if (part + 1 != parts) g.endRoot = roots[part];
        g.start = newStart;
        g.end = newEnd;
        // rootsHash is left as is (only read in the Choose phase): the next bisect then rewrites a
        // non-zero slot, which costs 17,100 gas less than a zero one and more than the refund.
        // A one-transaction part goes to the step (still the challenger's turn, its clock keeps
        // running from now), a longer one back to the proposer.
        g.phase = newEnd - newStart == 1 ? Phase.Step : Phase.Bisect;
        emit Chosen(gameId, part, newStart, newEnd, g.startRoot, g.endRoot);
    }

    /// @notice Execute the one disputed transaction on L1 and resolve the game. Anyone may call it
    ///         while the challenger's clock runs.
    /// @param record   the transaction's record (payload without its length prefix)
    /// @param txProof  its TX_TREE_DEPTH siblings in the batch's transaction tree, leaf level first
    /// @param witness  abi.encode(Witness) for IOneStepProver (canonical encoding: head at offset 0x20)
    /// @param entries  the queue entries at the witness's counters (checked; ignored when unavailable)
    /// spec: game.on_step (rules 1-4, then the evidence, then rule 5)
    function step(
        uint256 gameId,
        bytes calldata record,
        bytes32[] calldata txProof,
        bytes calldata witness,
        QueueEntries calldata entries
    ) external {
        // 1. The game is not over.
        Game storage g = _active(gameId);
        // 2. The segment is one transaction.
        if (g.phase != Phase.Step) revert NotYourTurn(g.phase);
        // 3. The challenger's clock has not run out (not charged: the game ends now).
        {
            uint256 spent = block.timestamp - g.turnStart;
            if (spent > g.challengerTimeLeft) revert ClockExpired(spent, g.challengerTimeLeft);
        }
        uint64 txIndex = g.start;
        L1Inputs memory l1;
        {
            // 4. The batch is still in the chain.
            Rollup.Batch memory b = _liveBatch(g);
            // The evidence: record `txIndex` of the batch, the queue entries the witness names.
            if (!BatchFraming.isTxAt(b.txRoot, txIndex, record, txProof)) revert BadTxProof(txIndex);
            l1 = _l1Inputs(b, witness, entries);
        }
        (bytes32 postRoot, uint8 code, bool applied) = prover.executeOneStep(g.startRoot, record, l1, witness);
        emit Stepped(gameId, txIndex, postRoot, code, applied);
        // 5. Resolution: a result other than the proposer's claim proves the claim wrong.
        _resolve(gameId, g, postRoot != g.endRoot);
    }

    /// @notice End a game whose side to move has run out of time: the other side wins. A game whose
    ///         batch was discarded meanwhile is cancelled instead.
    /// spec: game.on_timeout
    function timeout(uint256 gameId) external {
        // 1. The game is not over.
        Game storage g = _active(gameId);
        // 2. The side to move has spent strictly more than what it had left (at exactly its time
        //    left it may still move, so the two never overlap).
        bool proposerTurn = g.phase == Phase.Bisect;
        uint256 left = proposerTurn ? g.proposerTimeLeft : g.challengerTimeLeft;
        uint256 spent = block.timestamp - g.turnStart;
        if (spent <= left) revert ClockNotExpired(spent, left);
        // 3. Resolution: the proposer ran out -> the challenger wins, and vice versa.
        _resolve(gameId, g, proposerTurn);
    }

    /// @notice Void a game whose batch is no longer in the chain: its challenger bond is returned.
    /// spec: game.on_cancel
    function cancel(uint256 gameId) external {
        // 1. The game is not over.
        Game storage g = _active(gameId);
        // 2. Its batch is no longer in the chain.
        if (rollup.isLive(g.batchIndex, g.batchId)) revert BatchStillLive(g.batchIndex, g.batchId);
        _cancel(gameId, g);
    }

    // --- views ---------------------------------------------------------------------------------------

    function getGame(uint256 gameId) external view returns (Game memory) {
        if (gameId >= gameCount) revert GameNotFound(gameId, gameCount);
        return _games[gameId];
    }

    /// How many parts a segment [start, end] is cut into. spec: game.parts_of
    function partsOf(uint256 start, uint256 end) public view returns (uint256) {
        uint256 length = end - start;
        return length < arity ? length : arity;
    }

    /// Split point j of [start, end] cut into `parts` parts. spec: game.compute_split_point
    function splitPoint(uint256 start, uint256 end, uint256 parts, uint256 j) public pure returns (uint256) {
        return start + (end - start) * j / parts;
    }

    /// Seconds each side has left now (the running clock included). spec: game.time_left
    function timeLeft(uint256 gameId) external view returns (uint256 proposer, uint256 challenger) {
        Game storage g = _games[gameId];
        proposer = g.proposerTimeLeft;
        challenger = g.challengerTimeLeft;
        if (g.phase == Phase.None || uint8(g.phase) >= uint8(Phase.ChallengerWon)) return (proposer, challenger);
        uint256 spent = block.timestamp - g.turnStart;
        if (g.phase == Phase.Bisect) proposer = spent >= proposer ? 0 : proposer - spent;
        else challenger = spent >= challenger ? 0 : challenger - spent;
    }

    // --- internals -----------------------------------------------------------------------------------

    /// spec: game._require_active
    function _active(uint256 gameId) private view returns (Game storage g) {
        if (gameId >= gameCount) revert GameNotFound(gameId, gameCount);
        g = _games[gameId];
        if (uint8(g.phase) >= uint8(Phase.ChallengerWon)) revert GameOver(g.phase);
    }

    /// Charge the mover for the time since its turn began; the next turn begins now. spec: game._spend
    function _spend(Game storage g, uint48 left) private returns (uint48) {
        uint256 spent = block.timestamp - g.turnStart;
        if (spent > left) revert ClockExpired(spent, left);
        g.turnStart = uint64(block.timestamp);
        return uint48(left - spent);
    }

    function _liveBatch(Game storage g) private view returns (Rollup.Batch memory b) {
        if (!rollup.isLive(g.batchIndex, g.batchId)) revert BatchNotLive(g.batchIndex, g.batchId);
        b = rollup.getBatch(g.batchIndex);
    }

    /// The L1 inputs of the disputed transaction, from Rollup/Bridge storage only.
    function _l1Inputs(Rollup.Batch memory b, bytes calldata witness, QueueEntries calldata e)
        private
        view
        returns (L1Inputs memory l1)
    {
        (uint256 depositsDone, uint256 forcedDone) = _witnessCounters(witness);
        l1.l1Timestamp = b.timestamp;
        if (depositsDone < b.depositQueueLength) {
            if (!bridge.isDeposit(depositsDone, e.depositOwner, e.depositAmount)) revert BadQueueEntry(0, depositsDone);
            l1.hasDeposit = true;
            l1.depositOwner = e.depositOwner;
            l1.depositAmount = e.depositAmount;
        }
        if (forcedDone < b.forcedQueueLength) {
            if (!bridge.isForcedRequest(forcedDone, e.forcedRequester, e.forcedAccountId, e.forcedAmount)) {
                revert BadQueueEntry(1, forcedDone);
            }
            l1.hasForced = true;
            l1.forcedRequester = e.forcedRequester;
            l1.forcedAccountId = e.forcedAccountId;
            l1.forcedAmount = e.forcedAmount;
        }
    }

    /// depositsDone and forcedDone of abi.encode(Witness): head words 3 and 4 of the tuple, which a
    /// canonical encoding places at offset 0x20. The prover authenticates them against the pre-root.
    function _witnessCounters(bytes calldata witness) private pure returns (uint256 depositsDone, uint256 forcedDone) {
        if (witness.length < 0xc0 || uint256(bytes32(witness[0:0x20])) != 0x20) revert MalformedWitness();
        depositsDone = uint256(bytes32(witness[0x80:0xa0]));
        forcedDone = uint256(bytes32(witness[0xa0:0xc0]));
        if (depositsDone > type(uint64).max || forcedDone > type(uint64).max) revert MalformedWitness();
    }

    /// spec: game._resolve — a game whose batch is gone is cancelled instead.
    function _resolve(uint256 gameId, Game storage g, bool challengerWins) private {
        if (!rollup.isLive(g.batchIndex, g.batchId)) return _cancel(gameId, g);
        uint256 bond = challengerBond;
        if (challengerWins) {
            g.phase = Phase.ChallengerWon;
            emit GameResolved(gameId, Phase.ChallengerWon);
            rollup.rejectBatch(g.batchIndex, g.batchId, g.challenger);
            if (bond != 0) rollup.payout{value: bond}(g.challenger);
        } else {
            g.phase = Phase.ProposerWon;
            emit GameResolved(gameId, Phase.ProposerWon);
            rollup.releaseGame(g.batchIndex, g.batchId);
            if (bond != 0) rollup.payout{value: bond}(g.proposer);
        }
    }

    function _cancel(uint256 gameId, Game storage g) private {
        g.phase = Phase.Cancelled;
        emit GameResolved(gameId, Phase.Cancelled);
        // The bond returns with the game's share of the discarded batch's forfeit bond.
        rollup.voidGame{value: challengerBond}(g.batchIndex, g.batchId, g.challenger);
    }
}
