"""shared_etl: the events pipeline of docs/contract.md, declared with the runtime's API in
shared_etl/pipeline.py (the default pipeline); the rest of the package is its transformation,
its input reading and its contract. No orchestrator imports anything else from here."""
