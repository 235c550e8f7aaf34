"""The exchange front of the sequencer: mempool intake, the order book and matching.

These are libraries the sequencer's engine owns (it is the single writer); nothing here does I/O
apart from the mempool's worker threads for signature recovery. See docs/matching.md.
"""
