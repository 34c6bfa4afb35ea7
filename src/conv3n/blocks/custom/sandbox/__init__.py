"""The Python sandbox of custom/code: warm workers that fork a limited process per call.

`pool` and `envs` run in the server; `worker`, `call` and `limits` run in the sandbox processes
on the standard library only (see `worker`'s docstring for the protocol).
"""
