"""The Python sandbox of custom/code: warm workers that fork a limited process per call, and
the warm processes of `isolation: warm`.

`pool`, `warm_pool` and `envs` run in the server; `worker`, `warm`, `call`, `capture`, `fdio`
and `limits` run in the sandbox processes on the standard library only (see `worker`'s and
`warm`'s docstrings for the protocols).
"""
