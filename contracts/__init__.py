"""On-chain programs (the vault and the local AMM) in C, their build with the project SBF linker,
and the Python client: instruction builders, account and event decoders, PDAs, error codes.
"""
