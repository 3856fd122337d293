"""somnode: the validator node for the digital som."""
