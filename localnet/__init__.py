"""The local Solana chain (JSON-RPC over LiteSVM) and the local price/quote API: the embedded
default and the ground truth of tests and chaos runs. A tool that the engine starts as a child process.
"""
