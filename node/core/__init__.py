"""The digital som's domain types and their canonical encodings: addresses, amounts, keys,
transactions, blocks, certificates and the genesis."""
