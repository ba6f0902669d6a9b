"""``turnout demo``: real recorded prompts through the real gateway, end to end.

Replay upstreams answer with recorded outcomes of real LLMs (:mod:`turnout.demo.replay`), a
router trained on the training split chooses, the gateway meters every call in its SQLite
ledger, and the report (:mod:`turnout.demo.report`) is built from that ledger.
"""
