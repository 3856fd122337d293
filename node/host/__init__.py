"""The host of the consensus engine: the one writer of consensus state and what it drives."""
